// Package stream reads local WebDataset tar shards and turns them into
// training and evaluation batches of preprocessed pixels and token ids.
//
// Shards are read sequentially, samples pass a bounded, seeded shuffle
// buffer, images are decoded and preprocessed by a pool of workers, and
// batches come out in an order fixed by the seed alone, whatever the number
// of workers. A Position (epoch, samples consumed) stored with a checkpoint
// resumes the stream exactly. Image preprocessing and tokenisation are
// passed in, so the package depends on neither.
//
//	s, err := stream.New(stream.Config{
//		Shards:    []string{"/data/biomedica/shard-{000000..000099}.tar"},
//		BatchSize: 256,
//		Seed:      1,
//	}, preprocess.OpenAI(224).Apply, tok)
//	for batch, err := range s.Batches(ctx, stream.Position{}) {
//		if err != nil { ... }
//		step(batch.Pixels, batch.Tokens) // then save batch.Next with the checkpoint
//	}
package stream

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sync"
)

// Tokenizer turns a caption into exactly ContextLength ids.
// github.com/bmca/bmca/text/tokenizer implementations satisfy it. Encode is
// called from several goroutines at once and must be safe for that.
type Tokenizer interface {
	Encode(text string) []int32
	ContextLength() int
}

// ImageFunc turns encoded image bytes into a [3, S, S] float32 tensor,
// row-major; preprocess.Config.Apply fits. It is called from several
// goroutines at once. An error marks the sample as undecodable; it is
// skipped, not fatal.
type ImageFunc func(encoded []byte) ([]float32, error)

// DefaultShuffleBuffer is the shuffle buffer size used when
// Config.ShuffleBuffer is 0: OpenCLIP's _SAMPLE_SHUFFLE_SIZE.
const DefaultShuffleBuffer = 5000

// Config describes a stream. The zero value of each optional field selects
// the documented default.
type Config struct {
	// Shards are shard patterns as ExpandShards accepts them: paths, globs,
	// brace ranges, several joined by "::". Required.
	Shards []string
	// BatchSize is the number of samples per batch. Required, > 0.
	BatchSize int
	// ShuffleBuffer is how many samples the shuffle buffer holds: each
	// sample read replaces a uniformly chosen one, which is emitted. Larger
	// mixes better (BIOMEDICA shards are visually homogeneous) at the cost
	// of memory, since buffered samples keep their encoded image. 0 selects
	// DefaultShuffleBuffer; 1 keeps the read order.
	ShuffleBuffer int
	// Seed fixes the shard order and the shuffle of every epoch.
	Seed int64
	// Workers is the number of goroutines decoding and preprocessing
	// images. It changes speed, never the batches. 0 selects
	// runtime.NumCPU().
	Workers int
	// DropLast drops the last, partial batch of each training epoch; when
	// false it is emitted with fewer samples. Once never drops.
	DropLast bool
	// ImageSize is the side S of the images ImageFunc returns, so that each
	// takes 3·S² floats; an image of another size is skipped as
	// ReasonImageSize. 0 takes the size of the first image.
	ImageSize int
}

// withDefaults fills the optional fields and validates the rest, naming the
// offending field.
func (c Config) withDefaults() (Config, error) {
	if len(c.Shards) == 0 {
		return c, errors.New("stream: Config.Shards is empty")
	}
	if c.BatchSize <= 0 {
		return c, fmt.Errorf("stream: Config.BatchSize must be positive, got %d", c.BatchSize)
	}
	if c.ShuffleBuffer < 0 {
		return c, fmt.Errorf("stream: Config.ShuffleBuffer must be ≥ 0, got %d", c.ShuffleBuffer)
	}
	if c.Workers < 0 {
		return c, fmt.Errorf("stream: Config.Workers must be ≥ 0, got %d", c.Workers)
	}
	if c.ImageSize < 0 {
		return c, fmt.Errorf("stream: Config.ImageSize must be ≥ 0, got %d", c.ImageSize)
	}
	if c.ShuffleBuffer == 0 {
		c.ShuffleBuffer = DefaultShuffleBuffer
	}
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	return c, nil
}

// Position is a point in the stream: the epoch and how many samples of it,
// in shuffled order, have been consumed. Skipped (bad) samples count as
// consumed, so a Position means the same thing whatever the data quality.
// It serialises to JSON as {"epoch":2,"samples":1024}.
type Position struct {
	Epoch   int   `json:"epoch"`
	Samples int64 `json:"samples"`
}

// Batch is one batch of samples.
type Batch struct {
	// Pixels holds Size images of [3, S, S], row-major: [Size, 3, S, S].
	Pixels []float32
	// Tokens holds Size token rows of the tokenizer's context length L: [Size, L].
	Tokens []int32
	// Keys are the samples' WebDataset keys, for tracing a batch back to its data.
	Keys []string
	// Size is the number of samples, BatchSize except for a last partial batch.
	Size int
	// Next is the position right after this batch; resuming from it yields
	// the batches that follow this one.
	Next Position
}

// Reason says why a sample was skipped.
type Reason string

// Reasons a sample is skipped, in the order they are checked.
const (
	ReasonNoImage      Reason = "no_image"      // no jpg, png, jpeg or webp member
	ReasonNoCaption    Reason = "no_caption"    // no txt member
	ReasonEmptyCaption Reason = "empty_caption" // txt member is empty or whitespace
	ReasonDecode       Reason = "decode"        // ImageFunc returned an error
	ReasonImageSize    Reason = "image_size"    // ImageFunc returned a tensor of another size
)

// Stats counts what a Stream has done, over all its iterations.
type Stats struct {
	// Samples is the number of samples delivered in batches.
	Samples int64
	// Skipped counts the skipped samples by reason.
	Skipped map[Reason]int64
	// ShardErrors counts shards that failed to open or read; each is
	// skipped from the failing point on.
	ShardErrors int64
	// LastShardError is the most recent of those errors, nil if none.
	LastShardError error
	// LastDecodeError is the most recent ImageFunc error, nil if none.
	LastDecodeError error
}

// counters is the mutable side of Stats.
type counters struct {
	mu    sync.Mutex
	stats Stats
}

// skip counts a skipped sample; err is the ImageFunc error for ReasonDecode.
func (c *counters) skip(r Reason, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stats.Skipped == nil {
		c.stats.Skipped = map[Reason]int64{}
	}
	c.stats.Skipped[r]++
	if r == ReasonDecode {
		c.stats.LastDecodeError = err
	}
}

func (c *counters) delivered(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Samples += int64(n)
}

func (c *counters) shardError(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.ShardErrors++
	c.stats.LastShardError = err
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Skipped = maps.Clone(c.stats.Skipped)
	return s
}

// Stream produces batches from a fixed list of shards. Its methods are safe
// for concurrent use; each iteration runs its own pipeline.
type Stream struct {
	cfg    Config
	shards []string
	img    ImageFunc
	tok    Tokenizer
	counts counters
}

// New expands cfg.Shards and checks cfg. img and tok do the per-sample work.
func New(cfg Config, img ImageFunc, tok Tokenizer) (*Stream, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if img == nil {
		return nil, errors.New("stream: New: ImageFunc is nil")
	}
	if tok == nil {
		return nil, errors.New("stream: New: Tokenizer is nil")
	}
	if tok.ContextLength() <= 0 {
		return nil, fmt.Errorf("stream: New: tokenizer context length %d", tok.ContextLength())
	}
	shards, err := ExpandShards(cfg.Shards)
	if err != nil {
		return nil, err
	}
	return &Stream{cfg: cfg, shards: shards, img: img, tok: tok}, nil
}

// Shards returns the expanded shard list, in the order Once reads it.
func (s *Stream) Shards() []string { return append([]string(nil), s.shards...) }

// Stats returns a snapshot of the counters; it may be called while batches
// are being produced.
func (s *Stream) Stats() Stats { return s.counts.snapshot() }
