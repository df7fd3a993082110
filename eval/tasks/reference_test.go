package tasks_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/internal/reftest"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/weights"
)

// TestOpenCLIPZeroShotReference rebuilds the tiny model's zero-shot
// classifier from OpenCLIP's own template tokens and compares classifier and
// logits with what open_clip.build_zero_shot_classifier produced
// (shared/reference/README.md §D), and the probabilities of its softmax.
func TestOpenCLIPZeroShotReference(t *testing.T) {
	ref := reftest.Load(t, "tiny")
	enc, _ := referenceEncoder(t, ref)
	var _ tasks.Encoder = enc // *clip.Encoder must satisfy the interface

	zs, _, err := weights.ReadFile(filepath.Join(ref.Dir, "zeroshot.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	tokens := reftest.Int32s(t, zs, "template_tokens")
	const numClasses, numTemplates = 4, 3
	// Batch 5 splits the 12 prompts unevenly, across class boundaries.
	cls, err := tasks.ClassifierFromTokens(context.Background(), enc, tokens, numClasses, numTemplates, 5)
	if err != nil {
		t.Fatal(err)
	}
	if cls.Dim != 32 || cls.NumClasses != 4 {
		t.Fatalf("classifier %d×%d, want 32×4", cls.Dim, cls.NumClasses)
	}
	d := maxAbsDiff(cls.Weights, reftest.Floats(t, zs, "classifier"))
	if d > 1e-5 {
		t.Errorf("classifier max abs diff %g > 1e-5", d)
	}
	t.Logf("classifier max abs diff %.3g", d)
	pixels := reftest.Floats(t, ref.Cases, "pixels")
	n := ref.Cases["pixels"].Shape[0]
	img, err := enc.EncodeImages(pixels, n)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := cls.Logits(img, n)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(logits, reftest.Floats(t, zs, "logits")); d > 5e-4 {
		t.Errorf("logits max abs diff %g > 5e-4", d)
	} else {
		t.Logf("logits max abs diff %.3g", d)
	}
	probs, err := cls.Probabilities(img, n)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(probs, reftest.Floats(t, zs, "probs")); d > 1e-5 {
		t.Errorf("probabilities max abs diff %g > 1e-5", d)
	}
}

// referenceEncoder builds the encoder of an OpenCLIP reference model, on
// the CPU backend, and returns it with the model's configuration.
func referenceEncoder(t *testing.T, ref reftest.Model) (*clip.Encoder, clip.Config) {
	t.Helper()
	cfg, err := clip.ParseConfigJSON(ref.Config)
	if err != nil {
		t.Fatal(err)
	}
	store, err := clip.NewStore(cfg, ref.Weights)
	if err != nil {
		t.Fatal(err)
	}
	b := graphtest.Backend(t)
	enc, err := clip.NewEncoder(b, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(enc.Finalize)
	return enc, cfg
}

// maxAbsDiff is graphtest.MaxAbsDiff without the index (+Inf on a length
// mismatch or a NaN).
func maxAbsDiff(a, b []float32) float64 {
	d, _ := graphtest.MaxAbsDiff(a, b)
	return d
}
