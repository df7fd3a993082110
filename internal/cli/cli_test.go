package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/data/synth"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/train"
	"go.yaml.in/yaml/v3"
)

// TestTrainThenEvalReproduces runs the demo path end to end at toy size:
// synthetic shards → training → checkpoint → evaluation, then evaluates the
// saved checkpoint the way cmd/eval does and expects identical numbers.
func TestTrainThenEvalReproduces(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "run.yaml")
	text := `model: {name: tiny}
tokenizer: {name: byte-level}
data:
  synthetic: {enabled: true, dir: synth, seed: 3, train_samples: 96, eval_samples_per_task: 8}
  shuffle_buffer: 32
train: {steps: 4, batch_size: 8, lr: 1.0e-3, warmup: 1, seed: 5, checkpoint_every: 2, log_every: 1}
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
	// Outputs relative to the test's temp dir, not the package dir.
	cfg.Output = filepath.Join(dir, "run")
	var out bytes.Buffer
	if err := Train(context.Background(), cfg, TrainArgs{Out: &out, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	report := out.String()
	for _, want := range []string{"SYNTHETIC", "done: 4 steps", "Evaluation (SYNTHETIC held-out data)", "modality", "retrieval"} {
		if !strings.Contains(report, want) {
			t.Errorf("training report lacks %q:\n%s", want, report)
		}
	}
	var trained []tasks.Result
	readJSON(t, filepath.Join(cfg.Output, "results.json"), &trained)
	if len(trained) != 5 {
		t.Fatalf("%d results, want 4 zero-shot tasks + retrieval", len(trained))
	}
	metrics, err := os.ReadFile(filepath.Join(cfg.Output, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(metrics), `"kind":"train"`); n != 4 {
		t.Errorf("metrics.jsonl has %d train lines, want 4", n)
	}

	// The suite cmd/eval gets: the synthetic tasks written as YAML.
	m, err := synth.ReadManifest(cfg.Data.Synthetic.Dir)
	if err != nil {
		t.Fatal(err)
	}
	suiteYAML, err := yaml.Marshal(SyntheticSuite(m, cfg.Data.Synthetic.Dir))
	if err != nil {
		t.Fatal(err)
	}
	suitePath := filepath.Join(dir, "suite.yaml")
	if err := os.WriteFile(suitePath, suiteYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	evaluated, err := Eval(context.Background(), EvalArgs{Checkpoint: cfg.Output, Suite: suitePath, Out: io.Discard, Progress: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	for i := range trained {
		if !reflect.DeepEqual(trained[i].Metrics, evaluated[i].Metrics) {
			t.Errorf("task %s: metrics at the end of training %v, re-evaluated from the checkpoint %v", trained[i].Task, trained[i].Metrics, evaluated[i].Metrics)
		}
	}
	ckpt, err := train.Load(cfg.Output)
	if err != nil {
		t.Fatal(err)
	}
	if ckpt.State.Step != 4 {
		t.Errorf("latest checkpoint at step %d, want 4", ckpt.State.Step)
	}
}

// TestDemoSuiteMatchesGenerator keeps configs/suites/demo.yaml in step with
// the synthetic generator's task definitions.
func TestDemoSuiteMatchesGenerator(t *testing.T) {
	shipped, err := tasks.LoadSuite("../../configs/suites/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc := synth.DefaultConfig()
	sc.TrainSamples, sc.EvalSamplesPerTask, sc.RetrievalSamples = 4, 4, 4
	dir := filepath.Join(t.TempDir(), "synth")
	m, err := synth.Write(context.Background(), dir, sc)
	if err != nil {
		t.Fatal(err)
	}
	generated := SyntheticSuite(m, dir)
	if len(shipped.Tasks) != len(generated.Tasks) {
		t.Fatalf("demo suite has %d tasks, the generator %d", len(shipped.Tasks), len(generated.Tasks))
	}
	for i, want := range generated.Tasks {
		got := shipped.Tasks[i]
		if got.Name != want.Name || got.Kind != want.Kind || !reflect.DeepEqual(got.Classes, want.Classes) {
			t.Errorf("task %d: shipped %s/%s %v, generator %s/%s %v", i, got.Name, got.Kind, got.Classes, want.Name, want.Kind, want.Classes)
		}
		for j := range want.Templates {
			g, _ := tasks.FormatTemplate(got.Templates[j], "X")
			w, _ := tasks.FormatTemplate(want.Templates[j], "X")
			if g != w {
				t.Errorf("task %s template %d: shipped %q, generator %q", want.Name, j, got.Templates[j], want.Templates[j])
			}
		}
		if !strings.Contains(got.Shards[0], "eval/"+want.Name+"-") {
			t.Errorf("task %s reads %v", want.Name, got.Shards)
		}
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}
