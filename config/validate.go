package config

import (
	"fmt"
	"reflect"

	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/train"
)

// Validate checks every field once and names the key at fault.
func (c *Config) Validate() error {
	if err := checkFinite(reflect.ValueOf(c).Elem(), ""); err != nil {
		return err
	}
	if err := c.Model.Config.Validate(); err != nil {
		return fmt.Errorf("model: %w", err)
	}
	switch c.Tokenizer.Name {
	case "byte-level":
	case "clip-bpe":
		if c.Tokenizer.Vocab == "" {
			return fmt.Errorf("tokenizer.vocab: clip-bpe needs the vocabulary file (OpenCLIP's src/open_clip/bpe_simple_vocab_16e6.txt.gz)")
		}
	case "bert-wordpiece":
		if c.Tokenizer.Vocab == "" {
			return fmt.Errorf("tokenizer.vocab: bert-wordpiece needs the BERT vocab.txt (or the Hugging Face tokenizer folder holding it)")
		}
	default:
		return fmt.Errorf("tokenizer.name: %q is not one of byte-level, clip-bpe, bert-wordpiece", c.Tokenizer.Name)
	}
	d := c.Data
	switch {
	case d.Tensors != "" && d.Synthetic.Enabled:
		return fmt.Errorf("data.tensors: replaying a batch file and data.synthetic are exclusive; set one")
	case d.Tensors != "" && len(d.TrainShards) > 0:
		return fmt.Errorf("data.tensors: replaying a batch file and data.train_shards are exclusive; set one")
	case d.Tensors == "" && !d.Synthetic.Enabled && len(d.TrainShards) == 0:
		return fmt.Errorf("data.train_shards: no shards given (or enable data.synthetic, or replay a batch file with data.tensors)")
	}
	if d.ShuffleBuffer < 0 {
		return fmt.Errorf("data.shuffle_buffer: must be ≥ 0, got %d", d.ShuffleBuffer)
	}
	if d.Workers < 0 {
		return fmt.Errorf("data.workers: must be ≥ 0, got %d", d.Workers)
	}
	switch d.JPEGDecoder {
	case "go", "libjpeg-turbo":
	default:
		return fmt.Errorf("data.jpeg_decoder: %q is not one of go, libjpeg-turbo", d.JPEGDecoder)
	}
	switch d.Format {
	case "", "webdataset", "parquet":
	default:
		return fmt.Errorf("data.format: %q is not one of webdataset, parquet (or empty to decide by extension)", d.Format)
	}
	if d.Resampled && d.SamplesPerEpoch <= 0 {
		return fmt.Errorf("data.samples_per_epoch: resampled shards need a positive epoch length")
	}
	if len(d.Weights) > 0 && !d.Resampled {
		return fmt.Errorf("data.weights: source weights need data.resampled: true")
	}
	if d.Synthetic.Enabled {
		if d.Synthetic.TrainSamples <= 0 {
			return fmt.Errorf("data.synthetic.train_samples: must be positive, got %d", d.Synthetic.TrainSamples)
		}
		if d.Synthetic.EvalSamplesPerTask <= 0 {
			return fmt.Errorf("data.synthetic.eval_samples_per_task: must be positive, got %d", d.Synthetic.EvalSamplesPerTask)
		}
	}
	t := c.Train
	positive := []struct {
		key  string
		ok   bool
		val  any
		want string
	}{
		{"train.steps", t.Steps > 0, t.Steps, "must be positive"},
		{"train.batch_size", t.BatchSize > 1, t.BatchSize, "must be at least 2 (a contrastive loss needs negatives)"},
		{"train.lr", t.LR > 0, t.LR, "must be positive"},
		{"train.eps", t.Eps > 0, t.Eps, "must be positive"},
		{"train.keep_checkpoints", t.KeepCheckpoints >= 1, t.KeepCheckpoints, "must be at least 1"},
		{"train.log_every", t.LogEvery >= 1, t.LogEvery, "must be at least 1"},
		{"eval.batch_size", c.Eval.BatchSize >= 1, c.Eval.BatchSize, "must be at least 1"},
	}
	for _, p := range positive {
		if !p.ok {
			return fmt.Errorf("%s: %s, got %v", p.key, p.want, p.val)
		}
	}
	if t.Devices < 0 {
		return fmt.Errorf("train.devices: must be ≥ 0 (0 = every device of the backend), got %d", t.Devices)
	}
	if t.Devices > 1 && t.BatchSize%t.Devices != 0 {
		return fmt.Errorf("train.batch_size: %d pairs do not split over train.devices = %d; use a multiple of %d", t.BatchSize, t.Devices, t.Devices)
	}
	if t.AccumFreq < 1 {
		return fmt.Errorf("train.accum_freq: must be ≥ 1 (1 = no accumulation), got %d", t.AccumFreq)
	}
	if _, err := transformer.ParsePrecision(t.Precision); err != nil {
		return fmt.Errorf("train.precision: %w", err)
	}
	if t.Warmup < 0 {
		return fmt.Errorf("train.warmup: must be ≥ 0, got %d", t.Warmup)
	}
	switch t.Schedule {
	case "cosine", "const":
	case "const-cooldown":
		if t.CooldownSteps <= 0 || t.CooldownSteps > t.Steps {
			return fmt.Errorf("train.cooldown_steps: must be in 1..train.steps (%d) for const-cooldown, got %d", t.Steps, t.CooldownSteps)
		}
	default:
		return fmt.Errorf("train.schedule: %q is not one of cosine, const, const-cooldown", t.Schedule)
	}
	if t.Beta1 < 0 || t.Beta1 >= 1 {
		return fmt.Errorf("train.beta1: must be in [0,1), got %g", t.Beta1)
	}
	if t.Beta2 < 0 || t.Beta2 >= 1 {
		return fmt.Errorf("train.beta2: must be in [0,1), got %g", t.Beta2)
	}
	if t.WeightDecay < 0 {
		return fmt.Errorf("train.weight_decay: must be ≥ 0, got %g", t.WeightDecay)
	}
	if _, err := train.ParseDecayRule(t.WDExclude); err != nil {
		return fmt.Errorf("train.wd_exclude: %w", err)
	}
	if t.GradClipNorm < 0 {
		return fmt.Errorf("train.grad_clip_norm: must be ≥ 0 (0 = off), got %g", t.GradClipNorm)
	}
	if t.CheckpointEvery < 0 {
		return fmt.Errorf("train.checkpoint_every: must be ≥ 0, got %d", t.CheckpointEvery)
	}
	if c.Eval.Every < 0 {
		return fmt.Errorf("eval.every: must be ≥ 0, got %d", c.Eval.Every)
	}
	if c.Output == "" {
		return fmt.Errorf("output: empty")
	}
	return nil
}
