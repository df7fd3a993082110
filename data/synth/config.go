package synth

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// GeneratorVersion identifies the drawing and captioning code. It is part of
// the config hash, so a change that alters the output must bump it, and
// existing datasets are then regenerated rather than silently reused.
const GeneratorVersion = "bmca/data/synth/v2"

// Config sets the size and seed of a synthetic dataset. Every field but
// Workers changes the output and is part of the config hash. Its YAML keys
// (the manifest's JSON names) are those of a run config's data.synthetic
// section.
type Config struct {
	// Seed determines every sample; equal configs give byte-identical files.
	Seed uint64 `json:"seed" yaml:"seed"`
	// ImageSize is the side of the generated square images in pixels
	// (default 48; the demo model resizes them to 32).
	ImageSize int `json:"image_size" yaml:"image_size"`
	// TrainSamples is the number of training image–caption pairs (default 8192).
	TrainSamples int `json:"train_samples" yaml:"train_samples"`
	// SamplesPerShard is the most samples in one tar shard, train and eval
	// alike (default 1024).
	SamplesPerShard int `json:"samples_per_shard" yaml:"samples_per_shard"`
	// EvalSamplesPerTask is the number of held-out samples of each zero-shot
	// task, classes balanced (default 200; at least 4, the largest class count).
	EvalSamplesPerTask int `json:"eval_samples_per_task" yaml:"eval_samples_per_task"`
	// RetrievalSamples is the number of held-out image–caption pairs of the
	// retrieval task (default 256).
	RetrievalSamples int `json:"retrieval_samples" yaml:"retrieval_samples"`
	// Workers is the number of shards generated at once; 0 means GOMAXPROCS.
	// It does not change the output.
	Workers int `json:"-" yaml:"-"`
}

// DefaultConfig returns the demo's dataset: 8192 training samples of 48 px in
// 8 shards, 200 held-out samples per zero-shot task and 256 retrieval pairs.
func DefaultConfig() Config {
	return Config{
		Seed:               1,
		ImageSize:          48,
		TrainSamples:       8192,
		SamplesPerShard:    1024,
		EvalSamplesPerTask: 200,
		RetrievalSamples:   256,
	}
}

// Validate reports the first field out of range, naming it by its key.
func (c Config) Validate() error {
	maxClasses := 0
	for _, z := range zeroShotSpecs {
		maxClasses = max(maxClasses, len(z.classNames))
	}
	switch {
	case c.ImageSize < MinImageSize || c.ImageSize > MaxImageSize:
		return fmt.Errorf("image_size: %d is outside [%d, %d]", c.ImageSize, MinImageSize, MaxImageSize)
	case c.TrainSamples < 1:
		return fmt.Errorf("train_samples: must be positive, got %d", c.TrainSamples)
	case c.SamplesPerShard < 1:
		return fmt.Errorf("samples_per_shard: must be positive, got %d", c.SamplesPerShard)
	case c.EvalSamplesPerTask < maxClasses:
		return fmt.Errorf("eval_samples_per_task: must be at least %d so that every class occurs, got %d", maxClasses, c.EvalSamplesPerTask)
	case c.RetrievalSamples < 1:
		return fmt.Errorf("retrieval_samples: must be positive, got %d", c.RetrievalSamples)
	case c.Workers < 0:
		return fmt.Errorf("workers: must not be negative, got %d", c.Workers)
	}
	return nil
}

// Hash returns the hex SHA-256 of the generator version and the fields that
// change the output; MANIFEST.json stores it to recognise a dataset.
func (c Config) Hash() string {
	b, err := json.Marshal(struct {
		Generator string `json:"generator"`
		Config    Config `json:"config"`
	}{GeneratorVersion, c})
	if err != nil {
		panic(err) // a struct of numbers always marshals
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
