package cli

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/train"
)

// toyRun writes and loads a toy synthetic run config (the tiny model, a
// few steps) with its output, synthetic data and config file in dir.
func toyRun(t *testing.T, dir string, overrides ...string) *config.Config {
	t.Helper()
	cfgPath := filepath.Join(dir, "run.yaml")
	text := `model: {name: tiny}
tokenizer: {name: byte-level}
data:
  synthetic: {enabled: true, dir: synth, seed: 3, train_samples: 48, eval_samples_per_task: 4}
  shuffle_buffer: 16
train: {steps: 3, batch_size: 4, lr: 1.0e-3, warmup: 1, seed: 5, log_every: 1}
eval: {batch_size: 16}
output: run
`
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, overrides)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTrainValidatesConfigsBuiltInCode: a config changed after Load (a
// library caller) is validated again, so a NaN is named by its key before
// anything is trained or written.
func TestTrainValidatesConfigsBuiltInCode(t *testing.T) {
	cfg := toyRun(t, t.TempDir())
	cfg.Train.CooldownPower = math.NaN() // unused by the cosine schedule, and unencodable as JSON
	err := Train(context.Background(), cfg, TrainArgs{Out: io.Discard, Progress: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "train.cooldown_power") {
		t.Fatalf("Train: %v, want an error naming train.cooldown_power", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Output, "checkpoints")); !os.IsNotExist(err) {
		t.Errorf("a checkpoint folder was written: %v", err)
	}
}

// TestLeftoversAreRemovedAtTheNextStart: a run killed while saving leaves
// a partial checkpoint directory and temporary files (names as Save and
// package atomicfile make them); the next run on the folder removes them,
// says so, and keeps the real checkpoints.
func TestLeftoversAreRemovedAtTheNextStart(t *testing.T) {
	cfg := toyRun(t, t.TempDir())
	ckpts := filepath.Join(cfg.Output, train.CheckpointsDir)
	leftovers := []string{
		filepath.Join(ckpts, ".step-00000002.partial-2894871920"),
		filepath.Join(ckpts, ".latest.tmp-1804289383"),
		filepath.Join(cfg.Output, ".results.json.tmp-846930886"),
	}
	if err := os.MkdirAll(leftovers[0], 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(leftovers[0], "open_clip_model.safetensors"), leftovers[1], leftovers[2]} {
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var out strings.Builder
	if err := Train(context.Background(), cfg, TrainArgs{Out: &out, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", p, err)
		}
		if !strings.Contains(out.String(), p) {
			t.Errorf("the report does not name the removed %s:\n%s", p, out.String())
		}
	}
	if _, err := train.Load(cfg.Output); err != nil {
		t.Errorf("the run's own checkpoint: %v", err)
	}
}
