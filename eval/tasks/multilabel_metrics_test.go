package tasks

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// sklearnCases are testdata/multilabel_sklearn.json, written by
// scripts/metrics-reference/run.sh with pinned scikit-learn.
type sklearnCase struct {
	Name                    string
	Scores                  [][]float64
	Targets                 [][]int
	Weights                 []int32
	AP, AUROC               []*float64
	MeanAP                  *float64 `json:"mean_ap"`
	MeanAUROC               *float64 `json:"mean_auroc"`
	WeightedAP, WeightedAUC []*float64
}

func (c *sklearnCase) UnmarshalJSON(data []byte) error {
	type plain sklearnCase
	var aux struct {
		plain
		WeightedAP  []*float64 `json:"weighted_ap"`
		WeightedAUC []*float64 `json:"weighted_auroc"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*c = sklearnCase(aux.plain)
	c.WeightedAP, c.WeightedAUC = aux.WeightedAP, aux.WeightedAUC
	return nil
}

func readSklearnCases(t *testing.T) []sklearnCase {
	t.Helper()
	data, err := os.ReadFile("testdata/multilabel_sklearn.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct{ Cases []sklearnCase }
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Cases) != 3 {
		t.Fatalf("%d reference cases, want 3", len(ref.Cases))
	}
	return ref.Cases
}

// flat turns a case into MultiLabelMetrics' row-major inputs.
func (c sklearnCase) flat() (scores []float32, targets []bool, classes []string) {
	for i, row := range c.Scores {
		for k, s := range row {
			scores = append(scores, float32(s))
			targets = append(targets, c.Targets[i][k] == 1)
		}
	}
	for k := range c.Scores[0] {
		classes = append(classes, string(rune('a'+k)))
	}
	return scores, targets, classes
}

func sameOrUndefined(t *testing.T, what string, got float64, want *float64) {
	t.Helper()
	switch {
	case want == nil && !math.IsNaN(got):
		t.Errorf("%s = %v, want undefined (sklearn: none)", what, got)
	case want != nil && !near(got, *want, 1e-12):
		t.Errorf("%s = %.15g, sklearn %.15g", what, got, *want)
	}
}

// TestMultiLabelAgainstSklearn compares every per-class AP and AUROC, with
// and without sample weights, and the means with sklearn's values.
func TestMultiLabelAgainstSklearn(t *testing.T) {
	for _, c := range readSklearnCases(t) {
		scores, targets, classes := c.flat()
		n, nc := len(c.Scores), len(classes)
		m, counts, err := MultiLabelMetrics(scores, targets, classes, Bootstrap{Resamples: 200})
		if err != nil {
			t.Fatal(err)
		}
		definedAP, definedAUC := 0, 0
		for k, cls := range classes {
			col := make([]float32, n)
			pos := make([]bool, n)
			for i := range n {
				col[i], pos[i] = scores[i*nc+k], targets[i*nc+k]
			}
			sameOrUndefined(t, c.Name+" AP "+cls, AveragePrecision(col, pos), c.AP[k])
			sameOrUndefined(t, c.Name+" AUROC "+cls, AUROC(col, pos), c.AUROC[k])
			ap, ok := m[ClassAPKey(cls)]
			if !ok {
				ap = math.NaN()
			}
			sameOrUndefined(t, c.Name+" metrics AP "+cls, ap, c.AP[k])
			auc, ok := m[ClassAUROCKey(cls)]
			if !ok {
				auc = math.NaN()
			}
			sameOrUndefined(t, c.Name+" metrics AUROC "+cls, auc, c.AUROC[k])
			if c.AP[k] != nil {
				definedAP++
			}
			if c.AUROC[k] != nil {
				definedAUC++
			}
			wap, wauc := rankClass(scores, targets, n, nc, k).apAUROC(c.Weights)
			sameOrUndefined(t, c.Name+" weighted AP "+cls, wap, c.WeightedAP[k])
			sameOrUndefined(t, c.Name+" weighted AUROC "+cls, wauc, c.WeightedAUC[k])
		}
		sameOrUndefined(t, c.Name+" mAP", m[MetricMeanAveragePrecision], c.MeanAP)
		sameOrUndefined(t, c.Name+" mean AUROC", m[MetricMeanAUROC], c.MeanAUROC)
		if counts != [2]int{definedAP, definedAUC} {
			t.Errorf("%s: %v classes averaged, want %d, %d", c.Name, counts, definedAP, definedAUC)
		}
		other, _, _ := MultiLabelMetrics(scores, targets, classes, Bootstrap{Resamples: 200, Seed: 1})
		for _, key := range multiLabelMetricKeys {
			low, high := CIKeys(key)
			if v := m[key]; !(m[low] <= v && v <= m[high] && m[low] < m[high]) {
				t.Errorf("%s %s = %v outside its interval [%v, %v]", c.Name, key, v, m[low], m[high])
			}
			if other[low] == m[low] && other[high] == m[high] {
				t.Errorf("%s %s: seeds 0 and 1 give the same interval", c.Name, key)
			}
		}
	}
}

// TestMultiLabelHandComputed checks small cases worked out by hand.
func TestMultiLabelHandComputed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		scores  []float32
		pos     []bool
		ap, auc float64
	}{
		// Ranked + − + −: precision 1 at the first positive, 2/3 at the
		// second; 3 of the 4 positive–negative pairs are ordered right.
		{"no ties", []float32{0.9, 0.8, 0.7, 0.6}, []bool{true, false, true, false}, (1 + 2.0/3) / 2, 0.75},
		// One threshold holding a positive and a negative: precision 1/2;
		// the tied pair counts half.
		{"tie", []float32{0.5, 0.5}, []bool{true, false}, 0.5, 0.5},
		// + then a tie of + and −: precisions 1 and 2/3; pairs: 1 + 1/2.
		{"tie after a hit", []float32{3, 2, 2}, []bool{true, true, false}, (1 + 2.0/3) / 2, 0.75},
		{"perfect", []float32{1, 0, -1}, []bool{true, false, false}, 1, 1},
		{"reversed", []float32{-1, 0, 1}, []bool{true, false, false}, 1.0 / 3, 0},
	} {
		if got := AveragePrecision(tc.scores, tc.pos); !near(got, tc.ap, 1e-15) {
			t.Errorf("%s: AP %v, want %v", tc.name, got, tc.ap)
		}
		if got := AUROC(tc.scores, tc.pos); !near(got, tc.auc, 1e-15) {
			t.Errorf("%s: AUROC %v, want %v", tc.name, got, tc.auc)
		}
	}
	if ap, auc := AveragePrecision([]float32{1, 2}, []bool{false, false}), AUROC([]float32{1, 2}, []bool{true, true}); !math.IsNaN(ap) || !math.IsNaN(auc) {
		t.Errorf("undefined: AP %v AUROC %v, want NaN", ap, auc)
	}

	// Two classes over four images: a = the "no ties" case (AP 5/6, AUROC
	// 3/4); b has positives at the top two scores (AP 1, AUROC 1).
	scores := []float32{0.9, 4, 0.8, 3, 0.7, 2, 0.6, 1}
	targets := []bool{true, true, false, true, true, false, false, false}
	m, counts, err := MultiLabelMetrics(scores, targets, []string{"a", "b"}, Bootstrap{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !near(m[MetricMeanAveragePrecision], (5.0/6+1)/2, 1e-15) || !near(m[MetricMeanAUROC], (0.75+1)/2, 1e-15) || counts != [2]int{2, 2} {
		t.Errorf("means %v, %v over %v", m[MetricMeanAveragePrecision], m[MetricMeanAUROC], counts)
	}
	if !near(m[ClassAPKey("a")], 5.0/6, 1e-15) || m[ClassAUROCKey("b")] != 1 {
		t.Errorf("per class %v", m)
	}
	again, _, _ := MultiLabelMetrics(scores, targets, []string{"a", "b"}, Bootstrap{Seed: 3})
	for k, v := range m {
		if again[k] != v {
			t.Errorf("%s: %v then %v with the same seed", k, v, again[k])
		}
	}
	if _, _, err := MultiLabelMetrics(scores, make([]bool, 8), []string{"a", "b"}, Bootstrap{}); err == nil {
		t.Error("no positives at all accepted")
	}
	if _, _, err := MultiLabelMetrics(scores[:7], targets[:7], []string{"a", "b"}, Bootstrap{}); err == nil {
		t.Error("ragged scores accepted")
	}
}
