package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bmca/bmca/model/transformer"
)

const sample = `model:
  name: tiny
  vision_cfg:
    width: 128
    head_width: 32
tokenizer:
  name: byte-level
data:
  train_shards: ["shards/train-{000000..000003}.tar"]
train:
  steps: 100
  batch_size: 16
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "run.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadMergesBuiltinModelDefaultsAndOverrides(t *testing.T) {
	p := writeConfig(t, sample)
	cfg, err := Load(p, []string{"train.steps=20", "train.lr=1e-3", "model.text_cfg.layers=1", "train.precision=bf16"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Model.VisionCfg.Width != 128 || cfg.Model.VisionCfg.PatchSize != 8 || cfg.Model.VisionCfg.ImageSize != 32 {
		t.Errorf("vision_cfg = %+v: want width overridden to 128, patch 8 and size 32 kept from the built-in tiny", cfg.Model.VisionCfg)
	}
	if cfg.Model.EmbedDim != 64 || cfg.Model.TextCfg.Layers != 1 || cfg.Model.TextCfg.Width != 64 {
		t.Errorf("model = %+v", cfg.Model.Config)
	}
	if cfg.Train.Steps != 20 || cfg.Train.PeakLR != 1e-3 || cfg.Train.BatchSize != 16 {
		t.Errorf("train = %+v", cfg.Train)
	}
	if cfg.Train.Precision != transformer.BFloat16Mixed {
		t.Errorf("train.precision = %v, want the override bf16", cfg.Train.Precision)
	}
	if cfg.Train.Beta2 != 0.98 || cfg.Train.Schedule.Kind != "cosine" {
		t.Errorf("defaults not applied: %+v", cfg.Train)
	}
	want := filepath.Join(filepath.Dir(p), "shards/train-{000000..000003}.tar")
	if cfg.Data.TrainShards[0] != want {
		t.Errorf("shard path %q, want it resolved against the config file: %q", cfg.Data.TrainShards[0], want)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		text      string
		overrides []string
		wantAll   []string
	}{
		{"unknown key names its line", sample + "  stpes: 3\n", nil, []string{"line 13", "stpes"}},
		{"unknown override key lists allowed keys", sample, []string{"train.stpes=3"}, []string{"train.stpes", "allowed in train", "steps"}},
		{"override of a section's value", sample, []string{"train.steps.x=3"}, []string{"train.steps.x", "not a section"}},
		{"bad override value names the type", sample, []string{"train.steps=many"}, []string{"train.steps", "integer"}},
		{"override without =", sample, []string{"train.steps"}, []string{"key=value"}},
		{"invalid value names the key", sample, []string{"train.schedule=linear"}, []string{"train.schedule", "linear"}},
		{"unknown model", strings.Replace(sample, "name: tiny", "name: ViT-Q-99", 1), nil, []string{"model.name", "ViT-Q-99", "ViT-B-16"}},
		{"invalid model geometry", sample, []string{"model.vision_cfg.patch_size=7"}, []string{"vision_cfg", "patch_size"}},
		{"missing vocab for clip-bpe", sample, []string{"tokenizer.name=clip-bpe"}, []string{"tokenizer.vocab"}},
		{"missing vocab for bert-wordpiece", sample, []string{"tokenizer.name=bert-wordpiece"}, []string{"tokenizer.vocab", "vocab.txt"}},
		{"unknown tokenizer lists the names", sample, []string{"tokenizer.name=bpe"}, []string{"tokenizer.name", "bert-wordpiece"}},
		{"batch of one", sample, []string{"train.batch_size=1"}, []string{"train.batch_size: must be at least 2 (a contrastive loss needs negatives), got 1"}},
		{"no steps", sample, []string{"train.steps=0"}, []string{"train.steps: must be positive, got 0"}},
		{"unknown data format", sample, []string{"data.format=zip"}, []string{"data.format", "zip"}},
		{"resampled without an epoch length", sample, []string{"data.resampled=true"}, []string{"data.samples_per_epoch"}},
		{"weights without resampling", sample, []string{"data.weights=[1, 2]"}, []string{"data.weights"}},
		{"unknown jpeg decoder", sample, []string{"data.jpeg_decoder=turbo"}, []string{"data.jpeg_decoder"}},
		{"accumulation below one", sample, []string{"train.accum_freq=0"}, []string{"train.accum_freq"}},
		{"negative device count", sample, []string{"train.devices=-1"}, []string{"train.devices", "≥ 0"}},
		{"batch that does not split over the devices", sample, []string{"train.devices=3", "train.batch_size=8"}, []string{"train.batch_size", "train.devices = 3", "multiple of 3"}},
		{"unknown precision", sample, []string{"train.precision=fp16"}, []string{"train.precision", "fp16", "f32, bf16"}},
		{"unknown decay rule", sample, []string{"train.wd_exclude=openclip3"}, []string{"train.wd_exclude", "openclip3", "openclip2, openclip4"}},
		{"batch file and shards", sample, []string{"data.tensors=b.safetensors"}, []string{"data.tensors", "data.train_shards", "exclusive"}},
		{"batch file and synthetic", sample, []string{"data.tensors=b.safetensors", "data.train_shards=[]", "data.synthetic.enabled=true"}, []string{"data.tensors", "data.synthetic"}},
		{"no data at all", sample, []string{"data.train_shards=[]"}, []string{"data.train_shards", "data.tensors"}},
		{"OpenCLIP's fp16 autocast in the file", sample + "  precision: amp\n", nil, []string{"line 13", "train.precision", `"amp"`, "loss scaling", "f32, tf32, bf16"}},
		{"OpenCLIP's fp16 autocast set", sample, []string{"train.precision=amp"}, []string{"--set train.precision=amp: train.precision: ", "loss scaling"}},
		{"zero learning rate", sample, []string{"train.lr=0"}, []string{"train.lr: must be positive, got 0"}},
		{"unknown schedule", sample, []string{"train.schedule=cosine-restarts"}, []string{"train.schedule: \"cosine-restarts\" is not one of cosine, const, const-cooldown"}},
		{"cooldown longer than the run", sample, []string{"train.schedule=const-cooldown", "train.cooldown_steps=101"}, []string{"train.cooldown_steps: must be in 1..steps (100)"}},
		{"negative cluster cap", sample, []string{"data.filter.cluster_cap=-1"}, []string{"data.filter.cluster_cap: must be ≥ 0"}},
		{"negative cluster weight", sample, []string{"data.filter.cluster_weights={a: -1}"}, []string{"data.filter.cluster_weights", `"a"`}},
		{"empty license", sample, []string{`data.filter.licenses=[""]`}, []string{"data.filter.licenses"}},
		{"negative readers", sample, []string{"data.readers=-1"}, []string{"data.readers: must be ≥ 0"}},
		{"augment scale beyond the image", sample, []string{"data.augment.scale=[0.5, 2]"}, []string{"data.augment.scale"}},
		{"too few synthetic eval samples", sample, []string{"data.train_shards=[]", "data.synthetic.enabled=true", "data.synthetic.eval_samples_per_task=2"},
			[]string{"data.synthetic.eval_samples_per_task: must be at least 4"}},
		{"negative grad clip", sample, []string{"train.grad_clip_norm=-1"}, []string{"train.grad_clip_norm"}},
		{"beta2 of one", sample, []string{"train.beta2=1"}, []string{"train.beta2: must be in [0,1)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tc.text), tc.overrides)
			if err == nil {
				t.Fatal("expected an error")
			}
			if tc.name != "batch of one" && strings.Contains(err.Error(), "contrastive") {
				t.Errorf("error %q explains batch_size for another key", err)
			}
			for _, want := range tc.wantAll {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// TestOpenCLIPPrecisionSpellings: OpenCLIP's --precision spellings of the
// arithmetic bmca offers are accepted in the file and with --set, and the
// run config records bmca's spelling.
func TestOpenCLIPPrecisionSpellings(t *testing.T) {
	for spelling, want := range map[string]transformer.Precision{
		"amp_bf16": transformer.BFloat16Mixed, "amp_bfloat16": transformer.BFloat16Mixed, "fp32": transformer.Float32, "tf32": transformer.TensorFloat32,
	} {
		fromFile, err := Load(writeConfig(t, sample+"  precision: "+spelling+"\n"), nil)
		if err != nil || fromFile.Train.Precision != want {
			t.Errorf("precision: %s in the file: %v, %v; want %v", spelling, fromFile.Train.Precision, err, want)
			continue
		}
		set, err := Load(writeConfig(t, sample), []string{"train.precision=" + spelling})
		if err != nil || set.Train.Precision != want {
			t.Errorf("--set train.precision=%s: %v, %v; want %v", spelling, set.Train.Precision, err, want)
		}
		run, err := set.MarshalRun()
		if err != nil || !strings.Contains(string(run), `"precision":"`+want.String()+`"`) {
			t.Errorf("%s: recorded as %s (%v), want %q", spelling, run, err, want)
		}
	}
}

func TestBatchFileSourceAndDecayRule(t *testing.T) {
	p := writeConfig(t, sample)
	cfg, err := Load(p, []string{"data.train_shards=[]", "data.tensors=ref/batches.safetensors"})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(p), "ref/batches.safetensors"); cfg.Data.Tensors != want {
		t.Errorf("data.tensors %q, want it resolved against the config file: %q", cfg.Data.Tensors, want)
	}
	if cfg.Train.DecayRule != "openclip4" {
		t.Errorf("train.wd_exclude defaults to %q, want openclip4 (open_clip 4.x)", cfg.Train.DecayRule)
	}
	cfg, err = Load(p, []string{"train.wd_exclude=openclip2"})
	if err != nil || cfg.Train.DecayRule != "openclip2" {
		t.Errorf("train.wd_exclude=openclip2: %q, %v", cfg.Train.DecayRule, err)
	}
}

func TestShippedConfigsLoad(t *testing.T) {
	matches, err := filepath.Glob("../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) == 0 {
		t.Skip("no run configs shipped yet")
	}
	for _, m := range matches {
		if _, err := Load(m, nil); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}

func TestOutputIsRelativeToTheConfigFile(t *testing.T) {
	p := writeConfig(t, sample+"output: ../runs/x\n")
	cfg, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(p), "../runs/x"); cfg.Output != want {
		t.Errorf("output %q, want %q", cfg.Output, want)
	}
}

// TestHubReferenceIsNotAPath: train.pretrained: hf-hub:… names a hub
// model and must not be joined to the config file's directory.
func TestHubReferenceIsNotAPath(t *testing.T) {
	p := writeConfig(t, sample+"  pretrained: hf-hub:org/model@v1\n")
	cfg, err := Load(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Train.Pretrained != "hf-hub:org/model@v1" {
		t.Errorf("train.pretrained %q, want the reference unchanged", cfg.Train.Pretrained)
	}
}

// floatKeys lists the YAML key of every floating-point field of Config
// (following inline structs, pointers, slices, arrays and maps), with a
// value template for --set: "%s" for a scalar, a list or mapping holding
// it otherwise.
func floatKeys(t reflect.Type, key string) map[string]string {
	out := map[string]string{}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		out[key] = "%s"
	case reflect.Pointer:
		return floatKeys(t.Elem(), key)
	case reflect.Slice, reflect.Array:
		for k, tmpl := range floatKeys(t.Elem(), key) {
			out[k] = "[" + tmpl + "]"
			if t.Kind() == reflect.Array {
				out[k] = "[1, " + tmpl + "]"
			}
		}
	case reflect.Map:
		for k, tmpl := range floatKeys(t.Elem(), key) {
			out[k] = "{x: " + tmpl + "}"
		}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			child := key
			if !strings.Contains(opts, "inline") {
				child = joinKey(key, name)
			}
			for k, v := range floatKeys(f.Type, child) {
				out[k] = v
			}
		}
	}
	return out
}

// TestNonFiniteValuesAreRejectedByKey sets every float field of the
// config, found by reflection so that new fields are covered, to NaN, +Inf
// and -Inf, with --set and in the file, and expects an error at load time
// naming that key.
func TestNonFiniteValuesAreRejectedByKey(t *testing.T) {
	keys := floatKeys(reflect.TypeOf(Config{}), "")
	for _, want := range []string{"train.weight_decay", "train.lr", "train.beta1", "model.vision_cfg.mlp_ratio", "model.init_logit_scale", "data.augment.scale", "data.filter.cluster_weights"} {
		if _, ok := keys[want]; !ok {
			t.Fatalf("float keys %v lack %s", keys, want)
		}
	}
	for key, tmpl := range keys {
		for _, bad := range []string{".nan", ".inf", "-.inf"} {
			value := fmt.Sprintf(tmpl, bad)
			_, err := Load(writeConfig(t, sample), []string{key + "=" + value})
			if err == nil || !strings.HasPrefix(strings.TrimPrefix(err.Error(), errPrefix(err)), key) || !strings.Contains(err.Error(), "finite") {
				t.Errorf("--set %s=%s: %v, want an error naming %s", key, value, err, key)
			}
		}
	}
	// In the file: train.weight_decay once ran to the end with decay off.
	_, err := Load(writeConfig(t, sample+"  weight_decay: .nan\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "train.weight_decay: must be a finite number") {
		t.Errorf("weight_decay .nan in the file: %v", err)
	}
}

// errPrefix is the "FILE: " Load puts before a validation error.
func errPrefix(err error) string {
	before, _, ok := strings.Cut(err.Error(), ".yaml: ")
	if !ok {
		return ""
	}
	return before + ".yaml: "
}
