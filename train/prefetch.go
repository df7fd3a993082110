package train

import (
	"context"
	"encoding/json"
	"iter"
	"sync"
)

// staged is a batch taken from the data stage ahead of its step, with its
// pixels and tokens already on the device.
type staged struct {
	Batch
	dev deviceBatch
}

// micro is the batch as the step's micro-batch.
func (b staged) micro() MicroBatch {
	return MicroBatch{Pixels: b.Pixels, Tokens: b.Tokens, Size: b.Size}
}

// pending collects the micro-batches of one optimiser step as prefetch
// delivers them, with their uploads.
type pending struct {
	micro []MicroBatch
	dev   []deviceBatch
}

func newPending(accum int) *pending {
	return &pending{micro: make([]MicroBatch, 0, accum), dev: make([]deviceBatch, 0, accum)}
}

// add appends b and returns how many micro-batches are collected.
func (p *pending) add(b staged) int {
	p.micro, p.dev = append(p.micro, b.micro()), append(p.dev, b.dev)
	return len(p.micro)
}

// reset empties p after the step took the micro-batches (and released
// their uploads).
func (p *pending) reset() { p.micro, p.dev = p.micro[:0], p.dev[:0] }

// release frees the uploads of a step that never ran.
func (p *pending) release() {
	for _, d := range p.dev {
		d.release()
	}
}

// prefetch is the loop's double buffering: a goroutine of its own pulls
// batches from data, from the position from, and stages each (stage, the
// stepper's upload to the device), keeping up to depth batches ready while
// the caller trains on the current one. The data stage therefore never
// waits for the step and the step does not wait for data or for the copy
// to the device, as long as the data stage is the faster. Batches come out
// in the source's order, so positions and resumption are unchanged; an
// error is delivered in its place and ends the iteration. Stopping the
// iteration, or cancelling ctx, stops the source, releases what was staged
// and not taken, and waits for the goroutine to end. A close of interrupt
// ends the iteration too, without an error, even while the source has
// nothing to give (a stalled download, a source that never fills a batch).
func prefetch(ctx context.Context, interrupt <-chan struct{}, data Source, from json.RawMessage, depth int, stage func(MicroBatch) (deviceBatch, error)) iter.Seq2[staged, error] {
	return func(yield func(staged, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		type item struct {
			b   staged
			err error
		}
		// The goroutine holds one staged batch while it waits to hand it
		// over; the channel holds the others.
		ready := make(chan item, max(depth, 1)-1)
		var wg sync.WaitGroup
		defer func() {
			cancel()
			for it := range ready { // unblock the goroutine, free what it staged
				it.b.dev.release()
			}
			wg.Wait()
		}()
		wg.Go(func() {
			defer close(ready)
			for b, err := range data.Batches(ctx, from) {
				it := item{b: staged{Batch: b}, err: err}
				if err == nil && stage != nil {
					it.b.dev, it.err = stage(it.b.micro())
				}
				select {
				case ready <- it:
				case <-ctx.Done():
					it.b.dev.release()
					return
				}
				if it.err != nil {
					return
				}
			}
		})
		for {
			var it item
			select {
			case next, ok := <-ready:
				if !ok {
					return
				}
				it = next
			case <-interrupt:
				return
			}
			if !yield(it.b, it.err) || it.err != nil {
				return
			}
		}
	}
}
