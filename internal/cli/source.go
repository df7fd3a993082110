package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/text/tokenizer"
	"github.com/bmca/bmca/train"
)

// streamSource adapts a data/stream.Stream to train.Source, carrying the
// stream position through checkpoints as JSON.
type streamSource struct {
	s *stream.Stream
}

func newSource(cfg *config.Config, shards []string, tok tokenizer.Tokenizer, model clip.Config) (*streamSource, error) {
	pre := Preprocess(model)
	s, err := stream.New(stream.Config{
		Shards:        shards,
		BatchSize:     cfg.Train.BatchSize,
		ShuffleBuffer: cfg.Data.ShuffleBuffer,
		Seed:          int64(cfg.Train.Seed),
		Workers:       cfg.Data.Workers,
		DropLast:      true, // the contrastive batch size stays fixed, as OpenCLIP's training batches do
		ImageSize:     model.VisionCfg.ImageSize,
	}, pre.Apply, tok)
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
			pos, _ := json.Marshal(b.Next)
			if !yield(train.Batch{Pixels: b.Pixels, Tokens: b.Tokens, Size: b.Size, Position: pos}, nil) {
				return
			}
		}
	}
}

// Stats reports skipped samples by reason.
func (src *streamSource) Stats() stream.Stats { return src.s.Stats() }
