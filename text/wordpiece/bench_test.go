package wordpiece

import (
	"testing"
	"time"

	"github.com/bmca/bmca/internal/cputime"
)

// benchCaptions reads the 9,402 ROCO captions of the shared data.
func benchCaptions(b *testing.B) []string {
	var caps []string
	for _, split := range []string{"test/radiology", "test/non-radiology", "validation/non-radiology"} {
		for _, c := range readCaptions(b, split) {
			caps = append(caps, c)
		}
	}
	if len(caps) != 9402 {
		b.Fatalf("%d captions, want 9402", len(caps))
	}
	return caps
}

// reportTokens reports the tokens ([CLS] to [SEP], padding excluded) and
// captions encoded per second of wall time, and tokens per second of
// process CPU time (with -cpu 1, the one-core rate even on a busy machine).
func reportTokens(b *testing.B, tokens, captions int, cpuStart time.Duration) {
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(tokens)/s, "tokens/s")
	b.ReportMetric(float64(captions)/s, "captions/s")
	if cpu := (cputime.Process() - cpuStart).Seconds(); cpu > 0 {
		b.ReportMetric(float64(tokens)/cpu, "tokens/cpu-s")
	}
}

// BenchmarkEncode encodes one caption per op on one goroutine, cycling
// through the ROCO captions, at BiomedCLIP's context length.
func BenchmarkEncode(b *testing.B) {
	tok := loadTokenizer(b, refContext)
	caps := benchCaptions(b)
	lens := make([]int, len(caps))
	for i, c := range caps {
		lens[i] = len(trim(tok.Encode(c), tok.Pad()))
	}
	dst := make([]int32, refContext)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	tokens := 0
	for i := range b.N {
		tok.EncodeTo(dst, caps[i%len(caps)])
		tokens += lens[i%len(caps)]
	}
	reportTokens(b, tokens, b.N, cpu)
}

// BenchmarkEncodeBatch encodes the whole corpus per op with EncodeBatch,
// which spreads it over GOMAXPROCS goroutines (run with -cpu 1,2,...).
func BenchmarkEncodeBatch(b *testing.B) {
	tok := loadTokenizer(b, refContext)
	caps := benchCaptions(b)
	tokens := 0
	for _, c := range caps {
		tokens += len(trim(tok.Encode(c), tok.Pad()))
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	for range b.N {
		tok.EncodeBatch(caps)
	}
	reportTokens(b, b.N*tokens, b.N*len(caps), cpu)
}
