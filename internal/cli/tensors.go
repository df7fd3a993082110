package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/data/batchfile"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/train"
)

// tensorSource adapts a data/batchfile.File (data.tensors) to train.Source:
// each file batch becomes accum_freq consecutive micro-batches, so the
// accumulated optimiser step sees exactly the file's batch, in the file's
// order (OpenCLIP's accumulation concatenates its micro-batches' features
// in order too).
type tensorSource struct {
	f     *batchfile.File
	parts int
}

// openTensorSource opens cfg's data.tensors for the model and checks that
// it holds enough batches for train.steps and that accum_freq divides its
// batch size.
func openTensorSource(cfg *config.Config, model clip.Config) (*tensorSource, error) {
	f, err := batchfile.Open(cfg.Data.Tensors, batchfile.Shape{
		ImageSize: model.VisionCfg.ImageSize, ContextLength: model.TextCfg.ContextLength, VocabSize: model.TextCfg.TokenVocabSize()})
	if err != nil {
		return nil, fmt.Errorf("data.tensors: %w", err)
	}
	if f.Steps() < cfg.Train.Steps {
		f.Close()
		return nil, fmt.Errorf("data.tensors: %s: tensor %q holds %d batches, but train.steps is %d (one batch per step)",
			f.Path(), batchfile.PixelsName, f.Steps(), cfg.Train.Steps)
	}
	parts := max(cfg.Train.AccumFreq, 1)
	if f.BatchSize()%parts != 0 {
		f.Close()
		return nil, fmt.Errorf("data.tensors: %s: batches of %d pairs do not split into train.accum_freq = %d equal micro-batches",
			f.Path(), f.BatchSize(), parts)
	}
	return &tensorSource{f: f, parts: parts}, nil
}

// MicroBatchSize is the file's batch size divided by accum_freq.
func (s *tensorSource) MicroBatchSize() int { return s.f.BatchSize() / s.parts }

func (s *tensorSource) Close() error { return s.f.Close() }

func (s *tensorSource) Batches(ctx context.Context, from json.RawMessage) iter.Seq2[train.Batch, error] {
	return func(yield func(train.Batch, error) bool) {
		var start batchfile.Position
		if len(from) > 0 {
			dec := json.NewDecoder(bytes.NewReader(from))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&start); err != nil {
				yield(train.Batch{}, fmt.Errorf("checkpoint stream position %s is not a data.tensors position (was the run reading shards?): %w", from, err))
				return
			}
		}
		for b, err := range s.f.Batches(ctx, start, s.parts) {
			if err != nil {
				yield(train.Batch{}, err)
				return
			}
			pos, err := json.Marshal(b.Next)
			if err != nil {
				yield(train.Batch{}, err)
				return
			}
			if !yield(train.Batch{Pixels: b.Pixels, Tokens: b.Tokens, Size: b.Size, Position: pos}, nil) {
				return
			}
		}
	}
}
