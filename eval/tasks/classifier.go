package tasks

import (
	"context"
	"fmt"
	"math"
)

// ZeroShotLogitScale is the fixed scale of zero-shot logits (OpenCLIP's
// src/training/zero_shot.py and CLIP_benchmark both use 100, not the
// model's learned logit_scale).
const ZeroShotLogitScale = 100

// Classifier holds zero-shot weights: one unit-norm column per class.
type Classifier struct {
	Dim        int       // embedding size
	NumClasses int       // number of columns
	Weights    []float32 // [Dim, NumClasses] row-major, as OpenCLIP's classifier tensor
}

// BuildClassifier builds zero-shot weights the way OpenCLIP's
// build_zero_shot_classifier does: for each class, format every template,
// tokenize, encode, L2-normalise each feature, average over the templates and
// L2-renormalise. Texts are encoded batchSize rows at a time.
func BuildClassifier(ctx context.Context, enc TextEncoder, tokenize TokenizeFunc, classes, templates []string, batchSize int) (*Classifier, error) {
	prompts, err := Prompts(classes, templates)
	if err != nil {
		return nil, err
	}
	if len(prompts) == 0 {
		return nil, fmt.Errorf("zero-shot classifier: need at least one class and one template")
	}
	tokens, err := tokenize(prompts)
	if err != nil {
		return nil, fmt.Errorf("zero-shot classifier: tokenize prompts: %w", err)
	}
	return ClassifierFromTokens(ctx, enc, tokens, len(classes), len(templates), batchSize)
}

// ClassifierFromTokens is BuildClassifier for prompts already tokenized:
// tokens holds numClasses×numTemplates rows, class-major (class 0 with
// templates 0..T-1, then class 1, …), each of the same context length.
func ClassifierFromTokens(ctx context.Context, enc TextEncoder, tokens []int32, numClasses, numTemplates, batchSize int) (*Classifier, error) {
	n := numClasses * numTemplates
	if numClasses < 1 || numTemplates < 1 {
		return nil, fmt.Errorf("zero-shot classifier: %d classes × %d templates", numClasses, numTemplates)
	}
	if len(tokens) == 0 || len(tokens)%n != 0 {
		return nil, fmt.Errorf("zero-shot classifier: %d token ids do not form %d×%d rows", len(tokens), numClasses, numTemplates)
	}
	if batchSize < 1 {
		batchSize = DefaultBatchSize
	}
	feats, dim, err := encodeTextsBatched(ctx, enc, tokens, n, batchSize)
	if err != nil {
		return nil, fmt.Errorf("zero-shot classifier: %w", err)
	}
	normalizeRows(feats, dim)
	means := make([]float32, numClasses*dim) // [C, dim]
	for c := range numClasses {
		sum := make([]float64, dim)
		for t := range numTemplates {
			row := feats[(c*numTemplates+t)*dim:][:dim]
			for i, v := range row {
				sum[i] += float64(v)
			}
		}
		for i, s := range sum {
			means[c*dim+i] = float32(s / float64(numTemplates))
		}
	}
	normalizeRows(means, dim)
	w := make([]float32, dim*numClasses)
	for c := range numClasses {
		for i := range dim {
			w[i*numClasses+c] = means[c*dim+i]
		}
	}
	return &Classifier{Dim: dim, NumClasses: numClasses, Weights: w}, nil
}

// Logits returns ZeroShotLogitScale · normalize(features) · Weights for n
// image feature rows [n, Dim] (not normalised): [n, NumClasses], row-major.
func (c *Classifier) Logits(features []float32, n int) ([]float32, error) {
	if len(features) != n*c.Dim {
		return nil, fmt.Errorf("zero-shot logits: got %d values, want %d rows × %d", len(features), n, c.Dim)
	}
	x := append([]float32(nil), features...)
	normalizeRows(x, c.Dim)
	out := make([]float32, n*c.NumClasses)
	acc := make([]float64, c.NumClasses)
	for r := range n {
		clear(acc)
		for i, v := range x[r*c.Dim : (r+1)*c.Dim] {
			wrow := c.Weights[i*c.NumClasses : (i+1)*c.NumClasses]
			for k, w := range wrow {
				acc[k] += float64(v) * float64(w)
			}
		}
		for k, a := range acc {
			out[r*c.NumClasses+k] = float32(ZeroShotLogitScale * a)
		}
	}
	return out, nil
}

// Probabilities returns each row's class probabilities, the softmax of its
// Logits, [n, NumClasses] row-major: OpenCLIP's zero-shot
// (100 · image_features @ classifier).softmax(dim=-1).
func (c *Classifier) Probabilities(features []float32, n int) ([]float32, error) {
	logits, err := c.Logits(features, n)
	if err != nil {
		return nil, err
	}
	probs := make([]float32, len(logits))
	for r := range n {
		softmax(probs[r*c.NumClasses:(r+1)*c.NumClasses], logits[r*c.NumClasses:(r+1)*c.NumClasses])
	}
	return probs, nil
}

// softmax writes the softmax of logits to out, in float64 and shifted by
// the largest logit so that no exponential overflows.
func softmax(out, logits []float32) {
	top := math.Inf(-1)
	for _, v := range logits {
		top = max(top, float64(v))
	}
	z := 0.0
	for _, v := range logits {
		z += math.Exp(float64(v) - top)
	}
	for k, v := range logits {
		out[k] = float32(math.Exp(float64(v)-top) / z)
	}
}
