package tasks

import (
	"math"
	"strings"
	"testing"
)

// outcomesOf builds a classification result's outcomes from which examples
// it got right (two classes; every target 0, a miss predicts 1).
func outcomesOf(correct []bool) *Outcomes {
	o := &classOutcomes{targets: make([]int, len(correct)), pred: make([]int, len(correct)),
		hit1: correct, hit5: make([]bool, len(correct)), numClasses: 2}
	for i, c := range correct {
		if !c {
			o.pred[i] = 1
		}
		o.hit5[i] = true
	}
	return newClassOutcomes(o)
}

func rightOn(n int, which func(i int) bool) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = which(i)
	}
	return out
}

// TestPairedBootstrap compares constructed per-example outcomes whose
// answer is known.
func TestPairedBootstrap(t *testing.T) {
	const n = 60
	half := rightOn(n, func(i int) bool { return i < 30 })
	pair := func(model, ref []bool) PairedPair {
		return PairedPair{Task: "t", Metric: MetricAcc1, Model: outcomesOf(model), Reference: outcomesOf(ref)}
	}
	b := Bootstrap{Resamples: 2000, Seed: 7}

	// The same outcomes: difference 0 in every resample.
	d, err := PairedBootstrap(pair(half, half), b)
	if err != nil {
		t.Fatal(err)
	}
	if d.Difference != 0 || d.Low != 0 || d.High != 0 || d.Significant {
		t.Errorf("identical models: %+v", d)
	}
	// All right against all wrong: +1 in every resample.
	d, _ = PairedBootstrap(pair(rightOn(n, func(int) bool { return true }), rightOn(n, func(int) bool { return false })), b)
	if d.Difference != 1 || d.Low != 1 || d.High != 1 || !d.Significant {
		t.Errorf("all against none: %+v", d)
	}
	// B is A plus 6 more examples right: per-example gains d_i ∈ {0, 1}
	// with mean 0.1, so the resampled difference is a mean of 60 draws from
	// them: about N(0.1, 0.1·0.9/60), interval ≈ [0.024, 0.176]: significant,
	// though each model's own 95% interval (±0.13) overlaps the other's.
	better := rightOn(n, func(i int) bool { return i < 36 })
	d, _ = PairedBootstrap(pair(better, half), b)
	if math.Abs(d.Difference-0.1) > 1e-12 || !(d.Low > 0.01 && d.Low < 0.05) || !(d.High > 0.15 && d.High < 0.2) || !d.Significant {
		t.Errorf("6 gains in 60: %+v, want 0.1 in about [0.024, 0.176]", d)
	}
	if d.Level != 0.95 || d.Resamples != 2000 || d.Metric != MetricAcc1 {
		t.Errorf("interval settings %+v", d)
	}
	// The reverse comparison mirrors it.
	r, _ := PairedBootstrap(pair(half, better), b)
	if r.Difference != -d.Difference || r.Low != -d.High || r.High != -d.Low {
		t.Errorf("reversed %+v, want the mirror of %+v", r, d)
	}
	// 5 gains and 5 losses: difference 0, interval around it.
	swapped := rightOn(n, func(i int) bool { return i >= 5 && i < 35 })
	d, _ = PairedBootstrap(pair(swapped, half), b)
	if d.Difference != 0 || !(d.Low < 0 && d.High > 0) || d.Significant {
		t.Errorf("5 gains, 5 losses: %+v", d)
	}
	// Seeded: same seed, same interval; another seed, another.
	again, _ := PairedBootstrap(pair(swapped, half), b)
	other, _ := PairedBootstrap(pair(swapped, half), Bootstrap{Resamples: 2000, Seed: 8})
	if *again != *d || (other.Low == d.Low && other.High == d.High) {
		t.Errorf("seeding: %+v, %+v, %+v", d, again, other)
	}

	// The mean of two tasks: +0.1 and 0 average to +0.05, with an interval
	// about half as wide as the first task's alone.
	first := pair(better, half)
	second := PairedPair{Task: "u", Metric: MetricAcc1, Model: outcomesOf(half), Reference: outcomesOf(half)}
	alone, _ := PairedBootstrap(first, b)
	mean, err := PairedMean([]PairedPair{first, second}, b)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(mean.Difference-0.05) > 1e-12 || mean.Tasks != 2 || math.Abs((mean.High-mean.Low)-(alone.High-alone.Low)/2) > 1e-9 {
		t.Errorf("mean %+v; alone %+v", mean, alone)
	}

	// Results on other examples do not pair.
	mismatched := first
	mismatched.Model = outcomesOf(rightOn(n+1, func(int) bool { return true }))
	if _, err := PairedBootstrap(mismatched, b); err == nil || !strings.Contains(err.Error(), "different examples") {
		t.Errorf("different example counts: %v", err)
	}
	mismatched.Model = newClassOutcomes(&classOutcomes{targets: make([]int, n), pred: make([]int, n), hit1: half, hit5: half, numClasses: 3})
	if _, err := PairedBootstrap(mismatched, b); err == nil {
		t.Error("different class counts paired")
	}
	if _, err := PairedBootstrap(PairedPair{Task: "x", Metric: "acc1"}, b); err == nil || !strings.Contains(err.Error(), "no per-example outcomes") {
		t.Errorf("no outcomes: %v", err)
	}
	unknown := first
	unknown.Metric = "acc1_ci_low"
	if _, err := PairedBootstrap(unknown, b); err == nil {
		t.Error("a CI bound compared")
	}
}
