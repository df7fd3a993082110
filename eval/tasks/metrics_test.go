package tasks

import (
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestTopK(t *testing.T) {
	row := []float32{0.1, 0.7, 0.3, 0.7, -1}
	got := TopK(row, 3)
	want := []int{1, 3, 2} // tie 1/3 goes to the lower index
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("TopK = %v, want %v", got, want)
		}
	}
	if len(TopK(row, 9)) != 5 {
		t.Errorf("TopK does not clamp k")
	}
}

func TestClassificationMetricFunctions(t *testing.T) {
	for _, tc := range []struct {
		name            string
		targets, pred   []int
		acc, bal, macro float64
	}{
		{
			// Confusion (rows true, columns predicted):
			//   [3 1 0]   recall 3/4   F1 2·3/(6+2+1) = 2/3
			//   [0 2 1]   recall 2/3   F1 2·2/(4+1+1) = 2/3
			//   [2 0 1]   recall 1/3   F1 2·1/(2+1+2) = 2/5
			name:    "three classes",
			targets: []int{0, 0, 0, 0, 1, 1, 1, 2, 2, 2},
			pred:    []int{0, 0, 0, 1, 1, 1, 2, 2, 0, 0},
			acc:     0.6, bal: (3.0/4 + 2.0/3 + 1.0/3) / 3, macro: 26.0 / 45,
		},
		{
			// Class 2 is predicted but never true: it counts for macro-F1
			// (F1 0) but not for balanced accuracy, as in sklearn.
			name:    "predicted-only class",
			targets: []int{0, 0, 1, 1},
			pred:    []int{0, 2, 1, 1},
			acc:     0.75, bal: (0.5 + 1) / 2, macro: (2.0/3 + 1 + 0) / 3,
		},
		{
			name:    "perfect",
			targets: []int{4, 1, 1},
			pred:    []int{4, 1, 1},
			acc:     1, bal: 1, macro: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ranked := make([][]int, len(tc.pred))
			for i, p := range tc.pred {
				ranked[i] = []int{p}
			}
			if got := TopKAccuracy(ranked, tc.targets, 1); !near(got, tc.acc, 1e-12) {
				t.Errorf("accuracy %v, want %v", got, tc.acc)
			}
			if got := BalancedAccuracy(tc.pred, tc.targets); !near(got, tc.bal, 1e-12) {
				t.Errorf("balanced accuracy %v, want %v", got, tc.bal)
			}
			if got := MacroF1(tc.pred, tc.targets); !near(got, tc.macro, 1e-12) {
				t.Errorf("macro-F1 %v, want %v", got, tc.macro)
			}
		})
	}
}

func TestClassificationMetricsAcc5(t *testing.T) {
	ranked := [][]int{{1, 0, 2, 3, 4}, {0, 1, 2, 3, 4}, {2, 3, 4, 0, 1}, {0, 1, 2, 3, 4}}
	targets := []int{0, 0, 1, 4}
	m, err := ClassificationMetrics(ranked, targets, 6, Bootstrap{})
	if err != nil {
		t.Fatal(err)
	}
	if m[MetricAcc1] != 0.25 || m[MetricAcc5] != 1 {
		t.Errorf("acc1 %v acc5 %v, want 0.25 and 1", m[MetricAcc1], m[MetricAcc5])
	}
	if got := TopKAccuracy(ranked, targets, 2); got != 0.5 {
		t.Errorf("acc2 %v, want 0.5", got)
	}
	short := [][]int{{0, 1, 2, 3}, {1, 0, 2, 3}}
	m, err = ClassificationMetrics(short, []int{0, 0}, 4, Bootstrap{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m[MetricAcc5]; ok {
		t.Errorf("acc5 reported with 4 classes: %v", m)
	}
	js, err := m.MarshalJSON()
	if err != nil || strings.Contains(string(js), "acc5") {
		t.Errorf("JSON %s, %v", js, err)
	}
	if js, err := (Metrics{"x": math.NaN(), "y": 0.5}).MarshalJSON(); err != nil || string(js) != `{"x":null,"y":0.5}` {
		t.Errorf("NaN JSON = %s, %v", js, err)
	}
}

func TestBootstrapCI(t *testing.T) {
	correct := make([]bool, 100)
	for i := range 60 {
		correct[i] = true
	}
	lo, hi := BootstrapCI(correct, Bootstrap{})
	lo2, hi2 := BootstrapCI(correct, Bootstrap{})
	if lo != lo2 || hi != hi2 {
		t.Fatalf("not deterministic: [%v,%v] vs [%v,%v]", lo, hi, lo2, hi2)
	}
	// Normal approximation: 0.6 ± 1.96·sqrt(0.24/100) = 0.6 ± 0.096.
	if !(lo > 0.48 && lo < 0.54 && hi > 0.66 && hi < 0.72) {
		t.Errorf("95%% interval [%v, %v], want about [0.504, 0.696]", lo, hi)
	}
	if lo3, hi3 := BootstrapCI(correct, Bootstrap{Seed: 7}); lo3 == lo && hi3 == hi {
		t.Logf("seed 7 gives the same interval (possible, unlikely)")
	}
	all := []bool{true, true, true}
	if lo, hi := BootstrapCI(all, Bootstrap{Resamples: 50}); lo != 1 || hi != 1 {
		t.Errorf("all correct: [%v, %v]", lo, hi)
	}
	if got := percentile([]float64{1, 2, 3, 4}, 0.025); !near(got, 1.075, 1e-12) {
		t.Errorf("percentile = %v, want numpy's 1.075", got)
	}
}

func TestRetrievalRecall(t *testing.T) {
	// Images are one-hot, so text row t is its score row: scores[t][i].
	identity := func(n int) []float32 {
		x := make([]float32, n*n)
		for i := range n {
			x[i*n+i] = 1
		}
		return x
	}
	for _, tc := range []struct {
		name      string
		numImages int
		scores    [][]float32 // [text][image]
		textImage []int
		ks        []int
		want      Metrics
	}{
		{
			// Image 0 has captions 0 and 1; image 1 caption 2; image 2
			// captions 3 and 4. Image 0's first caption is not its best
			// (caption 1 tops the column), image 1's caption is second in
			// its column. Naive answers for text_retrieval_recall@1:
			// "first caption only" gives 1/3, "fraction of captions found"
			// gives (1/2+0+1/2)/3 = 1/3, CLIP_benchmark's "any caption" 2/3.
			name:      "several captions per image",
			numImages: 3,
			scores: [][]float32{
				{0.9, 0.1, 0.0},
				{0.95, 0.99, 0.1},
				{0.3, 0.5, 0.6},
				{0.1, 0.2, 0.7},
				{0.0, 0.4, 0.3},
			},
			textImage: []int{0, 0, 1, 2, 2},
			ks:        []int{1, 2, 3},
			want: Metrics{
				"image_retrieval_recall@1": 2.0 / 5, "image_retrieval_recall@2": 1, "image_retrieval_recall@3": 1,
				"text_retrieval_recall@1": 2.0 / 3, "text_retrieval_recall@2": 1, "text_retrieval_recall@3": 1,
				"mean_recall": (2.0/5 + 1 + 1 + 2.0/3 + 1 + 1) / 6,
			},
		},
		{
			// Equal scores rank by lower index; image 2 has no caption and
			// always misses; k beyond the candidate count is a hit.
			name:      "ties and an image without captions",
			numImages: 3,
			scores: [][]float32{
				{0.5, 0.5, 0.1}, // image 0 wins the tie
				{0.5, 0.5, 0.1}, // its image 1 loses it
			},
			textImage: []int{0, 1},
			ks:        []int{1, 2, 10},
			want: Metrics{
				"image_retrieval_recall@1": 0.5, "image_retrieval_recall@2": 1, "image_retrieval_recall@10": 1,
				// image 0: caption 0 first; image 1: caption 1 after caption 0.
				"text_retrieval_recall@1": 1.0 / 3, "text_retrieval_recall@2": 2.0 / 3, "text_retrieval_recall@10": 2.0 / 3,
				"mean_recall": (0.5 + 1 + 1 + 1.0/3 + 2.0/3 + 2.0/3) / 6,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var texts []float32
			for _, row := range tc.scores {
				texts = append(texts, row...)
			}
			got, err := RetrievalRecall(identity(tc.numImages), texts, tc.numImages, tc.textImage, tc.ks)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("keys %v, want %v", got, tc.want)
			}
			for k, w := range tc.want {
				if g, ok := got[k]; !ok || !near(g, w, 1e-12) {
					t.Errorf("%s = %v, want %v", k, g, w)
				}
			}
		})
	}
	if _, err := RetrievalRecall([]float32{1, 0}, []float32{1, 0}, 2, []int{3}, []int{1}); err == nil {
		t.Error("caption pointing past the images accepted")
	}
}

// BenchmarkRetrievalRecall scores 500 images against 2500 captions of 512
// values and reports scored pairs per second.
func BenchmarkRetrievalRecall(b *testing.B) {
	const dim, ni, nt = 512, 500, 2500
	images, texts := make([]float32, ni*dim), make([]float32, nt*dim)
	for i := range images {
		images[i] = float32(i%97) / 97
	}
	for i := range texts {
		texts[i] = float32(i%89) / 89
	}
	textImage := make([]int, nt)
	for t := range textImage {
		textImage[t] = t % ni
	}
	for b.Loop() {
		if _, err := RetrievalRecall(images, texts, dim, textImage, []int{1, 5, 10}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ni*nt)*float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// TestMetricsHandComputed covers the cases the issue names: ties, a class
// never predicted, a single class.
func TestMetricsHandComputed(t *testing.T) {
	for _, tc := range []struct {
		name            string
		targets, pred   []int
		acc, bal, macro float64
	}{
		{
			// Class 2 is never predicted: recall 1, 1, 0; F1 of class 1 is
			// 2·2/(4+2+0) = 2/3, of class 2 zero.
			name:    "class never predicted",
			targets: []int{0, 0, 1, 1, 2, 2},
			pred:    []int{0, 0, 1, 1, 1, 1},
			acc:     4.0 / 6, bal: 2.0 / 3, macro: (1 + 2.0/3 + 0) / 3,
		},
		{
			// One true class: balanced accuracy is its recall, 3/4; macro-F1
			// averages class 1 (2·3/(6+0+1) = 6/7) and the predicted-only
			// class 0 (0).
			name:    "single true class",
			targets: []int{1, 1, 1, 1},
			pred:    []int{1, 0, 1, 1},
			acc:     0.75, bal: 0.75, macro: 3.0 / 7,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := BalancedAccuracy(tc.pred, tc.targets); !near(got, tc.bal, 1e-15) {
				t.Errorf("balanced accuracy %v, want %v", got, tc.bal)
			}
			if got := MacroF1(tc.pred, tc.targets); !near(got, tc.macro, 1e-15) {
				t.Errorf("macro-F1 %v, want %v", got, tc.macro)
			}
			ranked := make([][]int, len(tc.pred))
			for i, p := range tc.pred {
				ranked[i] = []int{p, (p + 1) % 3, (p + 2) % 3}
			}
			m, err := ClassificationMetrics(ranked, tc.targets, 3, Bootstrap{Resamples: 200})
			if err != nil {
				t.Fatal(err)
			}
			if !near(m[MetricAcc1], tc.acc, 1e-15) || !near(m[MetricMeanPerClassRecall], tc.bal, 1e-15) || !near(m[MetricMacroF1], tc.macro, 1e-15) {
				t.Errorf("metrics %v", m)
			}
		})
	}

	// Ties: equal logits rank by lower class index, so target 2 of a row
	// tied between classes 1 and 2 is missed at k=1 and found at k=2.
	logits := []float32{0.2, 0.5, 0.5, 0.1, 0.9, 0.9, 0.9, 0.0}
	ranked := rankScores(logits, 2, 4)
	if !reflect.DeepEqual(ranked, [][]int{{1, 2, 0, 3}, {0, 1, 2, 3}}) {
		t.Fatalf("ranked %v", ranked)
	}
	targets := []int{2, 2}
	if TopKAccuracy(ranked, targets, 1) != 0 || TopKAccuracy(ranked, targets, 2) != 0.5 || TopKAccuracy(ranked, targets, 3) != 1 {
		t.Errorf("tied top-k: %v %v %v", TopKAccuracy(ranked, targets, 1), TopKAccuracy(ranked, targets, 2), TopKAccuracy(ranked, targets, 3))
	}

	// A single-class task: everything is right, every interval is [1, 1].
	m, err := ClassificationMetrics([][]int{{0}, {0}, {0}}, []int{0, 0, 0}, 1, Bootstrap{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{MetricAcc1, MetricMeanPerClassRecall, MetricMacroF1} {
		lo, hi := CIKeys(k)
		if m[k] != 1 || m[lo] != 1 || m[hi] != 1 {
			t.Errorf("single class %s: %v [%v, %v]", k, m[k], m[lo], m[hi])
		}
	}
	if _, err := ClassificationMetrics([][]int{{3}}, []int{0}, 2, Bootstrap{}); err == nil {
		t.Error("prediction outside the classes accepted")
	}
}

// TestBootstrapAllMetrics checks every classification metric gets an
// interval around it, identical under the same seed whatever the number of
// goroutines, and that the acc1 interval is BootstrapCI's.
func TestBootstrapAllMetrics(t *testing.T) {
	var ranked [][]int
	var targets []int
	var correct []bool
	for i := range 300 {
		target := i % 6
		pred := target
		if i%5 == 0 || i%7 == 0 {
			pred = (target + 1 + i%4) % 6
		}
		r := []int{pred}
		for c := range 6 {
			if c != pred {
				r = append(r, c)
			}
		}
		ranked = append(ranked, r[:5])
		targets = append(targets, target)
		correct = append(correct, pred == target)
	}
	b := Bootstrap{Resamples: 1000, Seed: 42}
	m1, err := ClassificationMetrics(ranked, targets, 6, b)
	if err != nil {
		t.Fatal(err)
	}
	prev := runtime.GOMAXPROCS(1)
	m2, err := ClassificationMetrics(ranked, targets, 6, b)
	runtime.GOMAXPROCS(prev)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m1, m2) {
		t.Errorf("same seed, different intervals with 1 goroutine:\n%v\n%v", m1, m2)
	}
	for _, k := range classificationMetrics {
		lo, hi := CIKeys(k)
		if !(m1[lo] <= m1[k] && m1[k] <= m1[hi] && m1[lo] < m1[hi]) {
			t.Errorf("%s = %v outside its interval [%v, %v]", k, m1[k], m1[lo], m1[hi])
		}
	}
	if lo, hi := BootstrapCI(correct, b); lo != m1[MetricAcc1CILow] || hi != m1[MetricAcc1CIHigh] {
		t.Errorf("acc1 interval [%v, %v], BootstrapCI [%v, %v]", m1[MetricAcc1CILow], m1[MetricAcc1CIHigh], lo, hi)
	}
	m3, _ := ClassificationMetrics(ranked, targets, 6, Bootstrap{Resamples: 1000, Seed: 43})
	if reflect.DeepEqual(m1, m3) {
		t.Error("seeds 42 and 43 give identical intervals")
	}
}
