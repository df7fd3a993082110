package leaderboard

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bmca/bmca/eval/tasks"
)

func result(task, domain string, kind tasks.Kind, metrics tasks.Metrics) tasks.Result {
	r := tasks.Result{Task: task, Domain: domain, Kind: kind, Metrics: metrics}
	switch kind {
	case tasks.Retrieval:
		r.LeaderboardMetrics = []string{tasks.MetricMeanRecall, "text_retrieval_recall@1"}
	default:
		r.LeaderboardMetrics = []string{tasks.MetricAcc1, tasks.MetricAcc5, tasks.MetricMeanPerClassRecall}
	}
	return r
}

func failed(task, domain string) tasks.Result {
	return tasks.Result{Task: task, Domain: domain, Kind: tasks.ZeroShotClassification, Failed: true, Reason: "label \"x\" is not a class\nsecond line", LeaderboardMetrics: []string{tasks.MetricAcc1}}
}

func skipped(task, domain string) tasks.Result {
	return tasks.Result{Task: task, Domain: domain, Kind: tasks.ZeroShotClassification, Skipped: true, Reason: "no folder at x", LeaderboardMetrics: []string{tasks.MetricAcc1}}
}

// runs: model a has all four tasks; model b lacks "derm", which is then
// left out of every mean (for both models); c failed on "colon" and was
// skipped on "derm", so only lung and roco are common to all three.
func runs() []Run {
	acc := func(v, lo, hi float64) tasks.Metrics {
		return tasks.Metrics{"acc1": v, "acc1_ci_low": lo, "acc1_ci_high": hi, "mean_per_class_recall": v / 2}
	}
	return []Run{
		{Model: "a", Results: []tasks.Result{
			result("lung", "pathology", tasks.ZeroShotClassification, acc(0.8, 0.7, 0.9)),
			result("colon", "pathology", tasks.ZeroShotClassification, acc(0.6, 0.5, 0.7)),
			result("roco", "radiology", tasks.Retrieval, tasks.Metrics{"mean_recall": 0.3, "text_retrieval_recall@1": 0.1}),
			result("derm", "dermatology", tasks.ZeroShotClassification, acc(0.5, 0.4, 0.6)),
		}},
		{Model: "b", Results: []tasks.Result{
			result("lung", "pathology", tasks.ZeroShotClassification, acc(0.9, 0.8, 1)),
			result("colon", "pathology", tasks.ZeroShotClassification, acc(0.5, 0.4, 0.6)),
			result("roco", "radiology", tasks.Retrieval, tasks.Metrics{"mean_recall": 0.5, "text_retrieval_recall@1": 0.2}),
			skipped("derm", "dermatology"),
		}},
		{Model: "c", Results: []tasks.Result{
			result("lung", "pathology", tasks.ZeroShotClassification, acc(0.7, 0.6, 0.8)),
			failed("colon", "pathology"),
			result("roco", "radiology", tasks.Retrieval, tasks.Metrics{"mean_recall": 0.4, "text_retrieval_recall@1": 0.2}),
			skipped("derm", "dermatology"),
		}},
	}
}

func TestBuild(t *testing.T) {
	b := Build("s", runs())
	if !reflect.DeepEqual(b.Models, []string{"a", "b", "c"}) || len(b.Rows) != 4 {
		t.Fatalf("board %+v", b)
	}
	want := map[string][]float64{"pathology": {0.8, 0.9, 0.7}, "radiology": {0.3, 0.5, 0.4}}
	for _, d := range b.Domains {
		switch d.Name {
		case "dermatology":
			if d.Tasks != 0 || d.Total != 1 || !math.IsNaN(d.Values[0]) {
				t.Errorf("dermatology mean %+v: no task every model has", d)
			}
		default:
			for j, v := range want[d.Name] {
				if math.Abs(d.Values[j]-v) > 1e-12 {
					t.Errorf("%s mean for %s = %v, want %v", d.Name, b.Models[j], d.Values[j], v)
				}
			}
		}
	}
	// Overall: lung, roco (colon failed for c, derm skipped for b and c):
	// a (0.8+0.3)/2, b (0.9+0.5)/2, c (0.7+0.4)/2.
	if o := b.Overall; o.Tasks != 2 || o.Total != 4 || math.Abs(o.Values[0]-0.55) > 1e-12 || math.Abs(o.Values[1]-0.7) > 1e-12 || math.Abs(o.Values[2]-0.55) > 1e-12 {
		t.Errorf("overall %+v", o)
	}
	if b.Rows[1].Failed[2] == "" || b.Rows[1].Failed[0] != "" || b.Rows[3].Skipped[1] == "" {
		t.Errorf("failed/skipped reasons: %+v", b.Rows)
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	rs := runs()
	files, err := Write(dir, Build("suite-x", rs), rs)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	want := []string{ResultsFile, MarkdownFile, CSVFile, "chart-pathology.png", "chart-radiology.png", "chart-dermatology.png"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("wrote %q, want %q", names, want)
	}

	var results []tasks.Result
	data, _ := os.ReadFile(filepath.Join(dir, ResultsFile))
	if err := json.Unmarshal(data, &results); err != nil || len(results) != 12 {
		t.Fatalf("results.json: %d results, %v", len(results), err)
	}
	for _, key := range []string{`"dataset": "lung"`, `"task": "zeroshot_classification"`, `"acc1": 0.8`, `"failed": true`, `"reason": "label \"x\" is not a class\nsecond line"`} {
		if !bytes.Contains(data, []byte(key)) {
			t.Errorf("results.json lacks %s", key)
		}
	}

	md, _ := os.ReadFile(filepath.Join(dir, MarkdownFile))
	for _, line := range []string{
		"# Leaderboard: suite-x",
		"| lung | pathology | zeroshot_classification | acc1 | 80.0 [70.0, 90.0] | 90.0 [80.0, 100.0] | 70.0 [60.0, 80.0] |",
		"| colon | pathology | zeroshot_classification | acc1 | 60.0 [50.0, 70.0] | 50.0 [40.0, 60.0] | **failed** |",
		"| roco | radiology | retrieval | mean_recall | 30.0 | 50.0 | 40.0 |",
		"| derm | dermatology | zeroshot_classification | acc1 | 50.0 [40.0, 60.0] | – | – |",
		"| pathology | 1 of 2 | 80.0 | 90.0 | 70.0 |",
		"| dermatology | 0 of 1 | – | – | – |",
		"| **overall** | 2 of 4 | 55.0 | 70.0 | 55.0 |",
		"| lung | mean_per_class_recall | 40.0 | 45.0 | 35.0 |",
		"## Failed (1)",
		"- colon (c): label \"x\" is not a class; second line",
		"- derm (b): no folder at x",
	} {
		if !strings.Contains(string(md), line+"\n") {
			t.Errorf("leaderboard.md lacks the line %q:\n%s", line, md)
		}
	}
	if strings.Contains(string(md), "| lung | acc5 |") {
		t.Error("leaderboard.md lists acc5, which no model has")
	}

	f, _ := os.Open(filepath.Join(dir, CSVFile))
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "level,name,domain,kind,metric,tasks,a,a ci_low,a ci_high,a status,b,b ci_low,b ci_high,b status,c,c ci_low,c ci_high,c status" {
		t.Errorf("csv header %s", got)
	}
	find := func(level, name, metric string) []string {
		for _, r := range rows {
			if r[0] == level && r[1] == name && r[4] == metric {
				return r
			}
		}
		t.Errorf("csv has no %s row %s/%s", level, name, metric)
		return make([]string, 18)
	}
	if r := find("task", "lung", "acc1"); strings.Join(r[6:14], ",") != "0.800000,0.700000,0.900000,,0.900000,0.800000,1.000000," {
		t.Errorf("lung row %q", r)
	}
	if r := find("task", "derm", "acc1"); strings.Join(r[10:14], ",") != ",,,skipped: no folder at x" {
		t.Errorf("skipped derm row %q", r)
	}
	if r := find("task", "colon", "acc1"); strings.Join(r[14:], ",") != `,,,failed: label "x" is not a class; second line` {
		t.Errorf("failed colon row %q", r)
	}
	if r := find("overall", "overall", "headline"); r[5] != "2" || r[6] != "0.550000" || r[10] != "0.700000" {
		t.Errorf("overall row %q", r)
	}

	pf, err := os.Open(filepath.Join(dir, "chart-pathology.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	img, err := png.Decode(pf)
	if err != nil || img.Bounds().Dx() < 300 {
		t.Errorf("chart: %v, %v", img.Bounds(), err)
	}
}

func TestChartFile(t *testing.T) {
	for in, want := range map[string]string{"cell biology": "chart-cell-biology.png", "Pathology ": "chart-pathology.png", "": "chart-no-domain.png", "μ/x": "chart-x.png"} {
		if got := ChartFile(in); got != want {
			t.Errorf("ChartFile(%q) = %q, want %q", in, got, want)
		}
	}
}
