package stream

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/text/tokenizer"
)

func TestThroughputCapacity(t *testing.T) {
	base := Throughput{Read: 100, ReadSeconds: 1, Decoded: 80, DecodeSeconds: 4, Workers: 4}
	for _, c := range []struct {
		name string
		now  Throughput
		want float64
	}{
		// 1000 samples read in 2 s of the reader's time: 500/s; 1000
		// decoded in 8 worker-seconds by 4 workers: 500/s.
		{"balanced", Throughput{Read: 1100, ReadSeconds: 3, Decoded: 1080, DecodeSeconds: 12, Workers: 4}, 500},
		// Decoding is the bottleneck: 400 in 8 worker-seconds ×4 = 200/s.
		{"decode-bound", Throughput{Read: 1100, ReadSeconds: 3, Decoded: 480, DecodeSeconds: 12, Workers: 4}, 200},
		// Reading is (the network): 100 samples in 2 s.
		{"read-bound", Throughput{Read: 200, ReadSeconds: 3, Decoded: 1080, DecodeSeconds: 12, Workers: 4}, 50},
		{"only decoding measured", Throughput{Read: 100, ReadSeconds: 1, Decoded: 180, DecodeSeconds: 6, Workers: 4}, 200},
		{"nothing measured", base, 0},
	} {
		if got := c.now.Capacity(base); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: capacity %g, want %g", c.name, got, c.want)
		}
	}
}

// TestThroughputCounts checks the stream's own accounting: every sample
// read and decoded is counted (two undecodable ones too, and skipped), and
// with an image transform that takes at
// least 2 ms a sample, the capacity of 2 workers cannot exceed 1000/s,
// however slowly the consumer takes the batches (it naps after each).
func TestThroughputCounts(t *testing.T) {
	dir := t.TempDir()
	shards, _ := writeDataset(t, dir, 2, 10, testImageSize)
	shards = append(shards, writeShard(t, dir, "bad.tar", []member{
		{name: "b1.png", data: []byte("not a png")}, {name: "b1.txt", data: []byte("a caption")},
		{name: "b2.jpg", data: []byte("\xff\xd8\xff truncated")}, {name: "b2.txt", data: []byte("a caption")},
	}))
	eval := preprocess.OpenAI(testImageSize).Apply
	slow := func(encoded []byte, _ uint64) ([]float32, error) {
		time.Sleep(2 * time.Millisecond)
		return eval(encoded)
	}
	s, err := New(Config{Shards: shards, BatchSize: 5, ShuffleBuffer: 4, Workers: 2}, slow, tokenizer.NewByteLevel(24))
	if err != nil {
		t.Fatal(err)
	}
	before := s.Stats().Throughput
	for range s.Once(context.Background()) {
		time.Sleep(5 * time.Millisecond)
	}
	tp := s.Stats().Throughput
	if tp.Read != 22 || tp.Decoded != 22 || tp.Workers != 2 {
		t.Errorf("throughput %+v: want 22 samples read and decoded by 2 workers", tp)
	}
	if tp.DecodeSeconds < 22*0.002 {
		t.Errorf("decode time %.3fs for 20 samples of at least 2 ms", tp.DecodeSeconds)
	}
	if c := tp.Capacity(before); c <= 0 || c > 1000 {
		t.Errorf("capacity %.0f samples/s, want in (0, 1000]", c)
	}
	if st := s.Stats(); st.SkippedTotal() != 2 {
		t.Errorf("%d skipped (%v), want the 2 undecodable samples", st.SkippedTotal(), st.Skipped)
	}
}
