package train

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"testing"
	"time"

	"github.com/bmca/bmca/model/clip"
	"github.com/gomlx/compute"
)

// BenchmarkLoopDataWait measures the loop's data_wait (the share of wall
// time a step waited for its batch) with a data stage that needs half a
// step's time per batch, and, for contrast, twice a step's time. The step
// is the demo model's at batch 32, timed first; the data stage is a source
// that sleeps for its share, so the two only compete for the CPU through
// the copy of each batch. With the next batch read and uploaded while a
// step runs, data_wait should stay under 5% when the data stage is the
// faster, and be about half when it is twice as slow.
//
//	go test ./train -run '^$' -bench LoopDataWait -benchtime 1x
func BenchmarkLoopDataWait(b *testing.B) {
	cfg, be := demoModel(b)
	const batch, steps = 32, 20
	src := newCyclingSource(cfg, 3, batch)
	for _, tk := range src.tokens {
		for i := range tk {
			tk[i] %= int32(cfg.TextCfg.VocabSize)
		}
	}
	step := medianStep(b, be, cfg, src)
	for _, ratio := range []float64{0.5, 2} {
		b.Run(fmt.Sprintf("data=%.1fx-step", ratio), func(b *testing.B) {
			var waits []float64
			for b.Loop() {
				opts := Options{Output: b.TempDir(), Steps: steps, Schedule: Schedule{Kind: "const", PeakLR: 1e-4, Total: steps},
					Recipe: Recipe{AdamW: testAdamW}, LogEvery: steps, Init: clip.Init(cfg, 1)}
				slow := &delayedSource{src, time.Duration(ratio * float64(step))}
				_, err := Loop(context.Background(), be, cfg, opts, slow, Hooks{OnStep: func(r StepReport) {
					if r.Step > 2 { // the first steps compile and fill the pipeline
						waits = append(waits, r.DataWait)
					}
				}})
				if err != nil {
					b.Fatal(err)
				}
			}
			mean := 0.0
			for _, w := range waits {
				mean += w / float64(len(waits))
			}
			b.ReportMetric(100*mean, "data-wait-%")
			b.ReportMetric(float64(step.Microseconds())/1000, "step-ms")
		})
	}
}

// medianStep times a few steps of the model on the source's first batch.
func medianStep(b *testing.B, be compute.Backend, cfg clip.Config, src *cyclingSource) time.Duration {
	b.Helper()
	s, err := NewStepper(be, cfg, clip.Init(cfg, 1), Recipe{AdamW: testAdamW}, nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Finalize()
	var times []time.Duration
	for range 6 {
		st, err := s.TrainStep([]MicroBatch{{Pixels: src.pixels[0], Tokens: src.tokens[0], Size: src.size}}, 1e-4)
		if err != nil {
			b.Fatal(err)
		}
		times = append(times, st.Duration)
	}
	slices.Sort(times[1:])
	return times[1+len(times[1:])/2]
}

// delayedSource is a data stage that needs delay per batch.
type delayedSource struct {
	*cyclingSource
	delay time.Duration
}

func (s *delayedSource) Batches(ctx context.Context, from json.RawMessage) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		for b, err := range s.cyclingSource.Batches(ctx, from) {
			time.Sleep(s.delay)
			if !yield(b, err) {
				return
			}
		}
	}
}
