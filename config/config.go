// Package config is bmca's run configuration: one typed tree loaded from
// YAML, overridden by repeated --set key=value flags, validated once.
//
// The model section takes OpenCLIP's model-config fields verbatim
// (embed_dim, quick_gelu, vision_cfg, text_cfg), optionally on top of a
// built-in model named by "name". Every other section configures one stage
// of the data path: tokenizer, data, train, eval; backend picks the GoMLX
// compute backend.
//
// Where a library type already holds a section's options, the section
// embeds it (clip.Config, stream.Config, preprocess.Augment, synth.Config,
// train.Recipe, train.Schedule): each option is declared, documented and
// validated once, on that type, with its YAML key. Validate puts the
// section's path in front of the type's errors; Warnings lists settings
// that are valid but cannot be what was meant.
//
//	cfg, err := config.Load("configs/demo.yaml", []string{"train.steps=20"})
package config

import (
	"fmt"

	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/data/synth"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/train"
)

// Config is a whole run.
type Config struct {
	// Model is the CLIP architecture, as OpenCLIP's model config.
	Model Model `yaml:"model"`
	// Tokenizer turns captions and prompts into ids.
	Tokenizer Tokenizer `yaml:"tokenizer"`
	// Data says where training samples come from.
	Data Data `yaml:"data"`
	// Train is the optimisation recipe and checkpointing.
	Train Train `yaml:"train"`
	// Eval is the evaluation run during and after training, and by cmd/eval.
	Eval Eval `yaml:"eval"`
	// Backend is the GoMLX backend: "go:parallelism=-1" (pure Go, CPU) or
	// "xla:/abs/path/xla_cuda_plugin.so,preallocate=false" on GPU nodes
	// (a binary built with -tags xla). Empty means $GOMLX_BACKEND if set,
	// else go:parallelism=-1.
	Backend string `yaml:"backend"`
	// Output is the run directory: checkpoints/, metrics.jsonl, plots;
	// relative to the config file (the --output flag: to the working directory).
	Output string `yaml:"output"`
}

// Model selects the architecture: a built-in config by name, optionally
// with any OpenCLIP field overridden.
type Model struct {
	// Name of a built-in OpenCLIP model config (tiny, ViT-B-16, ViT-B-32,
	// ViT-L-14); empty means every field is given here.
	Name string `yaml:"name"`
	// The OpenCLIP model-config fields themselves.
	clip.Config `yaml:",inline"`
}

// Tokenizer chooses the text tokenizer; its context length is the model's
// text_cfg.context_length.
type Tokenizer struct {
	// Name is "byte-level" (no vocabulary file; the demo), "clip-bpe"
	// (OpenCLIP's CLIP tokenizer), "bert-wordpiece" (BERT uncased
	// WordPiece as OpenCLIP's HFTokenizer runs it: BiomedCLIP's) or
	// TokenizerAuto, the model's own as open_clip.get_tokenizer picks it:
	// for a Hugging Face text tower bert-wordpiece over text_cfg's
	// hf_tokenizer_name (a tokenizer saved next to the checkpoint, else the
	// Hugging Face cache, downloaded when missing), else clip-bpe over Vocab.
	Name string `yaml:"name"`
	// Vocab is the vocabulary: OpenCLIP's bpe_simple_vocab_16e6.txt.gz for
	// clip-bpe (and for auto with OpenCLIP's text tower; auto ignores it for
	// a Hugging Face tower, which names its own); for bert-wordpiece a BERT
	// vocab.txt, the Hugging Face tokenizer folder holding it, or a
	// tokenizer repository on the hub, hf-hub:ORG/NAME[@REVISION].
	Vocab string `yaml:"vocab"`
}

// Tokenizer names that the run config accepts besides tokenizer.Names().
const (
	// TokenizerAuto takes the tokenizer from the model (see Tokenizer.Name).
	TokenizerAuto = "auto"
)

// Fits reports why the tokenizer cannot feed a text tower, or nil. The
// towers pool differently: OpenCLIP's text transformer takes the token
// at the largest id (CLIP's end of text), which only CLIP's tokenizers
// (clip-bpe, byte-level) put last; a Hugging Face BERT reads WordPiece ids
// and pools at [CLS] or over the non-[PAD] tokens. A mismatched pair
// trains and evaluates without an error, on wrong features.
func (t Tokenizer) Fits(text clip.TextConfig) error {
	switch {
	case t.Name == TokenizerAuto || t.Name == "":
		return nil
	case text.IsHF() && t.Name != "bert-wordpiece":
		return fmt.Errorf("%s gives CLIP's ids, but the text tower is the Hugging Face model %s (text_cfg.hf_model_name), which reads BERT WordPiece ids ([CLS] … [SEP], then [PAD]): "+
			"use %s (its own tokenizer, text_cfg.hf_tokenizer_name %q) or bert-wordpiece with its vocabulary", t.Name, text.HFModelName, TokenizerAuto, text.HFTokenizerName)
	case !text.IsHF() && t.Name == "bert-wordpiece":
		return fmt.Errorf("bert-wordpiece ends a text with [SEP], but OpenCLIP's text transformer (text_cfg without hf_model_name) pools at the largest id, CLIP's end of text: " +
			"use clip-bpe or byte-level, or a model with a Hugging Face text tower")
	}
	return nil
}

// Data configures the training stream.
type Data struct {
	// TrainShards are shard sources: paths, globs or brace ranges such as
	// "shards/train-{000000..000099}.tar", http(s) URLs with brace ranges
	// (token from $HF_TOKEN, never from the config), or
	// "biomedica:commercial,other@BASE" for the published BIOMEDICA layout
	// (BASE: a URL or a local mirror); "::" joins sources. Relative paths,
	// a mirror's included, are resolved against the config file's
	// directory; URLs are left as written.
	TrainShards []string `yaml:"train_shards"`
	// The stream's own options, declared, documented and validated by
	// data/stream: weights, format, parquet, resampled, samples_per_epoch,
	// readers, shuffle_buffer, workers, filter, meta_fields,
	// max_member_bytes. Its other fields (shards, batch size, seed, image
	// size) come from the rest of the config when the stream is built.
	stream.Config `yaml:",inline"`
	// Augment is the training crop (OpenCLIP's RandomResizedCrop).
	Augment Augment `yaml:"augment"`
	// JPEGDecoder is "go" (pure Go, exact) or "libjpeg-turbo" (a build with -tags libjpeg).
	JPEGDecoder preprocess.JPEGDecoder `yaml:"jpeg_decoder"`
	// DCTScaling decodes a training JPEG whose crop is larger than the
	// model's input at a reduced size in the DCT domain (default true): with
	// the pure-Go decoder each colour component at the smallest N/8 that
	// still covers the output, with libjpeg-turbo at the 1/2, 1/4 or 1/8
	// Pillow's draft() would pick. About four times faster on
	// BIOMEDICA-sized figures, not Pillow-exact. Evaluation never uses it.
	DCTScaling bool `yaml:"dct_scaling"`
	// Synthetic, when enabled, writes the built-in synthetic dataset first
	// and trains on it (the demo); TrainShards is then ignored.
	Synthetic Synthetic `yaml:"synthetic"`
	// Tensors replays ready-made batches from a safetensors file (relative
	// to the config file) instead of reading shards: "pixels" [S,B,3,H,W]
	// float32 and "tokens" [S,B,L] int64 or int32. Step s trains on batch
	// s, in order, without augmentation or shuffling; B comes from the file
	// (split into accum_freq micro-batches), so train.batch_size is not
	// used. It is how another trainer's run is repeated exactly, and how a
	// divergence is narrowed down on fixed inputs.
	Tensors string `yaml:"tensors"`
}

// Augment is OpenCLIP's training transform: RandomResizedCrop, bicubic.
type Augment struct {
	// Enabled turns the random crop on (off: the eval transform is used).
	Enabled bool `yaml:"enabled"`
	// The crop's bounds (scale, ratio), declared by data/preprocess.
	preprocess.Augment `yaml:",inline"`
}

// Synthetic configures the generated demo dataset.
type Synthetic struct {
	// Enabled turns the synthetic dataset on.
	Enabled bool `yaml:"enabled"`
	// Dir is where the dataset is written (once; reused when it matches).
	// Relative paths are resolved against the config file's directory.
	Dir string `yaml:"dir"`
	// The dataset's size and seed, declared by data/synth: seed,
	// image_size, train_samples, samples_per_shard, eval_samples_per_task,
	// retrieval_samples.
	synth.Config `yaml:",inline"`
}

// Train is the optimisation recipe (OpenCLIP's defaults unless set).
type Train struct {
	// Steps is the number of optimiser steps.
	Steps int `yaml:"steps"`
	// BatchSize is the number of image–caption pairs per micro-batch over
	// all devices (the global batch: each of Devices devices takes
	// BatchSize / Devices of it). OpenCLIP's --batch-size is per GPU: its
	// run on G GPUs is BatchSize = G × --batch-size here.
	BatchSize int `yaml:"batch_size"`
	// Devices is the number of devices of the backend one run trains on,
	// data-parallel (0 = all the backend has: every GPU of an XLA CUDA
	// node, one on the pure-Go backend). The batch is split over them and
	// the loss and the update are the whole batch's, as on one device, so
	// the device count changes speed and per-device memory, not the run.
	// It hides Recipe.Devices, the mesh size the command derives from it.
	Devices int `yaml:"devices"`
	// Pretrained starts a new run from the weights of this checkpoint
	// (a directory or file relative to the config file, or a hub model
	// hf-hub:ORG/NAME[@REVISION]), as --pretrained does.
	Pretrained string `yaml:"pretrained"`
	// The step's recipe, declared, documented and validated by package
	// train: AdamW (beta1, beta2, eps, weight_decay, wd_exclude,
	// grad_clip_norm), accum_freq, lock_image.
	train.Recipe `yaml:",inline"`
	// How the towers compute, declared by package transformer: precision
	// and grad_checkpointing. The command sets it on the model
	// configuration, which the training steps and the evaluations inside
	// the run both read.
	transformer.Runtime `yaml:",inline"`
	// The learning-rate schedule, declared by package train: schedule,
	// lr, warmup, cooldown_steps, cooldown_power, cooldown_end. Its
	// Total is Steps (see LRSchedule).
	train.Schedule `yaml:",inline"`
	// Seed drives weight initialisation and data order.
	Seed uint64 `yaml:"seed"`
	// CheckpointEvery writes a checkpoint every this many steps (0 = only
	// at the end and when interrupted).
	CheckpointEvery int `yaml:"checkpoint_every"`
	// KeepCheckpoints is how many of the newest checkpoints are kept;
	// older ones are deleted (0 = keep all, as OpenCLIP does unless given
	// --delete-previous-checkpoint).
	KeepCheckpoints int `yaml:"keep_checkpoints"`
	// LogEvery appends a metrics line every this many steps.
	LogEvery int `yaml:"log_every"`
}

// LRSchedule is the learning-rate schedule of the run: the configured
// schedule over Steps optimiser steps.
func (t Train) LRSchedule() train.Schedule {
	s := t.Schedule
	s.Total = t.Steps
	return s
}

// Eval configures zero-shot evaluation.
type Eval struct {
	// Suite is an evaluation suite YAML file (relative to the config
	// file); with a synthetic dataset, empty means its built-in tasks.
	Suite string `yaml:"suite"`
	// Every runs the suite every this many steps during training (0 = only at the end).
	Every int `yaml:"every"`
	// BatchSize is the number of images or prompts encoded at once.
	BatchSize int `yaml:"batch_size"`
}

// Default is OpenCLIP's recipe for ViT models where bmca has a default.
//
// The warm-up is OpenCLIP's 10000 steps although the default run is 1000
// steps: OpenCLIP's users carry their recipes over, and a default that
// differed from OpenCLIP's would silently change their results. A run
// whose warm-up is not shorter than it is warned about at its start
// (Config.Warnings).
func Default() Config {
	return Config{
		Tokenizer: Tokenizer{Name: "clip-bpe"},
		Data: Data{
			Config:      stream.Config{ShuffleBuffer: stream.DefaultShuffleBuffer, Readers: stream.DefaultReaders},
			JPEGDecoder: preprocess.JPEGGo, DCTScaling: true,
			Augment:   Augment{Enabled: true, Augment: preprocess.Augment{Scale: [2]float64{0.9, 1}, Ratio: [2]float64{3.0 / 4, 4.0 / 3}}},
			Synthetic: Synthetic{Dir: "synthetic-data", Config: synth.DefaultConfig()},
		},
		Train: Train{
			Steps: 1000, BatchSize: 64,
			Recipe: train.Recipe{
				AdamW:     train.AdamW{Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.2, DecayRule: train.DecayOpenCLIP4},
				AccumFreq: 1,
			},
			Runtime:  transformer.Runtime{Precision: transformer.Float32},
			Schedule: train.Schedule{Kind: train.ScheduleCosine, PeakLR: 5e-4, Warmup: 10000, CooldownPower: 1},
			LogEvery: 10,
		},
		Eval:   Eval{BatchSize: 64},
		Output: "runs/latest",
	}
}
