package cli

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/clip"
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

// TestTrainWarnsAtTheStart: settings that cannot be what was meant are
// printed before anything else happens (here the output folder cannot be
// created, so nothing is trained).
func TestTrainWarnsAtTheStart(t *testing.T) {
	dir := t.TempDir()
	cfg := toyRun(t, dir, "train.warmup=10", "train.checkpoint_every=5")
	cfg.Output = filepath.Join(dir, "a-file")
	if err := os.WriteFile(cfg.Output, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	err := Train(context.Background(), cfg, TrainArgs{Out: &out, Progress: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "output") {
		t.Fatalf("Train: %v, want the output folder refused", err)
	}
	for _, want := range []string{"warning: train.warmup: 10 warm-up steps ≥ steps (3)", "warning: train.checkpoint_every: 5 is more than train.steps (3)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output %q lacks %q", out.String(), want)
		}
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

// cancelOn is a progress writer that cancels a run when a note appears,
// as SIGTERM would at that moment (cmd/train maps it to the context).
type cancelOn struct {
	text   string
	cancel context.CancelFunc
	seen   strings.Builder
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.seen.Write(p)
	if strings.Contains(c.seen.String(), c.text) {
		c.cancel()
	}
	return len(p), nil
}

// TestInterruptedFinalEvaluation: Ctrl-C or SIGTERM during the final
// evaluation ends the run successfully (the checkpoint is written) and
// says how to get the evaluation; --resume latest then has nothing to
// train, evaluates, and prints a true summary: the checkpoint's step,
// loss and directory.
func TestInterruptedFinalEvaluation(t *testing.T) {
	cfg := toyRun(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out strings.Builder
	err := Train(ctx, cfg, TrainArgs{Out: &out, Progress: &cancelOn{text: "evaluating suite synthetic at step 3", cancel: cancel}})
	if err != nil {
		t.Fatalf("Train interrupted during the final evaluation: %v, want success\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "done: 3 steps") || !strings.Contains(out.String(), "final evaluation was interrupted") || !strings.Contains(out.String(), "--resume latest") {
		t.Errorf("report:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(cfg.Output, "results.json")); !os.IsNotExist(err) {
		t.Errorf("results.json written for an interrupted evaluation (%v)", err)
	}
	ckpt, err := train.Load(cfg.Output)
	if err != nil || ckpt.State.Step != 3 {
		t.Fatalf("checkpoint: %v at step %v", err, ckpt)
	}

	out.Reset()
	if err := Train(context.Background(), cfg, TrainArgs{Resume: "latest", Out: &out, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("done: 3 steps on SYNTHETIC data, final loss %.4f, nothing left to train (the run had finished), checkpoint %s,", ckpt.State.Loss, ckpt.Dir)
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "Evaluation (SYNTHETIC held-out data)") {
		t.Errorf("resumed report lacks %q or the evaluation:\n%s", want, out.String())
	}
	if _, err := os.Stat(filepath.Join(cfg.Output, "results.json")); err != nil {
		t.Errorf("results.json: %v", err)
	}
}

// TestPretrainedPreprocessingCarriesOver: a run started from a checkpoint
// whose preprocess_cfg is not OpenAI's trains, evaluates and saves with
// that preprocessing (train.Save once always wrote OpenAI's), and keeps it
// when resumed; a pretrained checkpoint whose config differs from the
// run's model in what shapes do not show (QuickGELU) is refused.
func TestPretrainedPreprocessingCarriesOver(t *testing.T) {
	dir := t.TempDir()
	cfg := toyRun(t, dir)
	half := clip.PreprocessConfig{Mean: [3]float64{0.5, 0.5, 0.5}, Std: [3]float64{0.5, 0.5, 0.5}, Interpolation: "bicubic", ResizeMode: "shortest"}
	pretrained := filepath.Join(dir, "pretrained")
	if _, err := checkpoint.WriteOpenCLIP(pretrained, cfg.Model.Config, half, clip.Init(cfg.Model.Config, 9)); err != nil {
		t.Fatal(err)
	}
	if err := Train(context.Background(), cfg, TrainArgs{Pretrained: pretrained, Out: io.Discard, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(cfg.Output, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ck.Close()
	if ck.Model.Preprocess != half || ck.Training == nil || ck.Training.Step != 3 {
		t.Errorf("saved preprocess_cfg %+v at step %v, want %+v", ck.Model.Preprocess, ck.Training, half)
	}

	more := toyRun(t, dir, "train.steps=4")
	if err := Train(context.Background(), more, TrainArgs{Resume: "latest", Out: io.Discard, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if ck, err = checkpoint.Open(cfg.Output, checkpoint.Options{}); err != nil {
		t.Fatal(err)
	}
	ck.Close()
	if ck.Model.Preprocess != half || ck.Training.Step != 4 {
		t.Errorf("after resuming: preprocess_cfg %+v at step %d", ck.Model.Preprocess, ck.Training.Step)
	}

	quick := cfg.Model.Config
	quick.QuickGELU = true
	if _, err := checkpoint.WriteOpenCLIP(pretrained, quick, half, clip.Init(quick, 9)); err != nil {
		t.Fatal(err)
	}
	other := toyRun(t, t.TempDir())
	err = Train(context.Background(), other, TrainArgs{Pretrained: pretrained, Out: io.Discard, Progress: io.Discard})
	if err == nil || !strings.Contains(err.Error(), `"quick_gelu":true`) {
		t.Errorf("a QuickGELU checkpoint into a GELU run: %v", err)
	}
}

// TestResumeWithChangedConfig: resuming with another batch size or seed
// is refused, naming each difference, unless --allow-changes; logging and
// evaluation settings may change, and train.steps may grow, with a note.
func TestResumeWithChangedConfig(t *testing.T) {
	dir := t.TempDir()
	if err := Train(context.Background(), toyRun(t, dir), TrainArgs{Out: io.Discard, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	changed := toyRun(t, dir, "train.batch_size=8", "train.seed=6", "train.steps=4")
	err := Train(context.Background(), changed, TrainArgs{Resume: "latest", Out: io.Discard, Progress: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "train.batch_size: 4 → 8") || !strings.Contains(err.Error(), "train.seed: 5 → 6") ||
		!strings.Contains(err.Error(), "--allow-changes") || strings.Contains(err.Error(), "train.steps") {
		t.Fatalf("resume with another batch size and seed: %v", err)
	}
	if ck, err := train.Load(changed.Output); err != nil || ck.State.Step != 3 {
		t.Fatalf("the refused resume trained: %v", err)
	}

	var out strings.Builder
	harmless := toyRun(t, dir, "train.log_every=2", "eval.batch_size=8", "train.steps=4")
	if err := Train(context.Background(), harmless, TrainArgs{Resume: "latest", Out: &out, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"train.log_every: 1 → 2", "eval.batch_size: 16 → 8", "train.steps: 3 → 4 (the run is extended"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	changed = toyRun(t, dir, "train.batch_size=8", "train.seed=6", "train.steps=5")
	if err := Train(context.Background(), changed, TrainArgs{Resume: "latest", AllowChanges: true, Out: &out, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "accepted by --allow-changes") || !strings.Contains(out.String(), "train.batch_size: 4 → 8") {
		t.Errorf("report:\n%s", out.String())
	}
}

// TestCheckpointBeforeTheFirstLogLineIsQuiet: a checkpoint saved before any
// training line is logged has nothing to plot yet, which is not worth a
// warning; the run's end still draws the plot.
func TestCheckpointBeforeTheFirstLogLineIsQuiet(t *testing.T) {
	cfg := toyRun(t, t.TempDir(), "train.checkpoint_every=1", "train.log_every=100")
	var progress strings.Builder
	if err := Train(context.Background(), cfg, TrainArgs{Out: io.Discard, Progress: &progress}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(progress.String(), "metrics plot") {
		t.Errorf("progress warns about the plot:\n%s", progress.String())
	}
	if _, err := os.Stat(filepath.Join(cfg.Output, train.PlotFile)); err != nil {
		t.Errorf("no plot at the end of the run: %v", err)
	}
}

// TestResumeLatestWithoutACheckpoint: --resume latest on an output folder
// with no checkpoint says there is nothing to resume, instead of listing
// the checkpoint files it looked for.
func TestResumeLatestWithoutACheckpoint(t *testing.T) {
	cfg := toyRun(t, t.TempDir())
	err := Train(context.Background(), cfg, TrainArgs{Resume: "latest", Out: io.Discard, Progress: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "holds no checkpoint yet") || !strings.Contains(err.Error(), "without --resume") {
		t.Errorf("Train --resume latest on an empty output: %v; want 'nothing to resume' and how to start", err)
	}
}
