package tasks

import (
	"fmt"
	"maps"
	"slices"
)

// Overlap is a task's contamination report: which of its evaluated images
// also appear among a model's training images (eval/contamination finds
// them). Env.Overlaps hands it to Run, which copies it into the task's
// Result and, with Env.ExcludeOverlap, scores the task without them.
type Overlap struct {
	// Checked is the number of the task's images compared.
	Checked int `json:"checked"`
	// ExactFile counts images whose file is byte-identical to a training
	// image (or to the file a training sample's hash field names);
	// ExactPixels those whose decoded pixels are identical; Near those
	// whose perceptual hashes are within MaxDistance bits (resized or
	// re-encoded copies). Each image counts once, under its closest match.
	ExactFile   int `json:"exact_file"`
	ExactPixels int `json:"exact_pixels"`
	Near        int `json:"near"`
	// MaxDistance is the Hamming distance up to which perceptual hashes
	// matched; -1 when near-duplicates were not searched.
	MaxDistance int `json:"max_distance"`
	// TrainImages is the number of training images compared against.
	TrainImages int64 `json:"train_images"`
	// Matches lists every overlapping image, by example index.
	Matches []OverlapMatch `json:"matches,omitempty"`
	// Excluded is the number of overlapping images left out of Metrics
	// (Env.ExcludeOverlap), and MetricsWithOverlap the task's metrics on
	// all its images, for comparison.
	Excluded           int     `json:"excluded,omitempty"`
	MetricsWithOverlap Metrics `json:"metrics_with_overlap,omitempty"`
}

// Kinds of OverlapMatch, closest first.
const (
	MatchExactFile   = "exact_file"
	MatchExactPixels = "exact_pixels"
	MatchNear        = "near"
)

// OverlapMatch is one evaluated image found in the training data.
type OverlapMatch struct {
	// Example is the image's index in the task (see Example.Index); Key
	// its record key.
	Example int    `json:"example"`
	Key     string `json:"key"`
	// Kind is MatchExactFile, MatchExactPixels or MatchNear; Distance the
	// perceptual hashes' Hamming distance.
	Kind     string `json:"kind"`
	Distance int    `json:"distance"`
	// TrainShard and TrainKey locate the training sample.
	TrainShard string `json:"train_shard"`
	TrainKey   string `json:"train_key"`
}

// Overlapping is the number of images found in the training data.
func (o *Overlap) Overlapping() int { return o.ExactFile + o.ExactPixels + o.Near }

// clone copies the report for one result.
func (o *Overlap) clone() *Overlap {
	c := *o
	c.Matches = slices.Clone(o.Matches)
	c.MetricsWithOverlap = maps.Clone(o.MetricsWithOverlap)
	return &c
}

// drop is the set of example indices to leave out of scoring.
func (o *Overlap) drop() map[int]bool {
	out := make(map[int]bool, len(o.Matches))
	for _, m := range o.Matches {
		out[m.Example] = true
	}
	return out
}

// without returns f minus the images in drop (and, for retrieval, their
// captions); f itself is not changed.
func (f *Features) without(drop map[int]bool) *Features {
	out := &Features{Dim: f.Dim, Excluded: f.Excluded}
	if f.Labels != nil {
		out.Labels = []string{}
	}
	newIndex := make([]int, f.Len())
	for i := range f.Len() {
		newIndex[i] = -1
		if drop[i] {
			continue
		}
		newIndex[i] = out.Len()
		out.Images = append(out.Images, f.Images[i*f.Dim:(i+1)*f.Dim]...)
		if f.Labels != nil {
			out.Labels = append(out.Labels, f.Labels[i])
		}
	}
	for t, i := range f.TextImage {
		if j := newIndex[i]; j >= 0 {
			out.Texts = append(out.Texts, f.Texts[t*f.Dim:(t+1)*f.Dim]...)
			out.TextImage = append(out.TextImage, j)
		}
	}
	return out
}

// scoreTest scores a task's test features with score, leaving out the
// images Env.Overlaps lists for the task when Env.ExcludeOverlap is set (and
// then keeping the metrics on all images in the report), and copies the
// task's report into the result. It returns the features scored.
func scoreTest(t Task, env Env, f *Features, res *Result, score func(f *Features) (Metrics, *Outcomes, error)) (*Features, error) {
	ov := env.Overlaps[t.Name]
	if ov == nil {
		m, o, err := score(f)
		res.Metrics, res.Outcomes = m, o
		return f, err
	}
	res.Overlap = ov.clone()
	if !env.ExcludeOverlap || len(ov.Matches) == 0 {
		m, o, err := score(f)
		res.Metrics, res.Outcomes = m, o
		return f, err
	}
	all, _, err := score(f)
	if err != nil {
		return f, err
	}
	clean := f.without(ov.drop())
	res.Overlap.MetricsWithOverlap = all
	res.Overlap.Excluded = f.Len() - clean.Len()
	if clean.Len() == 0 {
		return clean, fmt.Errorf("every one of the %d images overlaps the training data: nothing is left to score", f.Len())
	}
	m, o, err := score(clean)
	res.Metrics, res.Outcomes = m, o
	return clean, err
}
