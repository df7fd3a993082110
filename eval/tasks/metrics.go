package tasks

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
)

// Metric keys, as CLIP_benchmark names them where it has the metric.
const (
	MetricAcc1                 = "acc1"
	MetricAcc5                 = "acc5" // absent with fewer than 5 classes (CLIP_benchmark: NaN)
	MetricMeanPerClassRecall   = "mean_per_class_recall"
	MetricMacroF1              = "macro_f1"
	MetricAcc1CILow            = "acc1_ci_low"
	MetricAcc1CIHigh           = "acc1_ci_high"
	metricImageRetrievalRecall = "image_retrieval_recall@%d"
	metricTextRetrievalRecall  = "text_retrieval_recall@%d"
	// MetricMeanRecall is bmca's own retrieval summary (CLIP_benchmark has
	// none): the mean of every recall@k reported, both directions.
	MetricMeanRecall = "mean_recall"
)

// classificationMetrics are the metrics ClassificationMetrics reports, each
// with a bootstrap interval.
var classificationMetrics = []string{MetricAcc1, MetricAcc5, MetricMeanPerClassRecall, MetricMacroF1}

// CIKeys names the bounds of a metric's bootstrap interval: "<metric>_ci_low"
// and "<metric>_ci_high".
func CIKeys(metric string) (low, high string) { return metric + "_ci_low", metric + "_ci_high" }

// ImageRetrievalRecallKey names text→image recall@k: for each caption, is its
// image among the k images scored highest.
func ImageRetrievalRecallKey(k int) string { return fmt.Sprintf(metricImageRetrievalRecall, k) }

// TextRetrievalRecallKey names image→text recall@k: for each image, is at
// least one of its captions among the k captions scored highest.
func TextRetrievalRecallKey(k int) string { return fmt.Sprintf(metricTextRetrievalRecall, k) }

// Metrics maps metric keys to values, all fractions in [0, 1]. Metrics that
// do not apply are absent rather than NaN; should a non-finite value get in,
// it is written to JSON as null.
type Metrics map[string]float64

// MarshalJSON writes the metrics with sorted keys, non-finite values as null.
func (m Metrics) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			out[k] = nil
		} else {
			out[k] = v
		}
	}
	return json.Marshal(out)
}

// TopK returns the indices of the k largest values of row, largest first;
// equal values rank by lower index (torch.argmax's choice for top-1). k is
// clamped to len(row).
func TopK(row []float32, k int) []int {
	k = min(k, len(row))
	idx := make([]int, len(row))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(row[b], row[a]) })
	return idx[:k:k]
}

// TopKAccuracy is the fraction of examples whose target is among the first k
// entries of ranked[i] (class indices, best first; CLIP_benchmark's
// accuracy(logits, target, topk=(k,))). It is NaN when there are no examples.
func TopKAccuracy(ranked [][]int, targets []int, k int) float64 {
	if len(targets) == 0 {
		return math.NaN()
	}
	hits := 0
	for i, t := range targets {
		if slices.Contains(ranked[i][:min(k, len(ranked[i]))], t) {
			hits++
		}
	}
	return float64(hits) / float64(len(targets))
}

// BalancedAccuracy is the mean over the classes present in targets of the
// recall pred==target — sklearn's balanced_accuracy_score, which
// CLIP_benchmark reports as mean_per_class_recall. Classes only predicted,
// never true, do not count. NaN when there are no examples.
func BalancedAccuracy(pred, targets []int) float64 {
	if len(targets) == 0 {
		return math.NaN()
	}
	support := map[int]int{}
	correct := map[int]int{}
	for i, t := range targets {
		support[t]++
		if pred[i] == t {
			correct[t]++
		}
	}
	sum := 0.0 // in class order: a map's order would change the last bits
	for _, c := range slices.Sorted(maps.Keys(support)) {
		sum += float64(correct[c]) / float64(support[c])
	}
	return sum / float64(len(support))
}

// MacroF1 is the unweighted mean of per-class F1 = 2·TP / (2·TP + FP + FN)
// over the classes that occur in targets or pred — sklearn's
// f1_score(average="macro") with zero_division=0. NaN when there are no
// examples.
func MacroF1(pred, targets []int) float64 {
	if len(targets) == 0 {
		return math.NaN()
	}
	tp, fp, fn := map[int]int{}, map[int]int{}, map[int]int{}
	labels := map[int]bool{}
	for i, t := range targets {
		p := pred[i]
		labels[t], labels[p] = true, true
		if p == t {
			tp[t]++
		} else {
			fp[p]++
			fn[t]++
		}
	}
	sum := 0.0
	for _, c := range slices.Sorted(maps.Keys(labels)) {
		if d := 2*tp[c] + fp[c] + fn[c]; d > 0 {
			sum += 2 * float64(tp[c]) / float64(d)
		}
	}
	return sum / float64(len(labels))
}

// Bootstrap configures the confidence intervals of classification metrics.
// Zero fields take the defaults (1000 resamples, level 0.95, seed 0).
type Bootstrap struct {
	Resamples int     // number of resamples of the examples, with replacement
	Level     float64 // central coverage, e.g. 0.95
	Seed      uint64  // seeds the PCG generators; same seed, same interval
}

func (b Bootstrap) withDefaults() Bootstrap {
	if b.Resamples <= 0 {
		b.Resamples = 1000
	}
	if b.Level <= 0 || b.Level >= 1 {
		b.Level = 0.95
	}
	return b
}

// BootstrapCI returns the percentile bootstrap interval of the mean of
// correct: b.Resamples times, draw len(correct) examples with replacement
// and take the fraction correct; the bounds are the (1-Level)/2 and
// (1+Level)/2 quantiles of those fractions, interpolated linearly as
// numpy.percentile does. Deterministic for a given seed. NaN, NaN for no
// examples.
func BootstrapCI(correct []bool, b Bootstrap) (low, high float64) {
	b = b.withDefaults()
	if len(correct) == 0 {
		return math.NaN(), math.NaN()
	}
	stats := bootstrap(len(correct), b, 1, func(idx []int, out []float64) {
		hits := 0
		for _, i := range idx {
			if correct[i] {
				hits++
			}
		}
		out[0] = float64(hits) / float64(len(idx))
	})
	return interval(stats[0], b.Level)
}

// bootstrap draws b.Resamples resamples of n indices with replacement and
// calls stat on each, which fills one value per statistic into out. It
// returns the values, [statistic][resample]. Resample r draws from its own
// PCG stream (Seed, r), so the result does not depend on how many goroutines
// share the work; stat is called concurrently and must only write out.
func bootstrap(n int, b Bootstrap, numStats int, stat func(idx []int, out []float64)) [][]float64 {
	stats := make([][]float64, numStats)
	for i := range stats {
		stats[i] = make([]float64, b.Resamples)
	}
	workers := min(runtime.GOMAXPROCS(0), b.Resamples)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			idx := make([]int, n)
			out := make([]float64, numStats)
			for r := w; r < b.Resamples; r += workers {
				src := rand.NewPCG(b.Seed, 0x626d63615f627374^uint64(r)) // "bmca_bst"
				for i := range idx {
					idx[i] = int(uniformIndex(src, uint64(n)))
				}
				stat(idx, out)
				for s, v := range out {
					stats[s][r] = v
				}
			}
		})
	}
	wg.Wait()
	return stats
}

// interval sorts the resampled values and returns the central quantiles.
func interval(values []float64, level float64) (low, high float64) {
	slices.Sort(values)
	alpha := (1 - level) / 2
	return percentile(values, alpha), percentile(values, 1-alpha)
}

// uniformIndex draws uniformly from [0, n) with Lemire's multiply-and-reject
// method, written out so results do not depend on math/rand's helpers.
func uniformIndex(src *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		threshold := -n % n
		for lo < threshold {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}

// percentile interpolates linearly between the sorted values (numpy's
// default method).
func percentile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(math.Floor(pos))
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(i)
	return sorted[i] + frac*(sorted[i+1]-sorted[i])
}

// ClassificationMetrics computes acc1, acc5 (only with at least 5 classes,
// as CLIP_benchmark), mean_per_class_recall and macro_f1 from each
// example's ranked classes (best first, at least min(5, numClasses) of them)
// and its target, with a percentile bootstrap interval for each
// ("<metric>_ci_low", "<metric>_ci_high"; see BootstrapCI). All metrics of a
// resample are computed from the same drawn examples.
func ClassificationMetrics(ranked [][]int, targets []int, numClasses int, b Bootstrap) (Metrics, error) {
	b = b.withDefaults()
	if len(ranked) != len(targets) {
		return nil, fmt.Errorf("classification metrics: %d rankings for %d targets", len(ranked), len(targets))
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("classification metrics: no examples")
	}
	pred := make([]int, len(targets))
	hit1 := make([]bool, len(targets))
	hit5 := make([]bool, len(targets))
	for i, r := range ranked {
		if len(r) < min(5, numClasses) {
			return nil, fmt.Errorf("classification metrics: example %d ranks %d classes, want %d", i, len(r), min(5, numClasses))
		}
		if t := targets[i]; t < 0 || t >= numClasses || r[0] < 0 || r[0] >= numClasses {
			return nil, fmt.Errorf("classification metrics: example %d: target %d or prediction %d outside the %d classes", i, t, r[0], numClasses)
		}
		pred[i] = r[0]
		hit1[i] = r[0] == targets[i]
		hit5[i] = slices.Contains(r[:min(5, len(r))], targets[i])
	}
	m := Metrics{
		MetricAcc1:               TopKAccuracy(ranked, targets, 1),
		MetricMeanPerClassRecall: BalancedAccuracy(pred, targets),
		MetricMacroF1:            MacroF1(pred, targets),
	}
	if numClasses >= 5 {
		m[MetricAcc5] = TopKAccuracy(ranked, targets, 5)
	}
	names := classificationMetrics
	o := &classOutcomes{targets: targets, pred: pred, hit1: hit1, hit5: hit5, numClasses: numClasses}
	stats := bootstrap(len(targets), b, len(names), func(idx []int, out []float64) {
		tally := o.newTally() // a few classes: allocation is cheap next to the draws
		for _, i := range idx {
			tally.add(o, i, 1)
		}
		copy(out, tally.stats())
	})
	for s, name := range names {
		if _, ok := m[name]; !ok {
			continue
		}
		low, high := CIKeys(name)
		m[low], m[high] = interval(stats[s], b.Level)
	}
	return m, nil
}

// classOutcomes are each example's classification outcome: what a metric
// over any resample of the examples needs.
type classOutcomes struct {
	targets, pred []int
	hit1, hit5    []bool
	numClasses    int
}

// classTally counts outcomes of a (weighted) set of examples.
type classTally struct {
	support, predicted, correct []int
	h1, h5, n                   int
}

func (o *classOutcomes) newTally() *classTally {
	return &classTally{support: make([]int, o.numClasses), predicted: make([]int, o.numClasses), correct: make([]int, o.numClasses)}
}

// add counts example i w times.
func (c *classTally) add(o *classOutcomes, i, w int) {
	t, p := o.targets[i], o.pred[i]
	c.support[t] += w
	c.predicted[p] += w
	c.n += w
	if o.hit1[i] {
		c.correct[t] += w
		c.h1 += w
	}
	if o.hit5[i] {
		c.h5 += w
	}
}

// stats are the tally's metrics in classificationMetrics order: acc1, acc5,
// balanced accuracy and macro-F1, the last two over the classes present
// (as BalancedAccuracy and MacroF1 define them).
func (c *classTally) stats() []float64 {
	n := float64(c.n)
	var recall, f1 float64
	var present, labels int
	for k := range c.support {
		if c.support[k] > 0 {
			present++
			recall += float64(c.correct[k]) / float64(c.support[k])
		}
		if d := c.support[k] + c.predicted[k]; d > 0 {
			labels++
			f1 += 2 * float64(c.correct[k]) / float64(d)
		}
	}
	return []float64{float64(c.h1) / n, float64(c.h5) / n, recall / float64(present), f1 / float64(labels)}
}

// RetrievalRecall computes CLIP_benchmark's zero-shot retrieval recalls, and
// their mean as mean_recall.
// images [numImages, dim] and texts [numTexts, dim] are features (Run passes
// them L2-normalised); the score of a pair is their dot product;
// textImage[t] is the image caption t describes, so an image may have many
// captions, or none. For each k:
//
//   - image_retrieval_recall@k: the fraction of captions whose image is among
//     the k images scored highest for the caption;
//   - text_retrieval_recall@k: the fraction of images with at least one of
//     their captions among the k captions scored highest for the image (an
//     image without captions counts as a miss, as in CLIP_benchmark).
//
// Equal scores rank by lower index. A k at least as large as the candidate
// count is always a hit (torch.topk would refuse it).
func RetrievalRecall(images, texts []float32, dim int, textImage []int, ks []int) (Metrics, error) {
	ranks, err := retrievalRanks(images, texts, dim, textImage)
	if err != nil {
		return nil, err
	}
	return ranks.metrics(ks, nil)
}

// retrievalOutcomes are the ranks of every query of a retrieval task: what
// recall@k over any resample of the images needs.
type retrievalOutcomes struct {
	textImage []int // caption → image
	textRank  []int // per caption: images ranked before its own
	imageRank []int // per image: captions ranked before its best one
	hasText   []bool
}

// metrics computes the recalls with image i counted w[i] times (its
// captions with it); nil w counts each once.
func (o *retrievalOutcomes) metrics(ks []int, w []int32) (Metrics, error) {
	weight := func(i int) float64 {
		if w == nil {
			return 1
		}
		return float64(w[i])
	}
	m := Metrics{}
	for _, k := range ks {
		if k < 1 {
			return nil, fmt.Errorf("retrieval recall: k=%d must be at least 1", k)
		}
		var hits, total float64
		for t, r := range o.textRank {
			wt := weight(o.textImage[t])
			total += wt
			if r < k {
				hits += wt
			}
		}
		m[ImageRetrievalRecallKey(k)] = hits / total
		hits, total = 0, 0
		for i, r := range o.imageRank {
			wt := weight(i)
			total += wt
			if o.hasText[i] && r < k {
				hits += wt
			}
		}
		m[TextRetrievalRecallKey(k)] = hits / total
	}
	sum := 0.0 // in k order: a map's order would change the last bits
	for _, k := range ks {
		sum += m[ImageRetrievalRecallKey(k)] + m[TextRetrievalRecallKey(k)]
	}
	m[MetricMeanRecall] = sum / float64(2*len(ks))
	return m, nil
}

// retrievalRanks ranks every caption's image and every image's best caption
// (see RetrievalRecall).
func retrievalRanks(images, texts []float32, dim int, textImage []int) (*retrievalOutcomes, error) {
	if dim < 1 || len(images)%dim != 0 || len(texts)%dim != 0 {
		return nil, fmt.Errorf("retrieval recall: features of %d and %d values do not split into rows of %d", len(images), len(texts), dim)
	}
	ni, nt := len(images)/dim, len(texts)/dim
	if ni == 0 || nt == 0 {
		return nil, fmt.Errorf("retrieval recall: %d images and %d captions; need at least one of each", ni, nt)
	}
	if len(textImage) != nt {
		return nil, fmt.Errorf("retrieval recall: %d caption→image indices for %d captions", len(textImage), nt)
	}
	for t, i := range textImage {
		if i < 0 || i >= ni {
			return nil, fmt.Errorf("retrieval recall: caption %d points at image %d of %d", t, i, ni)
		}
	}
	score := func(t, i int) float64 { return dot(texts[t*dim:(t+1)*dim], images[i*dim:(i+1)*dim]) }

	// The positive each rank is measured from: a caption's own image, and an
	// image's best caption (the one that comes first in a stable descending
	// sort, so "any caption in the top k" ⇔ "the best caption in the top k").
	posScore := make([]float64, nt)
	bestText := make([]int, ni)
	bestScore := make([]float64, ni)
	for i := range bestText {
		bestText[i] = -1
	}
	for t, i := range textImage {
		s := score(t, i)
		posScore[t] = s
		if bestText[i] < 0 || s > bestScore[i] {
			bestText[i], bestScore[i] = t, s
		}
	}

	// rank = number of candidates sorted before the positive.
	textRank := make([]int, nt)  // images ranked before caption t's image
	imageRank := make([]int, ni) // captions ranked before image i's best caption
	workers := min(runtime.GOMAXPROCS(0), nt)
	var wg sync.WaitGroup
	partial := make([][]int, workers)
	for w := range workers {
		partial[w] = make([]int, ni)
		wg.Go(func() {
			for t := w; t < nt; t += workers {
				pt, ps := textImage[t], posScore[t]
				for i := range ni {
					s := score(t, i)
					if s > ps || (s == ps && i < pt) {
						textRank[t]++
					}
					if b := bestText[i]; b >= 0 && (s > bestScore[i] || (s == bestScore[i] && t < b)) {
						partial[w][i]++
					}
				}
			}
		})
	}
	wg.Wait()
	for _, p := range partial {
		for i, c := range p {
			imageRank[i] += c
		}
	}

	hasText := make([]bool, ni)
	for i, b := range bestText {
		hasText[i] = b >= 0
	}
	return &retrievalOutcomes{textImage: textImage, textRank: textRank, imageRank: imageRank, hasText: hasText}, nil
}

// dot accumulates in float64 with four independent sums (the same order
// for every pair, so equal inputs give equal scores).
func dot(a, b []float32) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += float64(a[i]) * float64(b[i])
		s1 += float64(a[i+1]) * float64(b[i+1])
		s2 += float64(a[i+2]) * float64(b[i+2])
		s3 += float64(a[i+3]) * float64(b[i+3])
	}
	for ; i < len(a); i++ {
		s0 += float64(a[i]) * float64(b[i])
	}
	return (s0 + s1) + (s2 + s3)
}
