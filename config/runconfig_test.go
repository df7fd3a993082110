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
// directory, found from where the checkpoint sits.
func TestOldRunConfigsStillRead(t *testing.T) {
	start := t.TempDir()
	t.Chdir(start)
	text := "model: {name: tiny}\ntokenizer: {name: byte-level}\ndata: {synthetic: {enabled: true, dir: synth}}\noutput: runs/demo\n"
	if err := os.WriteFile("run.yaml", []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load("run.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	old, err := json.Marshal(cfg) // what training_state.json held
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(old), `"Model"`) || !strings.Contains(string(old), `"Dir":"synth"`) {
		t.Fatalf("not the old form: %s", old)
	}
	ckptDir := filepath.Join(start, "runs", "demo", "checkpoints", "step-00000500")
	t.Chdir(t.TempDir())
	back, err := ParseRun(old, ckptDir, []string{"eval.batch_size=5"})
	if err != nil {
		t.Fatal(err)
	}
	if back.Data.Synthetic.Dir != filepath.Join(start, "synth") || back.Output != filepath.Join(start, "runs/demo") || back.Eval.BatchSize != 5 ||
		back.Model.Config.VisionCfg.ImageSize != 32 || back.Tokenizer.Name != "byte-level" {
		t.Errorf("old run config read as %+v", back)
	}
	// A moved run folder: the paths stay as they were written.
	moved, err := ParseRun(old, filepath.Join(t.TempDir(), "elsewhere", "checkpoints", "step-00000500"), nil)
	if err != nil || moved.Data.Synthetic.Dir != "synth" {
		t.Errorf("moved run: %v, synthetic dir %q", err, moved.Data.Synthetic.Dir)
	}
}
