package tasks

import (
	"context"
	"fmt"
	"slices"

	"github.com/bmca/bmca/eval/probe"
)

// ProbeResult describes a linear probe's fit (see eval/probe).
type ProbeResult struct {
	// L2 is the strength chosen on the validation split.
	L2 float64 `json:"l2"`
	// Sweep lists the strengths tried and their validation accuracy.
	Sweep probe.Sweep `json:"sweep"`
	// TrainExamples and ValExamples are the split sizes the strength was
	// chosen with; the final model is fitted on both.
	TrainExamples int `json:"train_examples"`
	ValExamples   int `json:"val_examples"`
	// Iterations are the final fit's L-BFGS iterations.
	Iterations int `json:"iterations"`
}

// runProbe fits a logistic regression on the training split's L2-normalised
// image features (choosing the L2 strength on the validation split) and
// scores the test split with the classification metrics.
func runProbe(ctx context.Context, t Task, env Env, res *Result) (string, error) {
	check := labelCheck(t)
	train, reason, err := splitFeatures(ctx, t, env, split{"train", t.Name + "/train", t.TrainData}, check, res)
	if err != nil || reason != "" {
		return reason, err
	}
	var val *Features
	if len(t.ValData) > 0 {
		if val, reason, err = splitFeatures(ctx, t, env, split{"val", t.Name + "/val", t.ValData}, check, res); err != nil || reason != "" {
			return reason, err
		}
	}
	test, reason, err := splitFeatures(ctx, t, env, split{"test", t.Name, t.Paths()}, check, res)
	if err != nil || reason != "" {
		return reason, err
	}
	labelSets := [][]string{train.Labels, test.Labels}
	if val != nil {
		labelSets = append(labelSets, val.Labels)
	}
	lm, err := newLabelMap(t, labelSets...)
	if err != nil {
		return "", err
	}
	asData := func(f *Features, which string) (probe.Data, error) {
		if f.Dim != train.Dim {
			return probe.Data{}, fmt.Errorf("%s features have %d values, training features %d", which, f.Dim, train.Dim)
		}
		y, err := lm.targets(f.Labels)
		if err != nil {
			return probe.Data{}, fmt.Errorf("%s split: %w", which, err)
		}
		x := slices.Clone(f.Images)
		normalizeRows(x, f.Dim) // as zero-shot sees them
		return probe.Data{X: x, Dim: f.Dim, Y: y}, nil
	}
	fit, err := asData(train, "training")
	if err != nil {
		return "", err
	}
	var held probe.Data
	if val != nil {
		if held, err = asData(val, "validation"); err != nil {
			return "", err
		}
	} else {
		keep, out := probe.StratifiedSplit(fit.Y, t.ValFraction, env.Bootstrap.Seed)
		if len(out) == 0 {
			return "", fmt.Errorf("val_fraction %v of %d training examples holds out none: give more data or val_data", t.ValFraction, fit.Len())
		}
		fit, held = fit.Subset(keep), fit.Subset(out)
	}
	if _, err := asData(test, "test"); err != nil { // before the fit, which is the slow part
		return "", err
	}
	c := len(lm.classes)
	model, sweep, err := probe.Fit(ctx, fit, held, c, probe.Options{Lambdas: t.L2Grid})
	if err != nil {
		return "", fmt.Errorf("linear probe: %w", err)
	}
	res.Classes, res.Classnames = c, lm.classes
	res.Excluded = train.Excluded + test.Excluded
	if val != nil {
		res.Excluded += val.Excluded
	}
	res.Probe = &ProbeResult{L2: sweep.Best, Sweep: sweep, TrainExamples: fit.Len(), ValExamples: held.Len(), Iterations: model.Iterations}
	scored, err := scoreTest(t, env, test, res, func(f *Features) (Metrics, *Outcomes, error) {
		d, err := asData(f, "test")
		if err != nil {
			return nil, nil, err
		}
		logits, err := model.Logits(d.X, d.Len())
		if err != nil {
			return nil, nil, err
		}
		return classify(rankScores(logits, d.Len(), c), d.Y, c, env.Bootstrap)
	})
	res.Examples = scored.Len()
	return "", err
}
