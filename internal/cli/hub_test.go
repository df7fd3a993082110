package cli

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/hub/hubtest"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/train"
	"go.yaml.in/yaml/v3"
)

// TestHubCheckpoints runs the commands' checkpoint paths on a tiny OpenCLIP
// model served by a local hub: eval --compare hf-hub:org/tiny disk=DIR puts
// both in one leaderboard with identical numbers, a second run uses the
// cache offline, and train --pretrained hf-hub:… starts from the hub's
// weights.
func TestHubCheckpoints(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "run.yaml")
	text := `model: {name: tiny}
tokenizer: {name: byte-level}
data:
  synthetic: {enabled: true, dir: synth, seed: 3, train_samples: 32, eval_samples_per_task: 4}
  shuffle_buffer: 8
train: {steps: 1, batch_size: 8, lr: 1.0e-3, warmup: 1000, seed: 5, checkpoint_every: 1, log_every: 1}
eval: {batch_size: 16}
output: run
`
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, synthDir, err := SyntheticData(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	suiteYAML, err := yaml.Marshal(SyntheticSuite(m, synthDir))
	if err != nil {
		t.Fatal(err)
	}
	suitePath := filepath.Join(dir, "suite.yaml")
	if err := os.WriteFile(suitePath, suiteYAML, 0o644); err != nil {
		t.Fatal(err)
	}

	// The model as an OpenCLIP repository: the two files a bmca checkpoint
	// shares with OpenCLIP's hub layout.
	model := cfg.Model.Config
	published := clip.Init(model, 99)
	local, err := train.Save(filepath.Join(dir, "exported"), 1, &train.Checkpoint{ModelConfig: model, Weights: published})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, name := range []string{train.ModelConfigFile, train.WeightsFile} {
		if files[name], err = os.ReadFile(filepath.Join(local, name)); err != nil {
			t.Fatal(err)
		}
	}
	srv := hubtest.New()
	defer srv.Close()
	srv.Push("org/tiny", files)
	t.Setenv("HF_ENDPOINT", srv.URL())
	t.Setenv("HF_HOME", filepath.Join(dir, "hf"))
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_HUB_OFFLINE", "")

	evalArgs := func(compare ...string) EvalArgs {
		return EvalArgs{Compare: compare, Suite: suitePath, Config: &ConfigFlags{Path: cfgPath}, Out: io.Discard, Progress: io.Discard}
	}
	results, err := Eval(ctx, evalArgs("hf-hub:org/tiny", "disk="+local))
	if err != nil {
		t.Fatal(err)
	}
	n := len(results) / 2
	if n == 0 || len(results) != 2*n {
		t.Fatalf("%d results for two models", len(results))
	}
	for i, r := range results[:n] {
		disk := results[n+i]
		if r.Model != "tiny" || r.Pretrained != "hf-hub:org/tiny" || disk.Model != "disk" || r.Task != disk.Task {
			t.Errorf("rows %s/%s (%s) and %s/%s", r.Model, r.Task, r.Pretrained, disk.Model, disk.Task)
		}
		if !reflect.DeepEqual(r.Metrics, disk.Metrics) {
			t.Errorf("%s: from the hub %v, from disk %v", r.Task, r.Metrics, disk.Metrics)
		}
	}

	// A second run with HF_HUB_OFFLINE=1 uses the cache and sends nothing.
	t.Setenv("HF_HUB_OFFLINE", "1")
	before := len(srv.Requests())
	args := evalArgs("hf-hub:org/tiny")
	args.Tasks = []string{results[0].Task}
	again, err := Eval(ctx, args)
	if err != nil {
		t.Fatalf("offline: %v", err)
	}
	if len(again) != 1 || !reflect.DeepEqual(again[0].Metrics, results[0].Metrics) {
		t.Errorf("offline: %+v, want %+v", again, results[0])
	}
	if n := len(srv.Requests()) - before; n != 0 {
		t.Errorf("offline eval sent %d requests", n)
	}
	t.Setenv("HF_HUB_OFFLINE", "")

	// train --pretrained hf-hub:… (here train.pretrained in the config):
	// one step at a warmup learning rate of 1e-6 stays next to the hub's
	// weights, far from the seed's own initialisation.
	cfg.Train.Pretrained = "hf-hub:org/tiny"
	cfg.Output = filepath.Join(dir, "run")
	if err := Train(ctx, cfg, TrainArgs{Out: io.Discard, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	trained, err := train.Load(cfg.Output)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, trained.Weights, published); d > 1e-3 {
		t.Errorf("trained weights are %g from the hub's", d)
	}
	if d := maxDiff(t, trained.Weights, clip.Init(model, cfg.Train.Seed)); d < 1e-2 {
		t.Errorf("trained weights are only %g from a fresh initialisation", d)
	}
}

func maxDiff(t *testing.T, a, b weights.StateDict) float64 {
	t.Helper()
	d := 0.0
	for name, ta := range a {
		x, err := ta.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		y, err := b[name].Float32s()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for i := range x {
			d = math.Max(d, math.Abs(float64(x[i]-y[i])))
		}
	}
	return d
}
