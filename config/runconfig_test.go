package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestRunConfigRoundTrip: the run config a checkpoint records uses the
// YAML key names and absolute local paths (URLs, biomedica: specs with a
// URL base, hf-hub: and pipe: references as written), and reads back,
// from any working directory, as the config that was loaded.
func TestRunConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.MkdirAll("cfg", 0o755); err != nil {
		t.Fatal(err)
	}
	text := `model: {name: tiny}
tokenizer: {name: clip-bpe, vocab: ../vocab/bpe.txt.gz}
data:
  train_shards: ["shards/{000..009}.tar::https://host/x/{0..3}.tar", "biomedica:other@https://hub/b", "pipe:curl -s x"]
  filter: {cluster_weights: {"7": 0.5}}
train: {steps: 10, batch_size: 4, pretrained: "hf-hub:org/model"}
eval: {suite: suites/s.yaml}
output: ../runs/x
`
	if err := os.WriteFile("cfg/run.yaml", []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load("cfg/run.yaml", nil) // a relative config path, as users type it
	if err != nil {
		t.Fatal(err)
	}
	data, err := cfg.MarshalRun()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"model":`, `"train_shards":`, `"batch_size":4`, `"embed_dim":64`, `"cluster_weights":{"7":0.5}`,
		`"vocab":"` + filepath.Join(dir, "vocab/bpe.txt.gz") + `"`, `"output":"` + filepath.Join(dir, "runs/x") + `"`,
		`"suite":"` + filepath.Join(dir, "cfg/suites/s.yaml") + `"`,
		`"` + filepath.Join(dir, "cfg/shards/{000..009}.tar") + `::https://host/x/{0..3}.tar"`,
		`"biomedica:other@https://hub/b"`, `"pipe:curl -s x"`, `"pretrained":"hf-hub:org/model"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("recorded run config lacks %s:\n%s", want, data)
		}
	}
	for _, goName := range []string{`"Model"`, `"TrainShards"`, `"BatchSize"`} {
		if strings.Contains(string(data), goName) {
			t.Errorf("recorded run config has the Go field name %s", goName)
		}
	}

	t.Chdir(t.TempDir())
	back, err := ParseRun(data, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := *cfg
	want.Data.TrainShards = append([]string(nil), cfg.Data.TrainShards...)
	want.resolvePaths(dir)
	// Compared in the recorded form: a nil list reads back as an empty one.
	gotJSON, err1 := yamlKeyJSON(back)
	wantJSON, err2 := yamlKeyJSON(&want)
	if err1 != nil || err2 != nil || string(gotJSON) != string(wantJSON) || !reflect.DeepEqual(back.Model, want.Model) {
		t.Errorf("read back:\n%s\nwant\n%s", gotJSON, wantJSON)
	}
	over, err := ParseRun(data, "", []string{"eval.batch_size=7"})
	if err != nil || over.Eval.BatchSize != 7 {
		t.Errorf("override: %v, %+v", err, over.Eval)
	}
}

// TestOldRunConfigsStillRead: checkpoints on users' disks record the run
// config under Go's field names with paths relative to where the run was
// started. They read as before, with those paths resolved against that
// directory, found from where the checkpoint sits. The file is what
// training_state.json held before the config embedded the library's types
// (some settings now live in fields of other names): every setting, none
// of them a default, must survive.
func TestOldRunConfigsStillRead(t *testing.T) {
	old, err := os.ReadFile("testdata/run-config-go-names.json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(old), `"Model"`) || !strings.Contains(string(old), `"Dir":"synth"`) {
		t.Fatalf("not the old form: %s", old)
	}
	start := t.TempDir()
	ckptDir := filepath.Join(start, "runs", "old", "checkpoints", "step-00000300")
	t.Chdir(t.TempDir())
	back, err := ParseRun(old, ckptDir, []string{"eval.batch_size=5"})
	if err != nil {
		t.Fatal(err)
	}
	if back.Data.Synthetic.Dir != filepath.Join(start, "synth") || back.Output != filepath.Join(start, "runs/old") || back.Eval.BatchSize != 5 ||
		back.Data.TrainShards[0] != filepath.Join(start, "shards/{0..3}.tar") ||
		back.Model.Config.VisionCfg.ImageSize != 32 || back.Tokenizer.Name != "byte-level" {
		t.Errorf("old run config read as %+v", back)
	}
	checkRecordedSettings(t, back)
	// A moved run folder: the paths stay as they were written.
	moved, err := ParseRun(old, filepath.Join(t.TempDir(), "elsewhere", "checkpoints", "step-00000300"), nil)
	if err != nil || moved.Data.Synthetic.Dir != "synth" {
		t.Errorf("moved run: %v, synthetic dir %q", err, moved.Data.Synthetic.Dir)
	}
}

// checkRecordedSettings checks the settings of the testdata run configs,
// none of which is a default, field by field.
func checkRecordedSettings(t *testing.T, c *Config) {
	t.Helper()
	tr, d := c.Train, c.Data
	for _, check := range []struct {
		key       string
		got, want any
	}{
		{"train.schedule", tr.Schedule.Kind, "const-cooldown"},
		{"train.lr", tr.PeakLR, 1e-3},
		{"train.warmup", tr.Warmup, 30},
		{"train.cooldown_steps", tr.CooldownSteps, 100},
		{"train.cooldown_power", tr.CooldownPower, 2.0},
		{"train.cooldown_end", tr.CooldownEnd, 1e-5},
		{"train.wd_exclude", string(tr.DecayRule), "openclip2"},
		{"train.grad_clip_norm", tr.ClipNorm, 1.0},
		{"train.beta1", tr.Beta1, 0.8},
		{"train.beta2", tr.Beta2, 0.95},
		{"train.eps", tr.Eps, 1e-8},
		{"train.weight_decay", tr.WeightDecay, 0.1},
		{"train.precision", tr.Precision.String(), "bf16"},
		{"train.grad_checkpointing", tr.GradCheckpointing, true},
		{"train.accum_freq", tr.AccumFreq, 2},
		{"train.lock_image", tr.LockImage, true},
		{"train.steps", tr.Steps, 300},
		{"train.batch_size", tr.BatchSize, 32},
		{"train.seed", tr.Seed, uint64(7)},
		{"train.checkpoint_every", tr.CheckpointEvery, 100},
		{"train.keep_checkpoints", tr.KeepCheckpoints, 3},
		{"train.log_every", tr.LogEvery, 5},
		{"data.format", d.Format, "webdataset"},
		{"data.parquet", d.Parquet.Image + " " + d.Parquet.Caption + " " + d.Parquet.Key + " " + strings.Join(d.Parquet.Meta, ","), "img cap id m"},
		{"data.samples_per_epoch", d.SamplesPerEpoch, int64(4096)},
		{"data.readers", d.Readers, 4},
		{"data.shuffle_buffer", d.ShuffleBuffer, 300},
		{"data.workers", d.Workers, 3},
		{"data.max_member_bytes", d.MaxMemberBytes, int64(1 << 20)},
		{"data.meta_fields", strings.Join(d.MetaFields, ","), "image_hash"},
		{"data.filter.licenses", strings.Join(d.Filter.Licenses, ","), "commercial"},
		{"data.filter.include_primary", strings.Join(d.Filter.IncludePrimary, ","), "Microscopy"},
		{"data.filter.exclude_secondary", strings.Join(d.Filter.ExcludeSecondary, ","), "bar plot"},
		{"data.filter.panel_types", strings.Join(d.Filter.PanelTypes, ","), "single"},
		{"data.filter.cluster_cap", d.Filter.ClusterCap, 50},
		{"data.filter.cluster_weights", d.Filter.ClusterWeights["7"], 0.5},
		{"data.filter.default_cluster_weight", d.Filter.DefaultClusterWeight, 0.25},
		{"data.augment.scale", d.Augment.Scale, [2]float64{0.8, 1}},
		{"data.augment.ratio", d.Augment.Ratio, [2]float64{0.5, 2}},
		{"data.synthetic.seed", d.Synthetic.Seed, uint64(9)},
		{"data.synthetic.train_samples", d.Synthetic.TrainSamples, 512},
		{"data.synthetic.eval_samples_per_task", d.Synthetic.EvalSamplesPerTask, 40},
		{"eval.every", c.Eval.Every, 100},
	} {
		if !reflect.DeepEqual(check.got, check.want) {
			t.Errorf("%s read as %v, want %v", check.key, check.got, check.want)
		}
	}
}

// TestRecordedRunConfigsKeepTheirKeys: a run config recorded under the
// YAML keys before the config embedded the library's types reads back
// with every setting, and records again under the same keys with the same
// values; the only keys added since are data.synthetic's new ones.
func TestRecordedRunConfigsKeepTheirKeys(t *testing.T) {
	recorded, err := os.ReadFile("testdata/run-config-yaml-keys.json")
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseRun(recorded, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	checkRecordedSettings(t, back)
	again, err := yamlKeyJSON(back)
	if err != nil {
		t.Fatal(err)
	}
	flat := func(data []byte) map[string]string {
		var tree map[string]any
		if err := json.Unmarshal(data, &tree); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		var walk func(prefix string, v any)
		walk = func(prefix string, v any) {
			if m, ok := v.(map[string]any); ok {
				for k, child := range m {
					walk(joinKey(prefix, k), child)
				}
				return
			}
			text, _ := json.Marshal(v)
			out[prefix] = string(text)
		}
		walk("", tree)
		return out
	}
	was, now := flat(recorded), flat(again)
	for k, v := range was {
		if now[k] != v {
			t.Errorf("%s: recorded %s, now %q", k, v, now[k])
		}
	}
	added := map[string]bool{"data.synthetic.image_size": true, "data.synthetic.samples_per_shard": true, "data.synthetic.retrieval_samples": true}
	for k := range now {
		if _, ok := was[k]; !ok && !added[k] {
			t.Errorf("%s: a key the recorded run config did not have", k)
		}
	}

	// The old form reads as the same config.
	old, err := os.ReadFile("testdata/run-config-go-names.json")
	if err != nil {
		t.Fatal(err)
	}
	fromOld, err := ParseRun(old, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	oldJSON, err := yamlKeyJSON(fromOld)
	if err != nil || string(oldJSON) != string(again) {
		t.Errorf("the old form reads as\n%s\nthe recorded form as\n%s (%v)", oldJSON, again, err)
	}
}
