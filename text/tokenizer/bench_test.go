package tokenizer

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bmca/bmca/internal/cputime"
	"github.com/bmca/bmca/internal/testshared"
)

// loadCaptions reads the 8,179 ROCO radiology test captions (the text after
// the first tab of each line, as the references take it).
func loadCaptions(b *testing.B) []string {
	b.Helper()
	f, err := os.Open(testshared.Path(b, "data/captions/test/radiology/captions.txt"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var caps []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if _, text, ok := strings.Cut(line, "\t"); ok {
			caps = append(caps, text)
		}
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	if len(caps) != 8179 {
		b.Fatalf("%d captions, want 8179", len(caps))
	}
	return caps
}

// BenchmarkEncode encodes one caption per op on one goroutine, cycling
// through the corpus (after one warm-up pass fills the word cache, as any
// real run's first batches do). OpenCLIP's Python does about 10,500
// captions/s on one core.
func BenchmarkEncode(b *testing.B) {
	tok := loadCLIP(b)
	caps := loadCaptions(b)
	for _, c := range caps {
		tok.Encode(c)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	for i := range b.N {
		tok.Encode(caps[i%len(caps)])
	}
	reportRates(b, b.N, cpu)
}

// reportRates reports captions per second of wall time and per second of
// process CPU time (the latter, with -cpu 1, is the one-core figure even
// when other processes share the machine).
func reportRates(b *testing.B, captions int, cpuStart time.Duration) {
	b.ReportMetric(float64(captions)/b.Elapsed().Seconds(), "captions/s")
	if cpu := (cputime.Process() - cpuStart).Seconds(); cpu > 0 {
		b.ReportMetric(float64(captions)/cpu, "captions/cpu-s")
	}
}

// BenchmarkEncodeBatch encodes the whole corpus per op with EncodeBatch,
// which spreads it over GOMAXPROCS goroutines (run with -cpu 1,2,...).
func BenchmarkEncodeBatch(b *testing.B) {
	tok := loadCLIP(b)
	caps := loadCaptions(b)
	tok.EncodeBatch(caps)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	for range b.N {
		tok.EncodeBatch(caps)
	}
	reportRates(b, b.N*len(caps), cpu)
}

// BenchmarkEncodeCold measures a fresh tokenizer's first pass over the
// corpus: every new word goes through BPE once.
func BenchmarkEncodeCold(b *testing.B) {
	caps := loadCaptions(b)
	path := testshared.Path(b, vocabRel)
	b.ReportAllocs()
	for range b.N {
		b.StopTimer()
		tok, err := NewCLIP(path, 77)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for _, c := range caps {
			tok.Encode(c)
		}
	}
	b.ReportMetric(float64(b.N*len(caps))/b.Elapsed().Seconds(), "captions/s")
}
