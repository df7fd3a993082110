// Package config is bmca's run configuration: one typed tree loaded from
// YAML, overridden by repeated --set key=value flags, validated once.
//
// The model section takes OpenCLIP's model-config fields verbatim
// (embed_dim, quick_gelu, vision_cfg, text_cfg), optionally on top of a
// built-in model named by "name". Every other section configures one stage
// of the data path: tokenizer, data, train, eval; backend picks the GoMLX
// compute backend.
//
//	cfg, err := config.Load("configs/demo.yaml", []string{"train.steps=20"})
package config

import (
	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/model/clip"
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
	// (OpenCLIP's CLIP tokenizer) or "bert-wordpiece" (BERT uncased
	// WordPiece as OpenCLIP's HFTokenizer runs it: BiomedCLIP's).
	Name string `yaml:"name"`
	// Vocab is the vocabulary file: OpenCLIP's bpe_simple_vocab_16e6.txt.gz
	// for clip-bpe; a BERT vocab.txt, or the Hugging Face tokenizer folder
	// holding it, for bert-wordpiece.
	Vocab string `yaml:"vocab"`
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
	// Weights gives one sampling weight per "::"-joined source (needs resampled).
	Weights []float64 `yaml:"weights"`
	// Format is "webdataset", "parquet", or empty to decide by file extension.
	Format string `yaml:"format"`
	// Parquet names the columns of parquet shards (empty: detected).
	Parquet ParquetColumns `yaml:"parquet"`
	// Resampled draws shards with replacement, as OpenCLIP's
	// --dataset-resampled; it needs samples_per_epoch.
	Resampled bool `yaml:"resampled"`
	// SamplesPerEpoch fixes the epoch length (0 = one pass over the shards).
	SamplesPerEpoch int64 `yaml:"samples_per_epoch"`
	// Readers is the number of shards read at once, interleaved so that a
	// batch draws from about this many shards (default 16, a constant so
	// that a config gives the same batches on every machine; 1 reads one
	// shard at a time, which leaves BIOMEDICA's cluster-ordered shards
	// unmixed). It changes the batches, deterministically.
	Readers int `yaml:"readers"`
	// Filter selects samples by their BIOMEDICA json metadata before decoding.
	Filter Filter `yaml:"filter"`
	// MetaFields are extra json fields to keep with each sample.
	MetaFields []string `yaml:"meta_fields"`
	// MaxMemberBytes skips image or caption members larger than this (0 = 64 MiB).
	MaxMemberBytes int64 `yaml:"max_member_bytes"`
	// Augment is the training crop (OpenCLIP's RandomResizedCrop).
	Augment Augment `yaml:"augment"`
	// JPEGDecoder is "go" (pure Go, exact) or "libjpeg-turbo" (a build with -tags libjpeg).
	JPEGDecoder string `yaml:"jpeg_decoder"`
	// DCTScaling decodes a training JPEG whose crop is at least 2, 4 or 8
	// times the model's input at that fraction of its size, in the DCT
	// domain, as Pillow's draft() would (default true): about three times
	// faster on BIOMEDICA-sized figures, not Pillow-exact. Evaluation never
	// uses it.
	DCTScaling bool `yaml:"dct_scaling"`
	// ShuffleBuffer is the number of samples held for shuffling (default
	// 5000, OpenCLIP's; 0 also selects it; 1 keeps the read order).
	ShuffleBuffer int `yaml:"shuffle_buffer"`
	// Workers decode and preprocess images in parallel (0 = one per CPU).
	Workers int `yaml:"workers"`
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

// ParquetColumns names the columns of parquet shards.
type ParquetColumns struct {
	// Image is the image column (HF image struct {bytes, path} or binary).
	Image string `yaml:"image"`
	// Caption is the caption column.
	Caption string `yaml:"caption"`
	// Key is the sample key column.
	Key string `yaml:"key"`
	// Meta are metadata columns made available to the filter.
	Meta []string `yaml:"meta"`
}

// Filter selects training samples by BIOMEDICA metadata (json member or
// parquet columns), without decoding images.
type Filter struct {
	// Licenses keeps only these article_license subsets (commercial, noncommercial, other).
	Licenses []string `yaml:"licenses"`
	// IncludePrimary keeps samples whose image_primary_label is one of these.
	IncludePrimary []string `yaml:"include_primary"`
	// ExcludePrimary drops samples whose image_primary_label is one of these.
	ExcludePrimary []string `yaml:"exclude_primary"`
	// IncludeSecondary keeps samples with an image_secondary_label among these.
	IncludeSecondary []string `yaml:"include_secondary"`
	// ExcludeSecondary drops samples with an image_secondary_label among these.
	ExcludeSecondary []string `yaml:"exclude_secondary"`
	// PanelTypes keeps only these image_panel_type values.
	PanelTypes []string `yaml:"panel_types"`
	// ClusterCap keeps at most this many samples per image_label_id cluster per epoch (0 = no cap).
	ClusterCap int `yaml:"cluster_cap"`
	// ClusterWeights keeps a sample of a cluster with this probability.
	ClusterWeights map[string]float64 `yaml:"cluster_weights"`
	// DefaultClusterWeight applies to clusters not in ClusterWeights (0 = 1).
	DefaultClusterWeight float64 `yaml:"default_cluster_weight"`
}

// Augment is OpenCLIP's training transform: RandomResizedCrop, bicubic.
type Augment struct {
	// Enabled turns the random crop on (off: the eval transform is used).
	Enabled bool `yaml:"enabled"`
	// Scale is the range of the crop's area fraction (OpenCLIP: 0.9–1.0).
	Scale [2]float64 `yaml:"scale"`
	// Ratio is the range of the crop's aspect ratio (3/4–4/3).
	Ratio [2]float64 `yaml:"ratio"`
}

// Synthetic configures the generated demo dataset.
type Synthetic struct {
	// Enabled turns the synthetic dataset on.
	Enabled bool `yaml:"enabled"`
	// Dir is where the dataset is written (once; reused when it matches).
	// Relative paths are resolved against the output directory.
	Dir string `yaml:"dir"`
	// Seed makes the dataset reproducible.
	Seed uint64 `yaml:"seed"`
	// TrainSamples is the number of training image–caption pairs.
	TrainSamples int `yaml:"train_samples"`
	// EvalSamplesPerTask is the number of held-out images per evaluation task.
	EvalSamplesPerTask int `yaml:"eval_samples_per_task"`
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
	// AccumFreq accumulates gradients over this many micro-batches per
	// optimiser step (OpenCLIP's --accum-freq); the effective batch is
	// BatchSize × AccumFreq and the contrastive loss spans all of it.
	AccumFreq int `yaml:"accum_freq"`
	// Devices is the number of devices of the backend one run trains on,
	// data-parallel (0 = all the backend has: every GPU of an XLA CUDA
	// node, one on the pure-Go backend). The batch is split over them and
	// the loss and the update are the whole batch's, as on one device, so
	// the device count changes speed and per-device memory, not the run.
	Devices int `yaml:"devices"`
	// LockImage freezes the image tower (OpenCLIP's --lock-image).
	LockImage bool `yaml:"lock_image"`
	// Precision is "f32", "tf32" or "bf16". f32 is exact float32, matrix
	// products included (on a GPU no TF32: OpenCLIP's fp32 numbers). tf32
	// is f32 with the matrix products on a CUDA GPU's TF32 tensor cores, as
	// OpenCLIP's trainer allows; on the CPU it is f32. bf16 is bf16-mixed
	// as OpenCLIP's amp_bf16, the products in bfloat16 and everything else
	// in float32. bf16 pays on a GPU (tensor cores, flash attention); the
	// pure-Go backend runs it correctly but slower than f32.
	Precision string `yaml:"precision"`
	// GradCheckpointing keeps only each residual block's input for the
	// backward pass and recomputes the rest (OpenCLIP's
	// --grad-checkpointing): far less activation memory, about a third
	// more compute, the same update. Large batches of ViT-L need it.
	GradCheckpointing bool `yaml:"grad_checkpointing"`
	// Pretrained starts a new run from the weights of this checkpoint
	// (a directory or file relative to the config file, or a hub model
	// hf-hub:ORG/NAME[@REVISION]), as --pretrained does.
	Pretrained string `yaml:"pretrained"`
	// LR is the peak learning rate.
	LR float64 `yaml:"lr"`
	// Warmup is the number of linear warm-up steps.
	Warmup int `yaml:"warmup"`
	// Schedule is "cosine" (to 0 at Steps), "const" or "const-cooldown".
	Schedule string `yaml:"schedule"`
	// CooldownSteps is the length of the final cooldown for const-cooldown.
	CooldownSteps int `yaml:"cooldown_steps"`
	// CooldownPower shapes the cooldown (1 = linear).
	CooldownPower float64 `yaml:"cooldown_power"`
	// CooldownEnd is the learning rate at the end of the cooldown.
	CooldownEnd float64 `yaml:"cooldown_end"`
	// Beta1 is AdamW's first-moment decay.
	Beta1 float64 `yaml:"beta1"`
	// Beta2 is AdamW's second-moment decay.
	Beta2 float64 `yaml:"beta2"`
	// Eps is AdamW's denominator epsilon.
	Eps float64 `yaml:"eps"`
	// WeightDecay is AdamW's decoupled decay, applied to the parameters
	// WDExclude leaves in the decayed group.
	WeightDecay float64 `yaml:"weight_decay"`
	// WDExclude is the rule that exempts parameters from weight decay, which
	// OpenCLIP changed between versions: "openclip4" (open_clip 4.x: tensors
	// of rank ≤ 1 and the positional and class embeddings) or "openclip2"
	// (open_clip 2.x/3.x, as BMC-CLIP was trained: rank < 2 and names
	// containing bn, ln, bias or logit_scale, so both positional embeddings
	// are decayed). A run that continues another's training uses its rule.
	WDExclude string `yaml:"wd_exclude"`
	// GradClipNorm clips the global gradient norm (0 = no clipping).
	GradClipNorm float64 `yaml:"grad_clip_norm"`
	// Seed drives weight initialisation and data order.
	Seed uint64 `yaml:"seed"`
	// CheckpointEvery writes a checkpoint every this many steps (0 = only at the end).
	CheckpointEvery int `yaml:"checkpoint_every"`
	// KeepCheckpoints is how many recent checkpoints are kept (≥ 1).
	KeepCheckpoints int `yaml:"keep_checkpoints"`
	// LogEvery appends a metrics line every this many steps.
	LogEvery int `yaml:"log_every"`
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
func Default() Config {
	return Config{
		Tokenizer: Tokenizer{Name: "clip-bpe"},
		Data: Data{ShuffleBuffer: stream.DefaultShuffleBuffer, Readers: stream.DefaultReaders, JPEGDecoder: "go", DCTScaling: true,
			Augment:   Augment{Enabled: true, Scale: [2]float64{0.9, 1}, Ratio: [2]float64{3.0 / 4, 4.0 / 3}},
			Synthetic: Synthetic{Dir: "synthetic-data", Seed: 1, TrainSamples: 8192, EvalSamplesPerTask: 200}},
		Train: Train{
			Steps: 1000, BatchSize: 64, AccumFreq: 1, Precision: "f32", LR: 5e-4, Warmup: 10000, Schedule: "cosine",
			CooldownPower: 1, Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.2, WDExclude: "openclip4",
			KeepCheckpoints: 2, LogEvery: 10,
		},
		Eval:   Eval{BatchSize: 64},
		Output: "runs/latest",
	}
}
