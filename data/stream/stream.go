// Package stream reads WebDataset tar and parquet shards, local or over
// http(s), and turns them into training and evaluation batches of
// preprocessed pixels and token ids.
//
// Shards are read by a few readers at once (each its share of the shards,
// or its own weighted draws when resampled), filtered on their json
// metadata without decoding images, interleaved in a fixed order, passed
// through a bounded, seeded shuffle buffer, decoded and preprocessed by a
// pool of workers, and batched in an order fixed by the seed alone,
// whatever the number of workers or the timing of the network. A Position
// (epoch, samples consumed) stored with a checkpoint resumes the stream
// exactly. Bad samples, filtered samples, failing shards and retried
// requests are counted in Stats. Image preprocessing and tokenisation are
// passed in, so the package depends on neither.
//
//	train, _ := preprocess.OpenAI(224).Train(preprocess.Augment{})
//	s, err := stream.New(stream.Config{
//		Shards:          []string{"biomedica:commercial,noncommercial"},
//		Resampled:       true,
//		SamplesPerEpoch: 22_940_475,
//		BatchSize:       256,
//		Seed:            1,
//		Filter:          stream.Filter{IncludePrimary: []string{"Clinical Imaging", "Microscopy"}},
//	}, train, tok)
//	for batch, err := range s.Batches(ctx, stream.Position{}) {
//		if err != nil { ... }
//		step(batch.Pixels, batch.Tokens) // then save batch.Next with the checkpoint
//	}
package stream

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"slices"
	"sync"

	"github.com/bmca/bmca/data/remote"
)

// Tokenizer turns a caption into exactly ContextLength ids.
// github.com/bmca/bmca/text/tokenizer implementations satisfy it. Encode is
// called from several goroutines at once and must be safe for that.
type Tokenizer interface {
	Encode(text string) []int32
	ContextLength() int
}

// ImageFunc turns encoded image bytes into a [3, S, S] float32 tensor,
// row-major. seed is a per-sample value derived from the stream's seed, the
// epoch and the sample's position, for random augmentation
// (preprocess.Config.Train); it is the same whatever the number of workers
// and on resume. It is called from several goroutines at once. An error
// marks the sample as undecodable; it is skipped, not fatal.
type ImageFunc func(encoded []byte, seed uint64) ([]float32, error)

// Deterministic adapts a transform without randomness, such as
// preprocess.Config.Apply (the eval transform), to an ImageFunc.
func Deterministic(f func(encoded []byte) ([]float32, error)) ImageFunc {
	return func(encoded []byte, _ uint64) ([]float32, error) { return f(encoded) }
}

// DefaultShuffleBuffer is the shuffle buffer size used when
// Config.ShuffleBuffer is 0: OpenCLIP's _SAMPLE_SHUFFLE_SIZE.
const DefaultShuffleBuffer = 5000

// DefaultReaders is the number of shards read at once when Config.Readers
// is 0. BIOMEDICA's shards are written cluster by cluster, so a batch is
// only as varied as the number of shards feeding it: with 16 readers a
// batch draws from about 16 shards (OpenCLIP's 16 dataloader workers hold
// as many shards open, though each of its batches comes from one worker).
// It is a constant rather than the machine's CPU count because readers
// change the batches (deterministically): the same config must give the
// same batches on a laptop and on a GPU node.
const DefaultReaders = 16

// Config describes a stream. The zero value of each optional field selects
// the documented default. The fields with a YAML key are the options a run
// config's data section sets (it embeds Config); the others come from
// elsewhere in the run (its shards, batch size and seed, the model's image
// size).
type Config struct {
	// Shards are shard sources: local paths, globs and brace ranges
	// (shard-{000000..000099}.tar), http(s) URLs with brace ranges, and
	// "biomedica:SUBSETS[@BASE]" (ExpandBiomedica); several may be joined
	// by "::" as in OpenCLIP's --train-data. Required.
	Shards []string `yaml:"-"`
	// Weights, when set, give one sampling weight per "::"-separated
	// source, in order, applied to each of its shards (OpenCLIP's
	// --train-data-upsampling-factors). They need Resampled, since without
	// resampling every shard is read exactly once per epoch.
	Weights []float64 `yaml:"weights"`
	// Format is "webdataset" (tar, plain or gzip), "parquet", or empty to
	// decide per shard by its extension (.parquet is parquet).
	Format string `yaml:"format"`
	// Parquet names the columns of parquet shards.
	Parquet ParquetColumns `yaml:"parquet"`
	// BatchSize is the number of samples per batch. Required, > 0.
	BatchSize int `yaml:"-"`
	// ShuffleBuffer is how many samples the shuffle buffer holds: each
	// sample read replaces a uniformly chosen one, which is emitted. Larger
	// mixes better (BIOMEDICA shards are visually homogeneous) at the cost
	// of memory, since buffered samples keep their encoded image. 0 selects
	// DefaultShuffleBuffer; 1 keeps the read order.
	ShuffleBuffer int `yaml:"shuffle_buffer"`
	// Seed fixes the shard order or draws, the shuffle, the filters'
	// random choices and the augmentation seeds of every epoch.
	Seed int64 `yaml:"-"`
	// Workers is the number of goroutines decoding and preprocessing
	// images. It changes speed, never the batches. 0 selects
	// runtime.NumCPU().
	Workers int `yaml:"workers"`
	// Readers is the number of shards read at once, like the dataloader
	// workers OpenCLIP splits shards over: each reads its own share (or,
	// resampled, its own draws), and their samples are interleaved in a
	// fixed round-robin order. The number changes which samples meet in a
	// batch, but never with timing or the machine: a given Readers always
	// gives the same batches. More readers mix more shards into each batch
	// and hide network latency. 0 selects DefaultReaders; 1 reads one shard
	// at a time, so that batches mix only what the shuffle buffer holds.
	Readers int `yaml:"readers"`
	// Resampled draws shards with replacement, weighted by Weights, from a
	// generator seeded by (Seed, epoch, rank, reader), as OpenCLIP's
	// --dataset-resampled. It needs SamplesPerEpoch. Without it, each epoch
	// reads every shard of this rank once, in an order shuffled from
	// (Seed, epoch).
	Resampled bool `yaml:"resampled"`
	// SamplesPerEpoch, when > 0, makes every epoch exactly this many
	// samples (counting bad ones): without Resampled, passes over the
	// shards repeat within an epoch as needed (OpenCLIP's
	// --train-num-samples). 0 means one pass over the shards.
	SamplesPerEpoch int64 `yaml:"samples_per_epoch"`
	// Rank and WorldSize split the shards between data-parallel processes:
	// without resampling, rank r reads shards r, r+WorldSize, ... of each
	// epoch's shuffled order; resampled, each rank draws with its own
	// generator. 0 and 0 mean a single process.
	Rank int `yaml:"-"`
	// WorldSize is the number of data-parallel processes (see Rank).
	WorldSize int `yaml:"-"`
	// DropLast drops the last, partial batch of each training epoch; when
	// false it is emitted with fewer samples. Once never drops.
	DropLast bool `yaml:"-"`
	// ImageSize is the side S of the images ImageFunc returns, so that each
	// takes 3·S² floats; an image of another size is skipped as
	// ReasonImageSize. 0 takes the size of the first image.
	ImageSize int `yaml:"-"`
	// Filter selects samples by their json metadata before decoding.
	Filter Filter `yaml:"filter"`
	// MetaFields lists json metadata fields to keep in Sample.Meta besides
	// those Filter needs (e.g. "image_hash", "article_accession_id").
	MetaFields []string `yaml:"meta_fields"`
	// MaxMemberBytes bounds the size of one image or caption member;
	// larger ones are skipped as ReasonTooLarge without being read into
	// memory (0 = 64 MiB). The json member is never read whole.
	MaxMemberBytes int64 `yaml:"max_member_bytes"`
	// HTTP configures remote shards; its Token defaults to $HF_TOKEN.
	HTTP remote.Options `yaml:"-"`
}

// ParquetColumns names the columns of parquet shards. Empty names are
// found in the schema: the image in "image" (Hugging Face's {bytes, path}
// struct), "jpg", "png", "jpeg" or "webp" (binary); the caption in "txt",
// "caption" or "text"; the key in "__key__" or "key" (else the row number).
type ParquetColumns struct {
	// Image is the image column: Hugging Face's image struct {bytes, path}
	// or a binary column of encoded bytes.
	Image string `yaml:"image"`
	// Caption is the caption column (a string).
	Caption string `yaml:"caption"`
	// Key is the sample key column (else the row number).
	Key string `yaml:"key"`
	// Meta columns are read into Sample.Meta (and so reach the Filter),
	// each as JSON; by default the Filter's fields and MetaFields.
	Meta []string `yaml:"meta"`
}

// Validate checks the options a run config sets (the fields with a YAML
// key), naming each by its key; New also checks the others.
func (c Config) Validate() error {
	switch {
	case c.ShuffleBuffer < 0:
		return fmt.Errorf("shuffle_buffer: must be ≥ 0, got %d", c.ShuffleBuffer)
	case c.Workers < 0:
		return fmt.Errorf("workers: must be ≥ 0 (0 = one per CPU), got %d", c.Workers)
	case c.Readers < 0:
		return fmt.Errorf("readers: must be ≥ 0 (0 = %d), got %d", DefaultReaders, c.Readers)
	case c.SamplesPerEpoch < 0:
		return fmt.Errorf("samples_per_epoch: must be ≥ 0, got %d", c.SamplesPerEpoch)
	case c.MaxMemberBytes < 0:
		return fmt.Errorf("max_member_bytes: must be ≥ 0 (0 = 64 MiB), got %d", c.MaxMemberBytes)
	case c.Resampled && c.SamplesPerEpoch == 0:
		return errors.New("samples_per_epoch: resampled shards need a positive epoch length: a resampled stream has no natural end of epoch (set it to the dataset size, as OpenCLIP's --train-num-samples)")
	case len(c.Weights) > 0 && !c.Resampled:
		return errors.New("weights: source weights need resampled: true (OpenCLIP likewise only upsamples with --dataset-resampled); without it every shard is read once per epoch")
	}
	switch c.Format {
	case "", "webdataset", "parquet":
	default:
		return fmt.Errorf("format: %q is not one of webdataset, parquet (or empty to decide by file extension)", c.Format)
	}
	if err := c.Filter.Validate(); err != nil {
		return fmt.Errorf("filter.%w", err)
	}
	return nil
}

// withDefaults fills the optional fields and validates them all, naming
// the offending field.
func (c Config) withDefaults() (Config, error) {
	if len(c.Shards) == 0 {
		return c, errors.New("stream: Config.Shards is empty")
	}
	if c.BatchSize <= 0 {
		return c, fmt.Errorf("stream: Config.BatchSize must be positive, got %d", c.BatchSize)
	}
	if c.ImageSize < 0 {
		return c, fmt.Errorf("stream: Config.ImageSize must be ≥ 0, got %d", c.ImageSize)
	}
	if c.WorldSize < 0 || c.Rank < 0 || (c.WorldSize > 0 && c.Rank >= c.WorldSize) || (c.WorldSize == 0 && c.Rank != 0) {
		return c, fmt.Errorf("stream: Config.Rank %d and WorldSize %d: want 0 ≤ Rank < WorldSize", c.Rank, c.WorldSize)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("stream: %w", err)
	}
	if c.ShuffleBuffer == 0 {
		c.ShuffleBuffer = DefaultShuffleBuffer
	}
	if c.Workers == 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.Readers == 0 {
		c.Readers = DefaultReaders
	}
	if c.WorldSize == 0 {
		c.WorldSize = 1
	}
	if c.MaxMemberBytes == 0 {
		c.MaxMemberBytes = 64 << 20
	}
	if c.HTTP.Token == "" {
		c.HTTP.Token = remote.Secret(os.Getenv("HF_TOKEN"))
	}
	return c, nil
}

// Position is a point in the stream: the epoch and how many samples of it,
// in shuffled order, have been consumed. Skipped (bad) samples count as
// consumed, so a Position means the same thing whatever the data quality;
// samples a Filter drops never enter the order. It serialises to JSON as
// {"epoch":2,"samples":1024}.
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
	// Keys are the samples' keys, for tracing a batch back to its data.
	Keys []string
	// Size is the number of samples, BatchSize except for a last partial batch.
	Size int
	// Epoch is the epoch the batch belongs to.
	Epoch int
	// Next is the position right after this batch; resuming from it yields
	// the batches that follow this one.
	Next Position
}

// Reason says why a sample was skipped or filtered out.
type Reason string

// Reasons a sample is skipped as bad, in the order they are checked.
const (
	ReasonNoImage      Reason = "no_image"      // no jpg, png, jpeg or webp member
	ReasonNoCaption    Reason = "no_caption"    // no txt member
	ReasonEmptyCaption Reason = "empty_caption" // txt member is empty or whitespace
	ReasonTooLarge     Reason = "too_large"     // a member exceeds Config.MaxMemberBytes
	ReasonBadMeta      Reason = "bad_meta"      // the json member does not parse
	ReasonDecode       Reason = "decode"        // ImageFunc returned an error (corrupt image, absurd dimensions)
	ReasonImageSize    Reason = "image_size"    // ImageFunc returned a tensor of another size
)

// Reasons a Filter drops a sample.
const (
	ReasonNoMeta        Reason = "no_meta"        // no json member, or it lacks a field the filter reads
	ReasonLicense       Reason = "license"        // article_license not in Filter.Licenses
	ReasonLabel         Reason = "label"          // primary or secondary labels rejected
	ReasonPanel         Reason = "panel_type"     // image_panel_type not in Filter.PanelTypes
	ReasonClusterWeight Reason = "cluster_weight" // not drawn by Filter.ClusterWeights
	ReasonClusterCap    Reason = "cluster_cap"    // cluster already has Filter.ClusterCap samples this epoch
)

// Stats counts what a Stream has done, over all its iterations. It
// marshals to JSON for the training log (metrics.jsonl).
type Stats struct {
	// Samples is the number of samples delivered in batches.
	Samples int64 `json:"samples"`
	// Skipped counts bad samples by reason.
	Skipped map[Reason]int64 `json:"skipped,omitempty"`
	// Filtered counts samples a Filter dropped, by reason.
	Filtered map[Reason]int64 `json:"filtered,omitempty"`
	// Shards is the number of shards opened.
	Shards int64 `json:"shards"`
	// ShardErrors counts shards that failed to open or read (after the
	// retries of remote reads); each is skipped from the failing point on,
	// keeping the samples read before it.
	ShardErrors int64 `json:"shard_errors"`
	// Retries counts remote requests retried (dropped connections, 5xx,
	// stalls).
	Retries int64 `json:"retries"`
	// LastShardError is the most recent shard error, "" if none.
	LastShardError string `json:"last_shard_error,omitempty"`
	// LastDecodeError is the most recent ImageFunc error, "" if none.
	LastDecodeError string `json:"last_decode_error,omitempty"`
	// Throughput is the pipeline's own speed.
	Throughput Throughput `json:"throughput"`
}

// SkippedTotal is the number of bad samples skipped, all reasons together.
func (s Stats) SkippedTotal() int64 {
	var n int64
	for _, c := range s.Skipped {
		n += c
	}
	return n
}

// counters is the mutable side of Stats.
type counters struct {
	mu    sync.Mutex
	stats Stats
}

// skip counts a skipped sample; err is the error for ReasonDecode.
func (c *counters) skip(r Reason, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stats.Skipped == nil {
		c.stats.Skipped = map[Reason]int64{}
	}
	c.stats.Skipped[r]++
	if r == ReasonDecode && err != nil {
		c.stats.LastDecodeError = err.Error()
	}
}

// filtered counts a sample a Filter dropped.
func (c *counters) filtered(r Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stats.Filtered == nil {
		c.stats.Filtered = map[Reason]int64{}
	}
	c.stats.Filtered[r]++
}

func (c *counters) delivered(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Samples += int64(n)
}

func (c *counters) shardOpened() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Shards++
}

func (c *counters) retry() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.Retries++
}

func (c *counters) shardError(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stats.ShardErrors++
	c.stats.LastShardError = err.Error()
}

func (c *counters) snapshot() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Skipped = maps.Clone(c.stats.Skipped)
	s.Filtered = maps.Clone(c.stats.Filtered)
	return s
}

// Stream produces batches from a fixed list of shards. Its methods are safe
// for concurrent use; each iteration runs its own pipeline.
type Stream struct {
	cfg        Config
	shards     []shard
	metaFields map[string]bool
	img        ImageFunc
	tok        Tokenizer
	counts     counters
	timing     timing
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
	shards, err := expandSources(cfg.Shards, cfg.Weights)
	if err != nil {
		return nil, err
	}
	s := &Stream{cfg: cfg, shards: shards, img: img, tok: tok, metaFields: map[string]bool{}}
	for _, f := range slices.Concat(cfg.Filter.fields(), cfg.MetaFields) {
		s.metaFields[f] = true
	}
	userRetry := cfg.HTTP.OnRetry
	s.cfg.HTTP.OnRetry = func(url string, attempt int, err error) {
		s.counts.retry()
		if userRetry != nil {
			userRetry(url, attempt, err)
		}
	}
	return s, nil
}

// Shards returns the expanded shard list, in the order Once reads it.
func (s *Stream) Shards() []string {
	out := make([]string, len(s.shards))
	for i, sh := range s.shards {
		out[i] = sh.url
	}
	return out
}

// Stats returns a snapshot of the counters; it may be called while batches
// are being produced.
func (s *Stream) Stats() Stats {
	st := s.counts.snapshot()
	st.Throughput = s.timing.snapshot(s.cfg.Workers)
	return st
}
