package train

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/gomlx/gomlx/core/tensors"
)

// countingSource serves batches numbered 0, 1, ... (one float each), fails
// with errSource when it reaches batch errAt, and closes done when its
// iteration ends.
type countingSource struct {
	errAt int
	done  chan struct{}
}

var errSource = errors.New("shard 7 is corrupt")

func (s *countingSource) Batches(ctx context.Context, from json.RawMessage) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		if s.done != nil {
			defer close(s.done)
		}
		for i := 0; ctx.Err() == nil; i++ {
			if i == s.errAt {
				yield(Batch{}, errSource)
				return
			}
			if !yield(Batch{Pixels: []float32{float32(i)}, Size: 1, Position: json.RawMessage(strconv.Itoa(i + 1))}, nil) {
				return
			}
		}
	}
}

// TestPrefetchStagesTheNextBatchDuringTheStep holds each batch, as a long
// step would, until the next one has been pulled from the source and
// staged; without the prefetching goroutine that never happens and the
// test times out. Batches keep the source's order, the source's error
// arrives in its place, and stopping early ends the source and releases
// what was staged but not taken.
func TestPrefetchStagesTheNextBatchDuringTheStep(t *testing.T) {
	staged := make(chan int, 100)
	var mu sync.Mutex
	var uploads []*tensors.Tensor
	stage := func(m MicroBatch) (deviceBatch, error) {
		px := tensors.FromFlatDataAndDimensions(append([]float32(nil), m.Pixels...), 1)
		mu.Lock()
		uploads = append(uploads, px)
		mu.Unlock()
		staged <- int(m.Pixels[0])
		return deviceBatch{shards: [][]any{{px}}}, nil
	}
	waitStaged := func(t *testing.T, want int) {
		t.Helper()
		select {
		case got := <-staged:
			if got != want {
				t.Fatalf("staged batch %d, want %d", got, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("batch %d was not staged while batch %d was held", want, want-1)
		}
	}

	t.Run("overlap and order", func(t *testing.T) {
		src := &countingSource{errAt: 6}
		n := 0
		for b, err := range prefetch(context.Background(), nil, src, nil, 1, stage) {
			if n == 6 {
				if !errors.Is(err, errSource) {
					t.Fatalf("item 6: error %v, want the source's", err)
				}
				continue
			}
			if err != nil || b.Pixels[0] != float32(n) || string(b.Position) != strconv.Itoa(n+1) || b.dev.shards == nil {
				t.Fatalf("item %d: batch %v (position %s, staged %v), error %v", n, b.Pixels, b.Position, b.dev.shards != nil, err)
			}
			if n == 0 {
				waitStaged(t, 0) // staged before it was handed over
			}
			if n < 5 {
				waitStaged(t, n+1) // staged while batch n is held
			}
			n++
		}
		if n != 6 {
			t.Fatalf("%d batches before the error, want 6", n)
		}
	})

	t.Run("stopping early releases the staged batch", func(t *testing.T) {
		src := &countingSource{errAt: -1, done: make(chan struct{})}
		mu.Lock()
		uploads = nil
		mu.Unlock()
		for b := range prefetch(context.Background(), nil, src, nil, 2, stage) {
			if b.Pixels[0] == 0 {
				// Wait until batches 1 and 2 are staged (depth 2), then stop.
				<-staged
				waitStaged(t, 1)
				waitStaged(t, 2)
				b.dev.release()
				break
			}
		}
		select {
		case <-src.done:
		default:
			t.Fatal("the source was still running after the iteration ended")
		}
		mu.Lock()
		defer mu.Unlock()
		for i, u := range uploads {
			if u.Ok() {
				t.Errorf("upload of batch %d was not released", i)
			}
		}
	})
}

// TestLoopReadsAheadDuringTheStep runs the real loop with a hook that,
// after step k, waits for the source to hand out batch k+1: only a loop
// that reads ahead while a step is in flight gets past step 1.
func TestLoopReadsAheadDuringTheStep(t *testing.T) {
	be := graphtest.Backend(t)
	cfg := tinyConfig()
	src := &aheadSource{cyclingSource: newCyclingSource(cfg, 2, 4), pulled: make(chan int, 100)}
	opts := testOptions(t, cfg, 4)
	res, err := Loop(context.Background(), be, cfg, opts, src, Hooks{OnStep: func(r StepReport) {
		for {
			select {
			case i := <-src.pulled:
				if i == r.Step { // batches count from 0: batch r.Step is the next step's
					return
				}
			case <-time.After(30 * time.Second):
				t.Errorf("step %d: the next batch was not read while the step ran", r.Step)
				return
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Step != 4 {
		t.Errorf("ran %d steps, want 4", res.Step)
	}
}

// aheadSource is a cyclingSource that reports each batch it hands out.
type aheadSource struct {
	*cyclingSource
	pulled chan int
}

func (s *aheadSource) Batches(ctx context.Context, from json.RawMessage) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		i := 0
		for b, err := range s.cyclingSource.Batches(ctx, from) {
			select {
			case s.pulled <- i:
			default:
			}
			i++
			if !yield(b, err) {
				return
			}
		}
	}
}
