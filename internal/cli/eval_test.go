package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/eval/tasks"
	"go.yaml.in/yaml/v3"
)

// TestEvalSurvivesBadTasks: the demo suite plus a task with an unknown
// kind and a task whose image does not decode. Eval reports both as failed
// (table, results.json, leaderboard) with their reasons, writes every other
// result, and returns an error naming the failures.
func TestEvalSurvivesBadTasks(t *testing.T) {
	d := sharedDemo(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "broken.png"), []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.csv"), []byte("path,label\nbroken.png,0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var suite tasks.Suite
	if err := yaml.Unmarshal(d.suiteYAML, &suite); err != nil {
		t.Fatal(err)
	}
	suite.Tasks = append(suite.Tasks,
		tasks.Task{Name: "segmentation", Kind: "segmentation", Data: []string{"x.tar"}},
		tasks.Task{Name: "broken-image", Domain: "synthetic", Kind: tasks.ZeroShotClassification, Format: "csv",
			Data: []string{filepath.Join(dir, "broken.csv")}, Classes: []string{"a", "b"}, Templates: []string{"{c}"}})
	text, err := yaml.Marshal(&suite)
	if err != nil {
		t.Fatal(err)
	}
	suitePath := filepath.Join(dir, "suite.yaml")
	if err := os.WriteFile(suitePath, text, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "eval")
	var report bytes.Buffer
	results, err := Eval(context.Background(), EvalArgs{Checkpoint: d.run, Suite: suitePath, Output: out, Out: &report, Progress: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "2 task runs failed") || !strings.Contains(err.Error(), `task "broken-image"`) {
		t.Errorf("error %v; want the two failures", err)
	}
	if len(results) != 7 {
		t.Fatalf("%d results, want 7", len(results))
	}
	for _, r := range results[:5] {
		if r.Failed || r.Skipped || len(r.Metrics) == 0 {
			t.Errorf("good task %s: %+v", r.Task, r)
		}
	}
	for _, r := range results[5:] {
		if !r.Failed || r.Reason == "" {
			t.Errorf("bad task %s: %+v", r.Task, r)
		}
	}
	for _, want := range []string{"warning: malformed tasks", `unknown kind "segmentation"`, "FAILED:", "5 task runs evaluated", "2 failed", "wrote "} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.String())
		}
	}
	var written []tasks.Result
	readJSON(t, filepath.Join(out, "results.json"), &written)
	if len(written) != 7 || !written[6].Failed || !strings.Contains(written[6].Reason, "broken.png") {
		t.Errorf("results.json: %d results, last %+v", len(written), written[len(written)-1])
	}
	md, err := os.ReadFile(filepath.Join(out, "leaderboard.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Failed (2)", "- segmentation (run): invalid task:", "- broken-image (run):", "| broken-image | synthetic | zeroshot_classification | acc1 | **failed** |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("leaderboard.md lacks %q:\n%s", want, md)
		}
	}
	js, _ := json.Marshal(written[0])
	if !strings.Contains(string(js), `"acc1"`) {
		t.Errorf("first result %s", js)
	}
}
