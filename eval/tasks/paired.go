package tasks

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// Outcomes are a result's per-example outcomes, kept in memory (not in
// results.json) so that two models' results on the same examples can be
// compared with a paired bootstrap (PairedBootstrap). Run sets them on every
// result it scores.
type Outcomes struct {
	n        int      // examples: the unit resampled
	examples [32]byte // what the examples are (their targets), so only like pairs with like
	// metric computes a metric key over the examples weighted by w (w[i]
	// copies of example i; nil: each once); ok is false for a key it does
	// not know.
	metric func(key string, w []int32) (v float64, ok bool)
}

// Len is the number of examples.
func (o *Outcomes) Len() int { return o.n }

// Metric is metric key over all examples, as a resample with each example
// once computes it; ok is false for a key this result cannot recompute.
func (o *Outcomes) Metric(key string) (float64, bool) { return o.metric(key, nil) }

// fingerprint hashes what identifies a task's examples.
func fingerprint(parts ...any) [32]byte {
	h := sha256.New()
	for _, p := range parts {
		if err := binary.Write(h, binary.LittleEndian, p); err != nil {
			fmt.Fprint(h, p)
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// ClassificationOutcomes are the outcomes of a classification: each
// example's ranked classes (best first, at least min(5, numClasses)) and
// target, as ClassificationMetrics takes them. Its metrics are acc1, acc5
// (5+ classes), mean_per_class_recall and macro_f1.
func ClassificationOutcomes(ranked [][]int, targets []int, numClasses int) *Outcomes {
	o := &classOutcomes{targets: targets, pred: make([]int, len(targets)), hit1: make([]bool, len(targets)), hit5: make([]bool, len(targets)), numClasses: numClasses}
	for i, r := range ranked {
		o.pred[i] = r[0]
		o.hit1[i] = r[0] == targets[i]
		o.hit5[i] = slices.Contains(r[:min(5, len(r))], targets[i])
	}
	return newClassOutcomes(o)
}

func newClassOutcomes(o *classOutcomes) *Outcomes {
	t32 := make([]int32, len(o.targets))
	for i, t := range o.targets {
		t32[i] = int32(t)
	}
	return &Outcomes{n: len(o.targets), examples: fingerprint(int64(o.numClasses), t32),
		metric: func(key string, w []int32) (float64, bool) {
			s := slices.Index(classificationMetrics, key)
			if s < 0 || (key == MetricAcc5 && o.numClasses < 5) {
				return 0, false
			}
			tally := o.newTally()
			for i := range o.targets {
				wt := 1
				if w != nil {
					wt = int(w[i])
				}
				if wt > 0 {
					tally.add(o, i, wt)
				}
			}
			return tally.stats()[s], true
		}}
}

func newRetrievalOutcomes(o *retrievalOutcomes, ks []int) *Outcomes {
	ti := make([]int32, len(o.textImage))
	for i, v := range o.textImage {
		ti[i] = int32(v)
	}
	return &Outcomes{n: len(o.imageRank), examples: fingerprint(int64(len(o.imageRank)), ti),
		metric: func(key string, w []int32) (float64, bool) {
			m, err := o.metrics(ks, w)
			v, ok := m[key]
			return v, err == nil && ok
		}}
}

func newMultiLabelOutcomes(ranked []rankedClass, targets []bool, classes []string) *Outcomes {
	n := len(targets) / max(len(classes), 1)
	return &Outcomes{n: n, examples: fingerprint(int64(len(classes)), targets),
		metric: func(key string, w []int32) (float64, bool) {
			if k := slices.IndexFunc(classes, func(c string) bool { return key == ClassAPKey(c) || key == ClassAUROCKey(c) }); k >= 0 {
				ap, auc := ranked[k].apAUROC(w)
				if strings.HasPrefix(key, metricClassAP) {
					return ap, true
				}
				return auc, true
			}
			if key != MetricMeanAveragePrecision && key != MetricMeanAUROC {
				return 0, false
			}
			var sum float64
			var count int
			for _, r := range ranked {
				ap, auc := r.apAUROC(w)
				if key == MetricMeanAUROC {
					ap = auc
				}
				if !math.IsNaN(ap) {
					sum += ap
					count++
				}
			}
			return sum / float64(count), true // NaN when no class is defined in the resample
		}}
}

// PairedDiff is a paired bootstrap comparison of a model with a reference
// on the same examples: Difference = model − reference of Metric, with the
// percentile interval of the difference over resamples that draw the same
// examples for both.
type PairedDiff struct {
	// Reference labels the model compared against.
	Reference string `json:"reference"`
	// Metric is the metric compared (the task's headline; for means, the
	// mean of the tasks' headlines).
	Metric string `json:"metric"`
	// Difference is model − reference on all examples.
	Difference float64 `json:"difference"`
	// Low and High bound the Level interval of the difference.
	Low  float64 `json:"ci_low"`
	High float64 `json:"ci_high"`
	// Level and Resamples are the bootstrap's.
	Level     float64 `json:"level"`
	Resamples int     `json:"resamples"`
	// Significant is set when the interval excludes zero.
	Significant bool `json:"significant"`
	// Tasks is the number of tasks averaged (for means).
	Tasks int `json:"tasks,omitempty"`
}

// PairedPair is one task's two results to compare (Model against
// Reference), with the metric to compare them on.
type PairedPair struct {
	Task             string
	Metric           string
	Model, Reference *Outcomes
}

// PairedBootstrap compares two models on the same examples of one task: it
// resamples the examples b.Resamples times (seeded by b.Seed and the task's
// name, so each task draws its own examples and adding a task changes no
// other's draws), computes the metric for both models on each resample, and
// returns the interval of the difference. It is PairedMean of one task.
func PairedBootstrap(p PairedPair, b Bootstrap) (*PairedDiff, error) {
	d, err := PairedMean([]PairedPair{p}, b)
	if err != nil {
		return nil, err
	}
	d.Tasks = 0
	return d, nil
}

// PairedMean compares two models on the mean of several tasks' metrics: each
// resample draws every task's examples as PairedBootstrap does (the same
// draws), and the statistic is the mean over the tasks of the model's minus
// the reference's metric. Resamples in which a metric is undefined (a
// multi-label class without positives in every class) are left out.
func PairedMean(pairs []PairedPair, b Bootstrap) (*PairedDiff, error) {
	b = b.withDefaults()
	if len(pairs) == 0 {
		return nil, fmt.Errorf("paired bootstrap: no tasks")
	}
	diff := 0.0
	for _, p := range pairs {
		if p.Model == nil || p.Reference == nil {
			return nil, fmt.Errorf("paired bootstrap: task %q: no per-example outcomes (results read back from a file cannot be paired)", p.Task)
		}
		if p.Model.n != p.Reference.n || p.Model.examples != p.Reference.examples {
			return nil, fmt.Errorf("paired bootstrap: task %q: the models were scored on different examples (%d and %d, or other labels)", p.Task, p.Model.n, p.Reference.n)
		}
		vm, ok1 := p.Model.metric(p.Metric, nil)
		vr, ok2 := p.Reference.metric(p.Metric, nil)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("paired bootstrap: task %q: metric %q cannot be recomputed per resample", p.Task, p.Metric)
		}
		diff += vm - vr
	}
	diff /= float64(len(pairs))
	streams := make([]uint64, len(pairs))
	for j, p := range pairs {
		h := fnv.New64a()
		h.Write([]byte(p.Task))
		streams[j] = h.Sum64()
	}
	stats := make([]float64, b.Resamples)
	workers := min(runtime.GOMAXPROCS(0), b.Resamples)
	var wg sync.WaitGroup
	for wk := range workers {
		wg.Go(func() {
			weights := make([][]int32, len(pairs))
			for j, p := range pairs {
				weights[j] = make([]int32, p.Model.n)
			}
			for r := wk; r < b.Resamples; r += workers {
				sum := 0.0
				for j, p := range pairs {
					w := weights[j]
					clear(w)
					src := rand.NewPCG(b.Seed^streams[j], 0x626d63615f706169^uint64(r)) // "bmca_pai"
					for range w {
						w[uniformIndex(src, uint64(len(w)))]++
					}
					vm, _ := p.Model.metric(p.Metric, w)
					vr, _ := p.Reference.metric(p.Metric, w)
					sum += vm - vr
				}
				stats[r] = sum / float64(len(pairs))
			}
		})
	}
	wg.Wait()
	low, high := nanInterval(stats, b.Level)
	metric := pairs[0].Metric
	if len(pairs) > 1 {
		metric = "mean headline"
	}
	return &PairedDiff{Metric: metric, Difference: diff, Low: low, High: high, Level: b.Level, Resamples: b.Resamples,
		Significant: low > 0 || high < 0, Tasks: len(pairs)}, nil
}
