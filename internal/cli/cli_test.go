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
	"github.com/bmca/bmca/model/transformer"
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
	for _, want := range []string{"SYNTHETIC", "params, f32, backend", "done: 4 steps", "Evaluation (SYNTHETIC held-out data)", "modality", "retrieval"} {
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
	// The data pipeline's own rate and the skipped count are logged.
	if n := strings.Count(string(metrics), `"skipped":0`); n != 4 || strings.Contains(string(metrics), `"data_samples_per_s":0,`) {
		t.Errorf("metrics.jsonl should log skipped 0 and a data pipeline rate on each train line:\n%s", metrics)
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

	// The same checkpoint twice side by side, with a feature cache: the
	// second column's features all come from the cache, both columns agree,
	// and the leaderboard files are written.
	outDir, cacheDir := filepath.Join(dir, "eval"), filepath.Join(dir, "cache")
	var evalReport bytes.Buffer
	compared, err := Eval(context.Background(), EvalArgs{Compare: []string{"first=" + cfg.Output, "second=" + cfg.Output},
		Suite: suitePath, Output: outDir, CacheDir: cacheDir, Out: &evalReport, Progress: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if len(compared) != 2*len(evaluated) {
		t.Fatalf("%d results for 2 models × %d tasks", len(compared), len(evaluated))
	}
	for i, r := range compared {
		first := compared[i%len(evaluated)]
		if wantModel := []string{"first", "second"}[i/len(evaluated)]; r.Model != wantModel || !strings.Contains(r.Pretrained, "step-00000004") {
			t.Errorf("result %d: model %q pretrained %q", i, r.Model, r.Pretrained)
		}
		if r.FeaturesCached != (i >= len(evaluated)) || !reflect.DeepEqual(r.Metrics, first.Metrics) || !reflect.DeepEqual(r.Metrics, evaluated[i%len(evaluated)].Metrics) {
			t.Errorf("%s/%s: cached %v, metrics %v", r.Model, r.Task, r.FeaturesCached, r.Metrics)
		}
		// A checkpoint compared with itself: every paired difference is 0.
		if p := r.Paired; (i < len(evaluated)) != (p == nil) || p != nil && (p.Difference != 0 || p.Low != 0 || p.High != 0 || p.Significant || p.Reference != "first") {
			t.Errorf("%s/%s: paired %+v", r.Model, r.Task, p)
		}
	}
	for _, f := range []string{"results.json", "leaderboard.md", "leaderboard.csv", "chart-synthetic.png"} {
		if _, err := os.Stat(filepath.Join(outDir, f)); err != nil {
			t.Errorf("--out: %v", err)
		}
	}
	if !strings.Contains(evalReport.String(), "(5 from cached features)") || !strings.Contains(evalReport.String(), "SYNTHETIC") ||
		!strings.Contains(evalReport.String(), "Paired difference from first") {
		t.Errorf("report:\n%s", evalReport.String())
	}

	// bf16 features are other features: the float32 ones in the cache must
	// not be served for them.
	bf16, err := Eval(context.Background(), EvalArgs{Checkpoint: cfg.Output, Suite: suitePath, CacheDir: cacheDir,
		Precision: transformer.BFloat16Mixed, Out: io.Discard, Progress: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range bf16 {
		if r.FeaturesCached || r.Skipped {
			t.Errorf("bf16 %s: cached %v, skipped %v; want freshly computed features", r.Task, r.FeaturesCached, r.Skipped)
		}
	}
}

func TestSplitCompare(t *testing.T) {
	for _, tc := range []struct {
		args, rest, compare string
		err                 bool
	}{
		{args: "--suite s --compare a b c --out o", rest: "--suite s --out o", compare: "a b c"},
		{args: "-compare=x=runs/1,runs/2 --suite s", rest: "--suite s", compare: "x=runs/1 runs/2"},
		{args: "--checkpoint c --compare d", rest: "--checkpoint c", compare: "d"},
		{args: "--suite s", rest: "--suite s"},
		{args: "--compare --suite s", err: true},
	} {
		rest, compare, err := SplitCompare(strings.Fields(tc.args))
		if (err != nil) != tc.err || strings.Join(rest, " ") != tc.rest || strings.Join(compare, " ") != tc.compare {
			t.Errorf("SplitCompare(%q) = %q, %q, %v", tc.args, rest, compare, err)
		}
	}
}

func TestModelLabels(t *testing.T) {
	models, err := parseModels(EvalArgs{Checkpoint: "runs/demo", Compare: []string{"runs/x/checkpoints/step-00000200", "base=/m/openclip", "runs/demo/"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range models {
		got = append(got, m.label+"="+m.path)
	}
	want := "demo=runs/demo x@step-00000200=runs/x/checkpoints/step-00000200 base=/m/openclip demo-2=runs/demo/"
	if strings.Join(got, " ") != want {
		t.Errorf("labels %q, want %q", strings.Join(got, " "), want)
	}
	if _, err := parseModels(EvalArgs{}); err == nil {
		t.Error("no checkpoint accepted")
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
