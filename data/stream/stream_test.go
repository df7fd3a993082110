package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/internal/testshared"
	"github.com/bmca/bmca/text/tokenizer"
)

// The project's tokenizers and preprocessing plug in without adapters.
var (
	_ Tokenizer = (*tokenizer.ByteLevel)(nil)
	_ ImageFunc = Deterministic(preprocess.Config{}.Apply)
)

const testImageSize = 4

func testStream(t testing.TB, cfg Config) *Stream {
	t.Helper()
	s, err := New(cfg, Deterministic(preprocess.OpenAI(testImageSize).Apply), tokenizer.NewByteLevel(24))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// take returns the first n batches, failing on any error.
func take(t testing.TB, s *Stream, start Position, n int) []Batch {
	t.Helper()
	var out []Batch
	for b, err := range s.Batches(context.Background(), start) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		if len(out) == n {
			break
		}
	}
	return out
}

func sameBatches(t *testing.T, got, want []Batch) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d batches, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if !slices.Equal(g.Keys, w.Keys) || g.Next != w.Next || g.Size != w.Size ||
			!slices.Equal(g.Tokens, w.Tokens) || !slices.Equal(g.Pixels, w.Pixels) {
			t.Fatalf("batch %d differs:\n got keys %v next %+v\nwant keys %v next %+v", i, g.Keys, g.Next, w.Keys, w.Next)
		}
	}
}

// checkAligned verifies that row i of Pixels and Tokens belongs to Keys[i].
func checkAligned(t *testing.T, b Batch, images map[string][]byte) {
	t.Helper()
	tok := tokenizer.NewByteLevel(24)
	n := 3 * testImageSize * testImageSize
	if len(b.Pixels) != b.Size*n || len(b.Tokens) != b.Size*24 || len(b.Keys) != b.Size {
		t.Fatalf("batch of %d has %d pixels, %d tokens, %d keys", b.Size, len(b.Pixels), len(b.Tokens), len(b.Keys))
	}
	for i, key := range b.Keys {
		want, err := preprocess.OpenAI(testImageSize).Apply(images[key])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(b.Pixels[i*n:(i+1)*n], want) {
			t.Fatalf("pixels of row %d are not those of %s", i, key)
		}
		if !slices.Equal(b.Tokens[i*24:(i+1)*24], tok.Encode("figure "+key)) {
			t.Fatalf("tokens of row %d are not those of %s", i, key)
		}
	}
}

// imagesOf maps each key of a dataset written by writeDataset to its image.
func imagesOf(t *testing.T, keys []string) map[string][]byte {
	m := map[string][]byte{}
	for i, k := range keys {
		m[k] = pngBytes(t, i, testImageSize)
	}
	return m
}

func TestBatchesDeterministic(t *testing.T) {
	dir := t.TempDir()
	shards, keys := writeDataset(t, dir, 3, 20, testImageSize)
	images := imagesOf(t, keys)
	cfg := Config{Shards: shards, BatchSize: 7, ShuffleBuffer: 10, Seed: 42, Workers: 1}
	// 60 samples: 8 full batches and one of 4 per epoch; 27 batches = 3 epochs.
	ref := take(t, testStream(t, cfg), Position{}, 27)

	t.Run("same seed same batches", func(t *testing.T) {
		sameBatches(t, take(t, testStream(t, cfg), Position{}, 27), ref)
	})
	t.Run("worker count does not matter", func(t *testing.T) {
		c := cfg
		c.Workers = 4
		sameBatches(t, take(t, testStream(t, c), Position{}, 27), ref)
	})
	t.Run("rows aligned with keys", func(t *testing.T) {
		for _, b := range ref {
			checkAligned(t, b, images)
		}
	})
	t.Run("each epoch is a shuffled permutation", func(t *testing.T) {
		var epochs [][]string
		cur := []string{}
		for _, b := range ref {
			cur = append(cur, b.Keys...)
			if b.Next.Samples == 0 { // the last batch of an epoch points at the next
				epochs = append(epochs, cur)
				cur = []string{}
			}
		}
		if len(epochs) != 3 {
			t.Fatalf("%d complete epochs, want 3", len(epochs))
		}
		for e, got := range epochs {
			if !slices.Equal(slices.Sorted(slices.Values(got)), keys) {
				t.Fatalf("epoch %d is not a permutation of the %d samples: %v", e, len(keys), got)
			}
			if slices.Equal(got, keys) {
				t.Errorf("epoch %d is in file order", e)
			}
		}
		if slices.Equal(epochs[0], epochs[1]) {
			t.Error("epochs 0 and 1 have the same order")
		}
	})
	t.Run("partial last batch and positions", func(t *testing.T) {
		if ref[8].Size != 4 || ref[8].Next != (Position{Epoch: 1}) {
			t.Errorf("batch 8 has size %d next %+v, want 4 and epoch 1", ref[8].Size, ref[8].Next)
		}
		if ref[2].Next != (Position{Epoch: 0, Samples: 21}) {
			t.Errorf("batch 2 next %+v, want epoch 0 sample 21", ref[2].Next)
		}
	})
	t.Run("drop last", func(t *testing.T) {
		c := cfg
		c.DropLast = true
		got := take(t, testStream(t, c), Position{}, 9)
		for i, b := range got {
			if b.Size != 7 {
				t.Fatalf("batch %d has size %d with DropLast", i, b.Size)
			}
		}
		// Batch 7 cannot know that the 4 samples after it will be dropped,
		// so it points at them; resuming there still leads to epoch 1.
		if got[7].Next != (Position{Epoch: 0, Samples: 56}) || !slices.Equal(got[8].Keys, ref[9].Keys) {
			t.Errorf("batch 7 next %+v, want epoch 0 sample 56; batch 8 should be epoch 1's first", got[7].Next)
		}
		resumed := take(t, testStream(t, c), got[7].Next, 1)
		if !slices.Equal(resumed[0].Keys, got[8].Keys) || resumed[0].Next != got[8].Next {
			t.Errorf("resuming after the last full batch gives %v, want %v", resumed[0].Keys, got[8].Keys)
		}
	})
	t.Run("another seed another order", func(t *testing.T) {
		c := cfg
		c.Seed = 43
		if got := take(t, testStream(t, c), Position{}, 1); slices.Equal(got[0].Keys, ref[0].Keys) {
			t.Error("seeds 42 and 43 give the same first batch")
		}
	})
}

func TestBatchesResume(t *testing.T) {
	dir := t.TempDir()
	shards, _ := writeDataset(t, dir, 3, 20, testImageSize)
	cfg := Config{Shards: shards, BatchSize: 7, ShuffleBuffer: 16, Seed: 7, Workers: 3}
	ref := take(t, testStream(t, cfg), Position{}, 20)

	for _, k := range []int{1, 3, 8, 9, 12} {
		t.Run(fmt.Sprintf("after %d batches", k), func(t *testing.T) {
			// The position goes through JSON, as it does through a checkpoint.
			raw, err := json.Marshal(ref[k-1].Next)
			if err != nil {
				t.Fatal(err)
			}
			var pos Position
			if err := json.Unmarshal(raw, &pos); err != nil {
				t.Fatal(err)
			}
			want := ref[k:min(k+4, len(ref))]
			sameBatches(t, take(t, testStream(t, cfg), pos, len(want)), want)
		})
	}
}

// TestResumeSkipsWithoutDecoding drives the reader alone: the samples before
// the resume position are replayed through the shuffle but never reach the
// workers, which are the only callers of ImageFunc.
func TestResumeSkipsWithoutDecoding(t *testing.T) {
	shards, _ := writeDataset(t, t.TempDir(), 3, 20, testImageSize)
	s := testStream(t, Config{Shards: shards, BatchSize: 7, ShuffleBuffer: 16, Seed: 7})
	for _, skip := range []int64{0, 1, 25, 59, 60} {
		t.Run(fmt.Sprint(skip), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ordered, work := make(chan *job, 100), make(chan *job, 100)
			done := make(chan struct{})
			go func() {
				defer close(done)
				s.read(ctx, Position{Epoch: 2, Samples: skip}, false, ordered, work)
			}()
			var indices []int64
			for j := range ordered {
				if j.end != nil {
					if j.end.read != 60 || j.end.skipped != skip || j.epoch != 2 {
						t.Errorf("epoch end %+v for epoch %d, want 60 read and %d skipped in epoch 2", *j.end, j.epoch, skip)
					}
					break
				}
				indices = append(indices, j.index)
				if w := <-work; w != j {
					t.Fatalf("work and ordered queues disagree at index %d", j.index)
				}
			}
			cancel()
			<-done
			for i, idx := range indices {
				if idx != skip+int64(i) {
					t.Fatalf("job %d has index %d, want %d", i, idx, skip+int64(i))
				}
			}
			if int64(len(indices)) != 60-skip {
				t.Errorf("%d samples reached the workers, want %d", len(indices), 60-skip)
			}
		})
	}
}

func TestBadSamples(t *testing.T) {
	dir := t.TempDir()
	img := pngBytes(t, 1, testImageSize)
	members := slices.Concat(
		goodSample(t, "good1", 1, testImageSize),
		[]member{{name: "noimage.txt", data: []byte("caption without image")}},
		[]member{{name: "nocaption.png", data: img}},
		[]member{{name: "blank.png", data: img}, {name: "blank.txt", data: []byte(" \n\t")}},
		[]member{{name: "garbage.jpg", data: []byte("not a jpeg")}, {name: "garbage.txt", data: []byte("x")}},
		[]member{{name: "bigger.png", data: pngBytes(t, 2, 2*testImageSize)}, {name: "bigger.txt", data: []byte("y")}},
		goodSample(t, "good2", 3, testImageSize),
	)
	good := writeShard(t, dir, "mixed.tar", members)
	broken := filepath.Join(dir, "broken.tar")
	full := tarBytes(t, goodSample(t, "lost", 4, testImageSize), false)
	// Cut inside the first member's data: a cut at a member boundary reads
	// as a shorter, complete archive.
	if err := os.WriteFile(broken, full[:530], 0o644); err != nil {
		t.Fatal(err)
	}
	vanishing := writeShard(t, dir, "vanishing.tar", goodSample(t, "gone", 5, testImageSize))

	// ImageSize 4 with an 8-pixel image: preprocess gives 3·8² floats, which
	// the stream must refuse rather than mix into a batch.
	s, err := New(Config{Shards: []string{good, broken, vanishing}, BatchSize: 2, ShuffleBuffer: 1, Workers: 2, ImageSize: testImageSize},
		Deterministic(func(b []byte) ([]float32, error) {
			if img, err := preprocess.Decode(b); err == nil && img.Bounds().Dx() != testImageSize {
				return preprocess.OpenAI(img.Bounds().Dx()).Apply(b)
			}
			return preprocess.OpenAI(testImageSize).Apply(b)
		}), tokenizer.NewByteLevel(24))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(vanishing); err != nil {
		t.Fatal(err)
	}
	var got []string
	for b, err := range s.Once(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.Keys...)
	}
	if !slices.Equal(got, []string{"good1", "good2"}) {
		t.Errorf("delivered %v, want good1 and good2", got)
	}
	st := s.Stats()
	wantSkipped := map[Reason]int64{
		ReasonNoImage: 1, ReasonNoCaption: 1, ReasonEmptyCaption: 1, ReasonDecode: 1, ReasonImageSize: 1,
	}
	if !maps.Equal(st.Skipped, wantSkipped) || st.Samples != 2 {
		t.Errorf("stats %+v, want skipped %v and 2 samples", st, wantSkipped)
	}
	if st.ShardErrors != 2 || !strings.Contains(st.LastShardError, "vanishing.tar") {
		t.Errorf("shard errors %d, last %v; want 2, the last naming vanishing.tar", st.ShardErrors, st.LastShardError)
	}
	if !strings.Contains(st.LastDecodeError, `"garbage"`) {
		t.Errorf("last decode error %v, want one naming sample garbage", st.LastDecodeError)
	}
}

func TestEpochWithoutUsableSamples(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name   string
		shards func(t *testing.T) []string
		want   []string
	}{
		{"only bad samples", func(t *testing.T) []string {
			return []string{writeShard(t, dir, "captionless.tar", []member{{name: "a.png", data: pngBytes(t, 1, 4)}})}
		}, []string{"captionless.tar", "no_caption"}},
		{"unreadable shards", func(t *testing.T) []string {
			p := filepath.Join(dir, "junk.tar")
			if err := os.WriteFile(p, []byte(strings.Repeat("junk", 200)), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{p}
		}, []string{"junk.tar", "shards failed"}},
	}
	if dir := testshared.Locate(); dir != "" {
		// webdataset's MNIST sample shard has png and cls members but no txt.
		cases = append(cases, struct {
			name   string
			shards func(t *testing.T) []string
			want   []string
		}{"real shard without captions", func(t *testing.T) []string {
			return []string{testshared.Path(t, "data/webdataset/sample.tgz")}
		}, []string{"sample.tgz", "no_caption:90"}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := testStream(t, Config{Shards: c.shards(t), BatchSize: 4, Workers: 2})
			var err error
			n := 0
			for _, e := range s.Batches(context.Background(), Position{}) {
				n++
				err = e
				if n > 1 {
					break
				}
			}
			if err == nil || n != 1 {
				t.Fatalf("got %d items, last error %v; want exactly one error", n, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestOnce(t *testing.T) {
	dir := t.TempDir()
	shards, keys := writeDataset(t, dir, 3, 5, testImageSize)
	slices.Reverse(shards)
	s := testStream(t, Config{Shards: shards, BatchSize: 4, Workers: 3, DropLast: true, Seed: 9})
	var got []string
	var sizes []int
	for b, err := range s.Once(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		checkAligned(t, b, imagesOf(t, keys))
		got = append(got, b.Keys...)
		sizes = append(sizes, b.Size)
	}
	// Shards in the given (reversed) order, samples in file order.
	want := slices.Concat(keys[10:15], keys[5:10], keys[0:5])
	if !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	if !slices.Equal(sizes, []int{4, 4, 4, 3}) {
		t.Errorf("batch sizes %v, want 4 4 4 3 (Once keeps the partial batch)", sizes)
	}
}

// waitGoroutines waits until the goroutine count drops to at most n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want ≤ %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStopping(t *testing.T) {
	dir := t.TempDir()
	shards, _ := writeDataset(t, dir, 2, 30, testImageSize)
	cfg := Config{Shards: shards, BatchSize: 3, ShuffleBuffer: 8, Workers: 4}

	t.Run("cancel", func(t *testing.T) {
		base := runtime.NumGoroutine()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		n := 0
		var last error
		for _, err := range testStream(t, cfg).Batches(ctx, Position{}) {
			if err != nil {
				last = err
				break
			}
			if n++; n == 5 {
				cancel()
			}
			if n > 1000 {
				t.Fatal("stream kept going after cancel")
			}
		}
		if !errors.Is(last, context.Canceled) {
			t.Errorf("ended with %v, want context.Canceled", last)
		}
		waitGoroutines(t, base)
	})
	t.Run("break", func(t *testing.T) {
		base := runtime.NumGoroutine()
		take(t, testStream(t, cfg), Position{}, 2)
		waitGoroutines(t, base)
	})
	t.Run("deadline during once", func(t *testing.T) {
		base := runtime.NumGoroutine()
		ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
		defer cancel()
		<-ctx.Done()
		var last error
		for _, err := range testStream(t, cfg).Once(ctx) {
			last = err
		}
		if !errors.Is(last, context.DeadlineExceeded) {
			t.Errorf("ended with %v, want context.DeadlineExceeded", last)
		}
		waitGoroutines(t, base)
	})
}

func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	shard := writeShard(t, dir, "one.tar", goodSample(t, "k", 1, testImageSize))
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no shards", Config{BatchSize: 1}, "Config.Shards"},
		{"zero batch", Config{Shards: []string{shard}}, "Config.BatchSize"},
		{"negative shuffle", Config{Shards: []string{shard}, BatchSize: 1, ShuffleBuffer: -1}, "shuffle_buffer"},
		{"negative workers", Config{Shards: []string{shard}, BatchSize: 1, Workers: -2}, "workers"},
		{"negative image size", Config{Shards: []string{shard}, BatchSize: 1, ImageSize: -1}, "Config.ImageSize"},
		{"missing shard", Config{Shards: []string{shard + ".missing"}, BatchSize: 1}, "one.tar.missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg, Deterministic(preprocess.OpenAI(4).Apply), tokenizer.NewByteLevel(8))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one naming %s", err, c.want)
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		s := testStream(t, Config{Shards: []string{shard}, BatchSize: 1})
		if s.cfg.Workers != runtime.NumCPU() || s.cfg.ShuffleBuffer != DefaultShuffleBuffer {
			t.Errorf("workers %d shuffle %d, want %d and %d", s.cfg.Workers, s.cfg.ShuffleBuffer, runtime.NumCPU(), DefaultShuffleBuffer)
		}
	})
	t.Run("negative start", func(t *testing.T) {
		s := testStream(t, Config{Shards: []string{shard}, BatchSize: 1})
		for _, err := range s.Batches(context.Background(), Position{Samples: -1}) {
			if err == nil || !strings.Contains(err.Error(), "start position") {
				t.Errorf("error %v, want an invalid start position", err)
			}
		}
	})
}

// BenchmarkBatches measures samples per second through the whole pipeline,
// tar shard to batch: "synthetic" isolates the pipeline's own cost with 4×4
// images; "real224" runs the shared biomedical images (mostly large JPEGs)
// through the eval transform at 224, with 1 and 2 decode workers.
// samples/cpu-s divides by the process's CPU time: the per-core figure,
// independent of other load on the machine.
func BenchmarkBatches(b *testing.B) {
	b.Run("synthetic", func(b *testing.B) {
		shards, _ := writeDataset(b, b.TempDir(), 4, 256, testImageSize)
		benchStream(b, Config{Shards: shards, BatchSize: 64, ShuffleBuffer: 256}, Deterministic(preprocess.OpenAI(testImageSize).Apply))
	})
	dir := testshared.Locate()
	if dir == "" {
		return
	}
	files, _ := filepath.Glob(filepath.Join(dir, "data/images/*/*.*g"))
	more, _ := filepath.Glob(filepath.Join(dir, "data/images/*/*/*/*.png"))
	files = append(files, more...)
	if len(files) == 0 {
		return
	}
	var members []member
	for i, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		key := fmt.Sprintf("%04d", i)
		members = append(members, member{name: key + filepath.Ext(f), data: raw}, member{name: key + ".txt", data: []byte(filepath.Base(f))},
			member{name: key + ".json", data: []byte(`{"article_license": "CC BY", "article_text": "` + strings.Repeat("text ", 20000) + `"}`)})
	}
	shard := writeShard(b, b.TempDir(), "real.tar", members)
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("real224/workers=%d", workers), func(b *testing.B) {
			benchStream(b, Config{Shards: []string{shard}, BatchSize: 8, ShuffleBuffer: 16, Workers: workers,
				Filter: Filter{Licenses: []string{"commercial"}}}, Deterministic(preprocess.OpenAI(224).Apply))
		})
	}
}

func benchStream(b *testing.B, cfg Config, img ImageFunc) {
	s, err := New(cfg, img, tokenizer.NewByteLevel(77))
	if err != nil {
		b.Fatal(err)
	}
	samples := 0
	cpu0 := cpuTime()
	for batch, err := range s.Batches(context.Background(), Position{}) {
		if err != nil {
			b.Fatal(err)
		}
		samples += batch.Size
		if !b.Loop() {
			break
		}
	}
	b.ReportMetric(float64(samples)/b.Elapsed().Seconds(), "samples/s")
	if cpu := (cpuTime() - cpu0).Seconds(); cpu > 0 {
		b.ReportMetric(float64(samples)/cpu, "samples/cpu-s")
	}
}

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestEpochSmallerThanABatch: when training drops each epoch's last partial
// batch, an epoch with fewer usable samples than one batch would never give
// a batch, and the stream would read epoch after epoch forever; it is an
// error naming the counts instead. Without DropLast, or read once, the same
// data gives its partial batch.
func TestEpochSmallerThanABatch(t *testing.T) {
	shards, _ := writeDataset(t, t.TempDir(), 1, 2, testImageSize)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := testStream(t, Config{Shards: shards, BatchSize: 4, Workers: 2, DropLast: true})
	var err error
	for _, e := range s.Batches(ctx, Position{}) {
		if err = e; err != nil {
			break
		}
		t.Fatal("a batch from an epoch of 2 samples with batch size 4 and DropLast")
	}
	if err == nil || !strings.Contains(err.Error(), "only 2 usable samples, fewer than one batch of 4") {
		t.Fatalf("error %v; want one naming 2 usable samples and the batch of 4", err)
	}
	s = testStream(t, Config{Shards: shards, BatchSize: 4, Workers: 2})
	for b, err := range s.Batches(ctx, Position{}) {
		if err != nil || b.Size != 2 {
			t.Fatalf("without DropLast: batch of %d, %v; want the partial batch of 2", b.Size, err)
		}
		break
	}
	s = testStream(t, Config{Shards: shards, BatchSize: 4, Workers: 2, DropLast: true})
	n := 0
	for b, err := range s.Once(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		n += b.Size
	}
	if n != 2 {
		t.Errorf("read once: %d samples, want 2", n)
	}
}
