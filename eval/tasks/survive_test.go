package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/eval/tasks"
)

// checkOutcomes: every scored result keeps per-example outcomes that give
// back each reported metric exactly (what paired comparisons resample), and
// none for results that were not scored.
func checkOutcomes(t *testing.T, results []tasks.Result) {
	t.Helper()
	for _, r := range results {
		if r.Skipped || r.Failed {
			if r.Outcomes != nil {
				t.Errorf("%s: outcomes without a score", r.Task)
			}
			continue
		}
		if r.Outcomes == nil || r.Outcomes.Len() != r.Examples {
			t.Errorf("%s: outcomes %v for %d examples", r.Task, r.Outcomes, r.Examples)
			continue
		}
		checked := 0
		for key, want := range r.Metrics {
			if strings.HasSuffix(key, "_ci_low") || strings.HasSuffix(key, "_ci_high") {
				continue
			}
			got, ok := r.Outcomes.Metric(key)
			if !ok || got != want {
				t.Errorf("%s: %s from outcomes %v (%v), reported %v", r.Task, key, got, ok, want)
			}
			checked++
		}
		if checked == 0 {
			t.Errorf("%s: no metric checked", r.Task)
		}
	}
}

// TestRunSurvivesBadTasks: a suite with one good task, one whose data is
// malformed (a label that is no class), one whose image does not decode,
// two whose definitions are invalid (an unknown key; a value of the wrong
// type) and one whose data is absent. The good task is scored as if alone,
// each bad one is reported failed with its reason, the absent one skipped.
func TestRunSurvivesBadTasks(t *testing.T) {
	dir := t.TempDir()
	var good, badLabel []string
	for i, target := range e2eTargets {
		name := fmt.Sprintf("img%02d.png", i)
		writeFile(t, filepath.Join(dir, "images", name), pngOfAngle(t, 120*e2ePreds[i]))
		good = append(good, fmt.Sprintf("images/%s,%d", name, target))
		badLabel = append(badLabel, fmt.Sprintf("images/%s,%d", name, target))
	}
	badLabel[6] = "images/img06.png,nine" // row 8 of the file (header + 7)
	writeFile(t, filepath.Join(dir, "good.csv"), []byte("path,label\n"+strings.Join(good, "\n")+"\n"))
	writeFile(t, filepath.Join(dir, "bad-label.csv"), []byte("path,label\n"+strings.Join(badLabel, "\n")+"\n"))
	writeFile(t, filepath.Join(dir, "images/broken.png"), []byte("not a png"))
	writeFile(t, filepath.Join(dir, "bad-image.csv"), []byte("path,label\nimages/img00.png,0\nimages/broken.png,1\n"))
	suitePath := filepath.Join(dir, "suite.yaml")
	writeFile(t, suitePath, []byte(`name: mixed
data_root: .
tasks:
  - {name: bad-label, kind: zeroshot_classification, format: csv, data: [bad-label.csv], classes: &c ["0 degrees", "120 degrees", "240 degrees"], templates: &t ["{c}"]}
  - {name: typo, kind: zeroshot_classification, format: csv, data: [good.csv], classes: *c, templates: *t, lable_key: dx}
  - {name: good, kind: zeroshot_classification, format: csv, data: [good.csv], classes: *c, templates: *t}
  - {name: bad-image, kind: zeroshot_classification, format: csv, data: [bad-image.csv], classes: *c, templates: *t}
  - {name: wrong-type, kind: zeroshot_classification, format: csv, data: [good.csv], classes: *c, templates: *t, max_examples: lots}
  - {name: absent, kind: zeroshot_classification, format: csv, data: [nowhere.csv], classes: *c, templates: *t}
`))

	// Loading strictly refuses the suite, naming both invalid tasks.
	_, err := tasks.LoadSuite(suitePath)
	if err == nil || !strings.Contains(err.Error(), `unknown key "lable_key"`) {
		t.Fatalf("strict load: %v, want the unknown key", err)
	}
	suite, err := tasks.LoadSuiteWith(suitePath, tasks.LoadOptions{KeepInvalid: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(suite.Tasks) != 6 {
		t.Fatalf("%d tasks kept, want 6", len(suite.Tasks))
	}
	verr := suite.Validate()
	var fe *tasks.FieldError
	if !errors.As(verr, &fe) || !strings.Contains(verr.Error(), "suite.yaml:5:") || !strings.Contains(verr.Error(), "suite.yaml:8:") {
		t.Errorf("Validate: %v; want both invalid tasks with their lines", verr)
	}

	results, err := tasks.Run(context.Background(), suite, testEnv(4))
	if err != nil {
		t.Fatalf("one bad task stopped the run: %v", err)
	}
	checkOutcomes(t, results)
	byName := map[string]tasks.Result{}
	for _, r := range results {
		byName[r.Task] = r
	}
	if len(results) != 6 || len(byName) != 6 {
		t.Fatalf("%d results (%d names), want 6", len(results), len(byName))
	}
	g := byName["good"]
	if g.Failed || g.Skipped || g.Examples != 10 || math.Abs(g.Metrics[tasks.MetricAcc1]-0.6) > 1e-12 || math.Abs(g.Metrics[tasks.MetricMacroF1]-26.0/45) > 1e-12 {
		t.Errorf("good task: %+v; want acc1 0.6, macro-F1 26/45 as when run alone", g)
	}
	for name, want := range map[string][]string{
		"bad-label":  {"img06.png", `sample "images/img06.png"`, `label "nine" is not a class`},
		"bad-image":  {`sample "images/broken.png"`, "image"},
		"typo":       {"invalid task", "suite.yaml:5:", `lable_key: unknown key`},
		"wrong-type": {"invalid task", "suite.yaml:8:", "lots"},
	} {
		r := byName[name]
		if !r.Failed || r.Skipped || r.Metrics != nil {
			t.Errorf("%s: failed %v skipped %v metrics %v; want failed", name, r.Failed, r.Skipped, r.Metrics)
		}
		for _, w := range want {
			if !strings.Contains(r.Reason, w) {
				t.Errorf("%s: reason %q lacks %q", name, r.Reason, w)
			}
		}
	}
	if a := byName["absent"]; !a.Skipped || a.Failed {
		t.Errorf("absent data: %+v, want skipped", a)
	}
	ferr := tasks.Failures(results)
	if ferr == nil || strings.Count(ferr.Error(), "\n") != 3 || !strings.Contains(ferr.Error(), `task "typo"`) {
		t.Errorf("Failures: %v; want the four failed tasks", ferr)
	}
	if tasks.Failures(results[2:3]) != nil {
		t.Error("Failures of a good result is not nil")
	}

	// A cancelled run stops and says so (with what finished).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tasks.Run(ctx, suite, testEnv(4)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
}
