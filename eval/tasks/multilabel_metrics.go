package tasks

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
)

// Multi-label metric keys. mean_average_precision is CLIP_benchmark's key;
// the per-class keys are "<metric>/<class name>".
const (
	MetricMeanAveragePrecision = "mean_average_precision"
	MetricMeanAUROC            = "mean_auroc"
	metricClassAP              = "average_precision/"
	metricClassAUROC           = "auroc/"
)

// multiLabelMetricKeys are the metrics MultiLabelMetrics reports with a
// bootstrap interval.
var multiLabelMetricKeys = []string{MetricMeanAveragePrecision, MetricMeanAUROC}

// ClassAPKey names a multi-label task's average precision of one class
// ("average_precision/cardiomegaly").
func ClassAPKey(class string) string { return metricClassAP + class }

// ClassAUROCKey names a multi-label task's ROC AUC of one class
// ("auroc/cardiomegaly").
func ClassAUROCKey(class string) string { return metricClassAUROC + class }

// rankedClass is one class's examples sorted by score, best first, with
// whether each is a positive and where runs of equal scores end: the
// thresholds of a precision–recall or ROC curve. Laid out for the bootstrap's
// inner loop, which visits every example of every class per resample.
type rankedClass struct {
	order []int32 // example indices, score descending (ties by index)
	pos   []bool  // pos[p]: order[p] is a positive
	last  []bool  // last[p]: order[p] ends a run of equal scores
}

// rankClass ranks class k of scores [n, c] with targets [n, c].
func rankClass(scores []float32, targets []bool, n, c, k int) rankedClass {
	r := rankedClass{order: make([]int32, n), pos: make([]bool, n), last: make([]bool, n)}
	for i := range r.order {
		r.order[i] = int32(i)
	}
	score := func(i int32) float32 { return scores[int(i)*c+k] }
	slices.SortStableFunc(r.order, func(a, b int32) int { return cmp.Compare(score(b), score(a)) })
	for p, i := range r.order {
		r.pos[p] = targets[int(i)*c+k]
		r.last[p] = p == n-1 || score(r.order[p+1]) != score(i)
	}
	return r
}

// apAUROC returns the class's average precision and ROC AUC over examples
// weighted by w (w[i] copies of example i; nil means 1 each). AP is
// sklearn's average_precision_score: Σ_n (R_n − R_{n−1})·P_n over the
// thresholds (distinct scores), best first; AUROC is sklearn's
// roc_auc_score, the probability that a positive outscores a negative with
// ties counting half. AP is NaN without a positive, AUROC without a positive
// or a negative. Counts are exact integers, so the result does not depend on
// summation order.
func (r rankedClass) apAUROC(w []int32) (ap, auroc float64) {
	var tp, fp, gp, gn int64
	var apSum, aucSum float64
	for p, i := range r.order {
		wt := int64(1)
		if w != nil {
			wt = int64(w[i])
		}
		if r.pos[p] {
			gp += wt
		} else {
			gn += wt
		}
		if !r.last[p] {
			continue
		}
		aucSum += float64(gn) * (float64(tp) + float64(gp)/2) // pairs with the positives above, ties at half
		tp += gp
		fp += gn
		if gp > 0 {
			apSum += float64(gp) * float64(tp) / float64(tp+fp)
		}
		gp, gn = 0, 0
	}
	ap, auroc = math.NaN(), math.NaN()
	if tp > 0 {
		ap = apSum / float64(tp)
		if fp > 0 {
			auroc = aucSum / (float64(tp) * float64(fp))
		}
	}
	return ap, auroc
}

// AveragePrecision is sklearn's average_precision_score for one class:
// scores and whether each example is a positive. NaN without positives.
func AveragePrecision(scores []float32, positive []bool) float64 {
	ap, _ := rankClass(scores, positive, len(scores), 1, 0).apAUROC(nil)
	return ap
}

// AUROC is sklearn's roc_auc_score for one class. NaN unless there are both
// positives and negatives.
func AUROC(scores []float32, positive []bool) float64 {
	_, auc := rankClass(scores, positive, len(scores), 1, 0).apAUROC(nil)
	return auc
}

// MultiLabelMetrics scores a multi-label task from scores [n, c] (row-major;
// any monotone score per class, such as the zero-shot logits) and targets
// [n, c] (true where class k applies to example i): per class its average
// precision and AUROC ("average_precision/<class>", "auroc/<class>"), their
// means over the classes ("mean_average_precision", "mean_auroc"), and a
// percentile bootstrap interval of each mean (see BootstrapCI: the same
// resampled examples for both).
//
// CLIP_benchmark ranks each class's images by its logit and averages AP over
// the classes in the same way. Two differences: tied scores form one
// threshold here (as in sklearn) where CLIP_benchmark's order among ties is
// torch.sort's; and a class without positives (or, for AUROC, without
// negatives) has no defined value, so it is left out of the mean (in a
// bootstrap resample too) rather than counted as 0. The returned count is
// how many classes entered each mean (AP, AUROC).
func MultiLabelMetrics(scores []float32, targets []bool, classes []string, b Bootstrap) (Metrics, [2]int, error) {
	m, counts, _, err := multiLabelMetrics(scores, targets, classes, b)
	return m, counts, err
}

// multiLabelMetrics is MultiLabelMetrics, also returning the ranked classes.
func multiLabelMetrics(scores []float32, targets []bool, classes []string, b Bootstrap) (Metrics, [2]int, []rankedClass, error) {
	b = b.withDefaults()
	c := len(classes)
	if c == 0 || len(scores) == 0 || len(scores)%c != 0 || len(targets) != len(scores) {
		return nil, [2]int{}, nil, fmt.Errorf("multi-label metrics: %d scores and %d targets for %d classes", len(scores), len(targets), c)
	}
	n := len(scores) / c
	ranked := make([]rankedClass, c)
	var wg sync.WaitGroup
	for k := range c {
		wg.Go(func() { ranked[k] = rankClass(scores, targets, n, c, k) })
	}
	wg.Wait()
	means := func(w []int32, perClass func(k int, ap, auc float64)) (mAP, mAUC float64, counts [2]int) {
		var sumAP, sumAUC float64
		for k := range c {
			ap, auc := ranked[k].apAUROC(w)
			if perClass != nil {
				perClass(k, ap, auc)
			}
			if !math.IsNaN(ap) {
				sumAP += ap
				counts[0]++
			}
			if !math.IsNaN(auc) {
				sumAUC += auc
				counts[1]++
			}
		}
		return sumAP / float64(counts[0]), sumAUC / float64(counts[1]), counts
	}
	m := Metrics{}
	mAP, mAUC, counts := means(nil, func(k int, ap, auc float64) {
		m[ClassAPKey(classes[k])], m[ClassAUROCKey(classes[k])] = ap, auc
	})
	if counts[0] == 0 {
		return nil, counts, nil, fmt.Errorf("multi-label metrics: no class has a positive example among %d", n)
	}
	m[MetricMeanAveragePrecision] = mAP
	if counts[1] > 0 {
		m[MetricMeanAUROC] = mAUC
	}
	maps.DeleteFunc(m, func(_ string, v float64) bool { return math.IsNaN(v) }) // absent beats null in the JSON
	// The pool holds pointers, so that Put does not allocate.
	pool := sync.Pool{New: func() any { w := make([]int32, n); return &w }}
	stats := bootstrap(n, b, 2, func(idx []int, out []float64) {
		wp := pool.Get().(*[]int32)
		w := *wp
		clear(w)
		for _, i := range idx {
			w[i]++
		}
		out[0], out[1], _ = means(w, nil)
		pool.Put(wp)
	})
	for s, name := range multiLabelMetricKeys {
		if _, ok := m[name]; !ok {
			continue
		}
		low, high := CIKeys(name)
		m[low], m[high] = nanInterval(stats[s], b.Level)
	}
	return m, counts, ranked, nil
}

// nanInterval is interval over the resamples whose statistic is defined (a
// resample may hold no positive of any class); NaN, NaN if none is.
func nanInterval(values []float64, level float64) (low, high float64) {
	kept := slices.DeleteFunc(slices.Clone(values), math.IsNaN)
	if len(kept) == 0 {
		return math.NaN(), math.NaN()
	}
	return interval(kept, level)
}
