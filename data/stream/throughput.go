package stream

import (
	"math"
	"sync/atomic"
	"time"
)

// Throughput is the pipeline's own timing, cumulative over a Stream's
// life, so that a trainer can tell whether it waits for data because the
// data are slow or because it asks too often: Capacity turns two snapshots
// into the samples per second the pipeline could deliver.
type Throughput struct {
	// Read is the number of samples the reader handed to the workers.
	Read int64 `json:"read"`
	// ReadSeconds is the reader's own time: reading and waiting for
	// shards (the network), filtering, filling and draining the shuffle
	// buffer, skipping to a resume point, but not the time it was held up
	// because the decode workers or the consumer were behind. It is
	// counted at each hand-over, so a stall shows once it ends.
	ReadSeconds float64 `json:"read_s"`
	// Decoded is the number of samples the workers decoded and tokenised
	// (or found bad).
	Decoded int64 `json:"decoded"`
	// DecodeSeconds is the time the workers spent on them, summed over
	// workers.
	DecodeSeconds float64 `json:"decode_s"`
	// Workers is the number of decode workers.
	Workers int `json:"workers"`
}

// Capacity returns the samples per second the pipeline could have
// delivered between the snapshot since and t, had its consumer never held
// it back: the lower of its two stages' rates, reading (samples over the
// reader's own time) and decoding (samples over worker time, times the
// number of workers). A stage that is the bottleneck is measured exactly;
// one that is not may read high, having worked ahead while held up. It
// returns 0 when nothing was measured.
func (t Throughput) Capacity(since Throughput) float64 {
	rate := math.Inf(1)
	if dt := t.ReadSeconds - since.ReadSeconds; dt > 0 {
		rate = float64(t.Read-since.Read) / dt
	}
	if dt := t.DecodeSeconds - since.DecodeSeconds; dt > 0 {
		rate = min(rate, float64(t.Decoded-since.Decoded)*float64(t.Workers)/dt)
	}
	if math.IsInf(rate, 1) {
		return 0
	}
	return rate
}

// timing is the mutable side of Throughput, updated without locks from
// the reader and the workers.
type timing struct {
	read, readNanos, decoded, decodeNanos atomic.Int64
}

// reading adds reader time.
func (t *timing) reading(d time.Duration) { t.readNanos.Add(int64(d)) }

// handedOver counts a sample the reader spent d on (since the previous
// hand-over) before handing it to the workers.
func (t *timing) handedOver(d time.Duration) {
	t.read.Add(1)
	t.readNanos.Add(int64(d))
}

// decodedOne counts a sample a worker spent d on.
func (t *timing) decodedOne(d time.Duration) {
	t.decoded.Add(1)
	t.decodeNanos.Add(int64(d))
}

func (t *timing) snapshot(workers int) Throughput {
	return Throughput{
		Read: t.read.Load(), ReadSeconds: time.Duration(t.readNanos.Load()).Seconds(),
		Decoded: t.decoded.Load(), DecodeSeconds: time.Duration(t.decodeNanos.Load()).Seconds(),
		Workers: workers,
	}
}
