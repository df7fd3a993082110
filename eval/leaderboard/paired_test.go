package leaderboard

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/eval/tasks"
)

// scored is a two-class result whose outcomes are right on the examples
// listed in correct (of n; every target is class 0).
func scored(task, domain string, n int, correct func(i int) bool) tasks.Result {
	ranked := make([][]int, n)
	targets := make([]int, n)
	hits := 0
	for i := range ranked {
		if correct(i) {
			ranked[i] = []int{0, 1}
			hits++
		} else {
			ranked[i] = []int{1, 0}
		}
	}
	acc := float64(hits) / float64(n)
	return tasks.Result{Task: task, Domain: domain, Kind: tasks.ZeroShotClassification, Examples: n,
		Metrics: tasks.Metrics{"acc1": acc}, LeaderboardMetrics: []string{"acc1"},
		Outcomes: tasks.ClassificationOutcomes(ranked, targets, 2)}
}

// TestPair: model b gains 8 of 80 examples on task x (significant), b and
// c equal a on y, c loses 40 of 80 on x; a task without outcomes (read
// back from a file) is not paired and keeps the means from being paired.
func TestPair(t *testing.T) {
	const n = 80
	upTo := func(k int) func(int) bool { return func(i int) bool { return i < k } }
	runs := []Run{
		{Model: "a", Results: []tasks.Result{scored("x", "d1", n, upTo(40)), scored("y", "d2", n, upTo(60))}},
		{Model: "b", Results: []tasks.Result{scored("x", "d1", n, upTo(48)), scored("y", "d2", n, upTo(60))}},
		{Model: "c", Results: []tasks.Result{scored("x", "d1", n, upTo(0)), scored("y", "d2", n, upTo(60))}},
	}
	b := Build("s", runs)
	if problems := b.Pair(runs, tasks.Bootstrap{Seed: 1}); len(problems) != 0 {
		t.Fatal(problems)
	}
	x, y := b.Rows[0], b.Rows[1]
	if x.Paired[0] != nil || x.Paired[1] == nil || x.Paired[1].Reference != "a" {
		t.Fatalf("row x paired %+v", x.Paired)
	}
	if d := x.Paired[1]; math.Abs(d.Difference-0.1) > 1e-12 || !d.Significant || d.Low <= 0 {
		t.Errorf("b - a on x: %+v", d)
	}
	if d := x.Paired[2]; math.Abs(d.Difference+0.5) > 1e-12 || !d.Significant || d.High >= 0 {
		t.Errorf("c - a on x: %+v", d)
	}
	if d := y.Paired[1]; d.Difference != 0 || d.Significant {
		t.Errorf("b - a on y: %+v", d)
	}
	if d := b.Overall.Paired[1]; math.Abs(d.Difference-0.05) > 1e-12 || d.Tasks != 2 {
		t.Errorf("overall b - a: %+v", d)
	}
	if d := b.Domains[1].Paired[1]; d.Difference != 0 || d.Tasks != 1 {
		t.Errorf("d2 b - a: %+v", d)
	}
	if runs[1].Results[0].Paired != x.Paired[1] || runs[0].Results[0].Paired != nil {
		t.Error("comparisons not recorded on the compared model's results")
	}

	dir := t.TempDir()
	if _, err := Write(dir, b, runs); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, MarkdownFile))
	for _, want := range []string{
		"## Paired differences from a",
		"| x | d1 | zeroshot_classification | acc1 | 50.0 | 60.0 ↑ | 0.0 ↓ |",
		"| y | d2 | zeroshot_classification | acc1 | 75.0 | 75.0 | 75.0 |",
		"| x | acc1 | **+10.0 [",
		"| y | acc1 | +0.0 [+0.0, +0.0] | +0.0 [+0.0, +0.0] |",
		"| **mean, overall** | headline (2 tasks) | **+5.0 [",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("leaderboard.md lacks %q:\n%s", want, md)
		}
	}
	f, _ := os.Open(filepath.Join(dir, CSVFile))
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	head := strings.Join(rows[0], ",")
	if !strings.HasSuffix(head, ",b - a,b - a ci_low,b - a ci_high,b - a significant,c - a,c - a ci_low,c - a ci_high,c - a significant") {
		t.Errorf("csv header %s", head)
	}
	for _, r := range rows[1:] {
		if r[0] == "task" && r[1] == "x" && (r[18] != "0.100000" || r[21] != "true" || r[22] != "-0.500000") {
			t.Errorf("csv x row %q", r)
		}
		if r[0] == "overall" && (r[18] != "0.050000" || r[21] != "true") {
			t.Errorf("csv overall row %q", r)
		}
	}
	var written []tasks.Result
	data, _ := os.ReadFile(filepath.Join(dir, ResultsFile))
	if err := json.Unmarshal(data, &written); err != nil {
		t.Fatal(err)
	}
	// 6 task results, then a mean entry per model for d1, d2 and overall.
	if len(written) != 6+9 || written[2].Paired == nil || written[2].Paired.Difference != x.Paired[1].Difference {
		t.Fatalf("results.json: %d entries, b/x paired %+v", len(written), written[2].Paired)
	}
	last := written[len(written)-2] // overall, model b
	if last.Kind != MeanKind || last.Task != "overall" || last.Model != "b" || last.Paired == nil || !last.Paired.Significant ||
		math.Abs(last.Metrics[MetricHeadlineMean]-0.675) > 1e-12 {
		t.Errorf("overall mean entry %+v", last)
	}

	// Results without outcomes (as read back from results.json) are not
	// paired; the problem is reported and the rest stands.
	runs[2].Results[1].Outcomes = nil
	b = Build("s", runs)
	problems := b.Pair(runs, tasks.Bootstrap{Seed: 1})
	if len(problems) == 0 || !strings.Contains(problems[0].Error(), "no per-example outcomes") {
		t.Errorf("problems %v", problems)
	}
	if b.Rows[0].Paired[2] == nil || b.Rows[1].Paired[2] != nil || b.Overall.Paired[2] != nil || b.Overall.Paired[1] == nil {
		t.Errorf("partial pairing: rows %v %v, overall %v", b.Rows[0].Paired, b.Rows[1].Paired, b.Overall.Paired)
	}
}
