package cli

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/data/synth"
	"github.com/bmca/bmca/eval/tasks"
	"go.yaml.in/yaml/v3"
)

// TestEvalFromAnotherDirectory trains with a config named by a relative
// path (as `train --config cfg/run.yaml` does) whose own paths are
// relative too, then evaluates the run from another working directory:
// the run config in the checkpoint holds absolute paths, so eval finds the
// synthetic data (regenerating its removed held-out part in the run's
// folder, labelled SYNTHETIC) and reproduces the training's final numbers.
// --set applies to the stored run config without --config.
func TestEvalFromAnotherDirectory(t *testing.T) {
	start := t.TempDir()
	t.Chdir(start)
	if err := os.MkdirAll("cfg", 0o755); err != nil {
		t.Fatal(err)
	}
	text := `model: {name: tiny}
tokenizer: {name: byte-level}
data:
  synthetic: {enabled: true, dir: ../synth, seed: 3, train_samples: 48, eval_samples_per_task: 4}
  shuffle_buffer: 16
train: {steps: 2, batch_size: 4, lr: 1.0e-3, warmup: 1, seed: 5, log_every: 1}
eval: {batch_size: 16}
output: ../run
`
	if err := os.WriteFile("cfg/run.yaml", []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("cfg/run.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Train(context.Background(), cfg, TrainArgs{Out: io.Discard, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	var trained []tasks.Result
	readJSON(t, filepath.Join(start, "run", "results.json"), &trained)
	synthDir := filepath.Join(start, "synth")
	m, err := synth.ReadManifest(synthDir)
	if err != nil {
		t.Fatal(err)
	}
	suiteYAML, err := yaml.Marshal(SyntheticSuite(m, synthDir))
	if err != nil {
		t.Fatal(err)
	}
	suite := filepath.Join(start, "suite.yaml")
	if err := os.WriteFile(suite, suiteYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(synthDir, "eval")); err != nil {
		t.Fatal(err)
	}

	t.Chdir(t.TempDir())
	var out strings.Builder
	evaluated, err := Eval(context.Background(), EvalArgs{Checkpoint: filepath.Join(start, "run"), Suite: suite, Out: &out, Progress: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if len(evaluated) != len(trained) || !strings.Contains(out.String(), "SYNTHETIC") {
		t.Fatalf("%d results, want %d; report:\n%s", len(evaluated), len(trained), out.String())
	}
	for i := range trained {
		if evaluated[i].Skipped || !reflect.DeepEqual(trained[i].Metrics, evaluated[i].Metrics) {
			t.Errorf("task %s: trained %v, evaluated from elsewhere %v (skipped %v: %s)", trained[i].Task, trained[i].Metrics, evaluated[i].Metrics, evaluated[i].Skipped, evaluated[i].Reason)
		}
	}

	_, err = Eval(context.Background(), EvalArgs{Checkpoint: filepath.Join(start, "run"), Suite: suite,
		Config: &ConfigFlags{Sets: []string{"tokenizer.name=clip-bpe"}}, Out: io.Discard, Progress: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "tokenizer.vocab") {
		t.Errorf("--set tokenizer.name=clip-bpe without --config: %v, want the stored config overridden (and refused for lacking a vocabulary)", err)
	}
}
