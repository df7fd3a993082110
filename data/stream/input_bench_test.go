package stream_test

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/etl/pipeline"
	"github.com/bmca/bmca/internal/cputime"
	"github.com/bmca/bmca/internal/testshared"
	"github.com/bmca/bmca/text/tokenizer"
)

// BenchmarkTrainInput measures the training input path on real figures:
// BIOMEDICA-format shards built, as cmd/shards builds them, from the shared
// real articles with figures (JPEGs of 0.4–2.2 megapixels), streamed
// through tar reading, the shuffle buffer, decoding, OpenCLIP's training
// transform (RandomResizedCrop at 224, scale 0.9–1, bicubic; normalise), CLIP
// BPE tokenisation and batching, with and without DCT-scaled decoding (and
// with libjpeg-turbo in a -tags libjpeg build). Decode workers follow
// GOMAXPROCS, so `-cpu 1,2` gives the one-core and two-core figures.
// samples/cpu-s divides by the process's CPU time: the per-core figure,
// steadier than wall time on a shared machine. The peer is OpenCLIP's
// training transform with Pillow, one dataloader worker per core: the
// shared tools/peers/openclip_train_transform_bench.py over the same shards
// (cmd/shards --input <shared>/data/jats-with-figures --output DIR).
//
//	go test ./data/stream -run '^$' -bench TrainInput -cpu 1,2 -benchtime 150x
func BenchmarkTrainInput(b *testing.B) {
	shards := realFigureShards(b)
	tok, err := tokenizer.NewCLIP(testshared.Path(b, "data/tokenizer/bpe_simple_vocab_16e6.txt.gz"), 77)
	if err != nil {
		b.Fatal(err)
	}
	decoders := []preprocess.JPEGDecoder{preprocess.JPEGGo}
	if preprocess.TurboAvailable() {
		decoders = append(decoders, preprocess.JPEGTurbo)
	}
	for _, dec := range decoders {
		for _, dct := range []bool{false, true} {
			name := fmt.Sprintf("%s/dct=%v", dec, dct)
			b.Run(name, func(b *testing.B) {
				pre := preprocess.OpenAI(224)
				pre.JPEG, pre.DCTScaling = dec, dct
				img, err := pre.Train(preprocess.Augment{})
				if err != nil {
					b.Fatal(err)
				}
				s, err := stream.New(stream.Config{
					Shards: shards, BatchSize: 8, ShuffleBuffer: 16, Seed: 1,
					Resampled: true, SamplesPerEpoch: 1 << 30,
					Workers: runtime.GOMAXPROCS(0), ImageSize: 224,
				}, img, tok)
				if err != nil {
					b.Fatal(err)
				}
				samples := 0
				cpu0 := cputime.Process()
				for batch, err := range s.Batches(context.Background(), stream.Position{}) {
					if err != nil {
						b.Fatal(err)
					}
					samples += batch.Size
					if !b.Loop() {
						break
					}
				}
				b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
				if cpu := (cputime.Process() - cpu0).Seconds(); cpu > 0 {
					b.ReportMetric(float64(samples)/cpu, "samples/cpu-s")
				}
				if st := s.Stats(); len(st.Skipped) > 0 {
					b.Fatalf("skipped samples: %v (%s)", st.Skipped, st.LastDecodeError)
				}
			})
		}
	}
}

// realFigureShards builds shards from the shared real articles with figures
// the way cmd/shards does and returns their paths.
func realFigureShards(b *testing.B) []string {
	b.Helper()
	out := b.TempDir()
	in := testshared.Path(b, "data/jats-with-figures")
	sum, err := pipeline.Run(context.Background(), pipeline.Config{Inputs: []string{in}, Out: out})
	if err != nil {
		b.Fatal(err)
	}
	shards, err := filepath.Glob(filepath.Join(out, "*", "*.tar"))
	if err != nil || len(shards) == 0 {
		b.Fatalf("no shards built from %s (%+v): %v", in, sum, err)
	}
	return shards
}

// BenchmarkTrainTransform is the peer's own measurement made on our side:
// the image and caption members of the same real-figure shards read into
// memory first, then, per sample, the training transform (decode,
// RandomResizedCrop at 224, normalise) and the CLIP BPE tokenisation of its
// caption, one sample at a time on one goroutine. It leaves out what
// BenchmarkTrainInput adds (tar reading, shuffling, batching), which the
// peer script (tools/peers/openclip_train_transform_bench.py) leaves out too.
//
//	go test ./data/stream -run '^$' -bench TrainTransform -cpu 1 -benchtime 300x
func BenchmarkTrainTransform(b *testing.B) {
	type sample struct {
		image   []byte
		caption string
	}
	var samples []sample
	for _, shard := range realFigureShards(b) {
		f, err := os.Open(shard)
		if err != nil {
			b.Fatal(err)
		}
		members := map[string]map[string][]byte{}
		tr := tar.NewReader(f)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				b.Fatal(err)
			}
			key, ext, _ := strings.Cut(path.Base(h.Name), ".")
			key = path.Join(path.Dir(h.Name), key)
			if members[key] == nil {
				members[key] = map[string][]byte{}
			}
			members[key][ext] = data
		}
		f.Close()
		for _, m := range members {
			if img, caption := m["jpg"], m["txt"]; img != nil && caption != nil {
				samples = append(samples, sample{img, string(caption)})
			}
		}
	}
	if len(samples) == 0 {
		b.Fatal("no jpg+txt samples in the real-figure shards")
	}
	tok, err := tokenizer.NewCLIP(testshared.Path(b, "data/tokenizer/bpe_simple_vocab_16e6.txt.gz"), 77)
	if err != nil {
		b.Fatal(err)
	}
	pre := preprocess.OpenAI(224)
	pre.DCTScaling = true
	img, err := pre.Train(preprocess.Augment{})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	cpu0 := cputime.Process()
	for b.Loop() {
		s := samples[n%len(samples)]
		if _, err := img(s.image, uint64(n)); err != nil {
			b.Fatal(err)
		}
		tok.Encode(s.caption)
		n++
	}
	if cpu := (cputime.Process() - cpu0).Seconds(); cpu > 0 {
		b.ReportMetric(float64(n)/cpu, "samples/cpu-s")
	}
}
