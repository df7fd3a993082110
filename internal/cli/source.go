package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/text/tokenizer"
	"github.com/bmca/bmca/train"
)

// streamSource adapts a data/stream.Stream to train.Source, carrying the
// stream position through checkpoints as JSON.
type streamSource struct {
	s *stream.Stream
	// recent holds the throughput at the last reports, oldest first: the
	// reported capacity spans them, which smooths out single steps.
	recent []stream.Throughput
	rate   float64
}

// reportWindow is how many reports (steps) the reported capacity spans.
const reportWindow = 8

func newSource(cfg *config.Config, shards []string, tok tokenizer.Tokenizer, model clip.Config, pre preprocess.Config) (*streamSource, error) {
	d := cfg.Data
	pre.JPEG = d.JPEGDecoder
	pre.DCTScaling = d.DCTScaling
	img := stream.Deterministic(pre.Apply)
	if d.Augment.Enabled {
		var err error
		if img, err = pre.Train(d.Augment.Augment); err != nil {
			return nil, fmt.Errorf("data.augment: %w", err)
		}
	}
	// The data section holds the stream's own options; the rest of the
	// stream's config comes from the run.
	sc := d.Config
	sc.Shards = shards
	sc.BatchSize = cfg.Train.BatchSize
	sc.Seed = int64(cfg.Train.Seed)
	sc.DropLast = true // the contrastive batch size stays fixed, as OpenCLIP's training batches do
	sc.ImageSize = model.VisionCfg.ImageSize
	s, err := stream.New(sc, img, tok)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return &streamSource{s: s}, nil
}

func (src *streamSource) Batches(ctx context.Context, from json.RawMessage) iter.Seq2[train.Batch, error] {
	return func(yield func(train.Batch, error) bool) {
		var start stream.Position
		if len(from) > 0 {
			if err := json.Unmarshal(from, &start); err != nil {
				yield(train.Batch{}, fmt.Errorf("checkpoint stream position %s: %w", from, err))
				return
			}
		}
		for b, err := range src.s.Batches(ctx, start) {
			if err != nil {
				yield(train.Batch{}, err)
				return
			}
			pos, err := json.Marshal(b.Next)
			if err != nil {
				yield(train.Batch{}, fmt.Errorf("stream position: %w", err))
				return
			}
			if !yield(train.Batch{Pixels: b.Pixels, Tokens: b.Tokens, Size: b.Size, Position: pos}, nil) {
				return
			}
		}
	}
}

// Stats reports skipped samples by reason.
func (src *streamSource) Stats() stream.Stats { return src.s.Stats() }

// Report is the train.Hooks.Data hook: the pipeline's capacity over the
// last reportWindow steps (the previous figure if the pipeline did nothing
// since) and the samples skipped so far. The loop calls it from one
// goroutine.
func (src *streamSource) Report() train.DataReport {
	st := src.s.Stats()
	var since stream.Throughput
	if len(src.recent) > 0 {
		since = src.recent[0]
	}
	if rate := st.Throughput.Capacity(since); rate > 0 {
		src.rate = rate
	}
	if len(src.recent) == reportWindow {
		src.recent = src.recent[1:]
	}
	src.recent = append(src.recent, st.Throughput)
	return train.DataReport{SamplesPerSec: src.rate, Skipped: st.SkippedTotal()}
}
