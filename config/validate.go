package config

import (
	"fmt"
	"reflect"
)

// Validate checks every field once and names the key at fault. The
// sections that embed a library's types leave their fields to that type's
// own Validate, whose errors name the field by its YAML key; Validate puts
// the section's path in front.
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
			return fmt.Errorf("tokenizer.vocab: bert-wordpiece needs the BERT vocab.txt (or the Hugging Face tokenizer folder holding it, or hf-hub:ORG/NAME); %s takes the model's own (text_cfg.hf_tokenizer_name)", TokenizerAuto)
		}
	case TokenizerAuto:
		if !c.Model.TextCfg.IsHF() && c.Tokenizer.Vocab == "" {
			return fmt.Errorf("tokenizer.vocab: %s with OpenCLIP's text tower is clip-bpe, which needs the vocabulary file (OpenCLIP's src/open_clip/bpe_simple_vocab_16e6.txt.gz)", TokenizerAuto)
		}
	default:
		return fmt.Errorf("tokenizer.name: %q is not one of byte-level, clip-bpe, bert-wordpiece, %s", c.Tokenizer.Name, TokenizerAuto)
	}
	if err := c.Tokenizer.Fits(c.Model.TextCfg); err != nil {
		return fmt.Errorf("tokenizer.name: %w", err)
	}
	if err := c.Data.Validate(); err != nil {
		return err
	}
	if err := c.Train.Validate(); err != nil {
		return err
	}
	if c.Eval.Every < 0 {
		return fmt.Errorf("eval.every: must be ≥ 0, got %d", c.Eval.Every)
	}
	if c.Eval.BatchSize < 1 {
		return fmt.Errorf("eval.batch_size: must be at least 1, got %d", c.Eval.BatchSize)
	}
	if c.Output == "" {
		return fmt.Errorf("output: empty")
	}
	return nil
}

// Validate checks the data section; errors name the key from "data." on.
func (d *Data) Validate() error {
	switch {
	case d.Tensors != "" && d.Synthetic.Enabled:
		return fmt.Errorf("data.tensors: replaying a batch file and data.synthetic are exclusive; set one")
	case d.Tensors != "" && len(d.TrainShards) > 0:
		return fmt.Errorf("data.tensors: replaying a batch file and data.train_shards are exclusive; set one")
	case d.Tensors == "" && !d.Synthetic.Enabled && len(d.TrainShards) == 0:
		return fmt.Errorf("data.train_shards: no shards given (or enable data.synthetic, or replay a batch file with data.tensors)")
	}
	if err := d.Config.Validate(); err != nil {
		return fmt.Errorf("data.%w", err)
	}
	if err := d.JPEGDecoder.Validate(); err != nil {
		return fmt.Errorf("data.jpeg_decoder: %w", err)
	}
	if d.Augment.Enabled {
		if err := d.Augment.Validate(); err != nil {
			return fmt.Errorf("data.augment.%w", err)
		}
	}
	if d.Synthetic.Enabled {
		if err := d.Synthetic.Validate(); err != nil {
			return fmt.Errorf("data.synthetic.%w", err)
		}
	}
	return nil
}

// Validate checks the train section; errors name the key from "train." on.
func (t *Train) Validate() error {
	switch {
	case t.Steps <= 0:
		return fmt.Errorf("train.steps: must be positive, got %d", t.Steps)
	case t.BatchSize < 2:
		return fmt.Errorf("train.batch_size: must be at least 2 (a contrastive loss needs negatives), got %d", t.BatchSize)
	case t.Devices < 0:
		return fmt.Errorf("train.devices: must be ≥ 0 (0 = every device of the backend), got %d", t.Devices)
	case t.Devices > 1 && t.BatchSize%t.Devices != 0:
		return fmt.Errorf("train.batch_size: %d pairs do not split over train.devices = %d; use a multiple of %d", t.BatchSize, t.Devices, t.Devices)
	case t.CheckpointEvery < 0:
		return fmt.Errorf("train.checkpoint_every: must be ≥ 0 (0 = only at the end), got %d", t.CheckpointEvery)
	case t.KeepCheckpoints < 0:
		return fmt.Errorf("train.keep_checkpoints: must be ≥ 0 (0 = keep all), got %d", t.KeepCheckpoints)
	case t.LogEvery < 1:
		return fmt.Errorf("train.log_every: must be at least 1, got %d", t.LogEvery)
	}
	if err := t.Recipe.Validate(); err != nil {
		return fmt.Errorf("train.%w", err)
	}
	if err := t.LRSchedule().Validate(); err != nil {
		return fmt.Errorf("train.%w", err)
	}
	return nil
}
