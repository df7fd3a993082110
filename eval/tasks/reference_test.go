package tasks_test

import (
	"context"
	"github.com/bmca/bmca/internal/graphtest"
	"os"
	"path/filepath"
	"testing"

	"github.com/bmca/bmca/backend"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/internal/testshared"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/weights"
)

// TestOpenCLIPZeroShotReference rebuilds the tiny model's zero-shot
// classifier from OpenCLIP's own template tokens and compares classifier and
// logits with what open_clip.build_zero_shot_classifier produced
// (shared/reference/README.md §D).
func TestOpenCLIPZeroShotReference(t *testing.T) {
	dir := testshared.Path(t, "reference/openclip/tiny")
	read := func(name string) weights.StateDict {
		sd, _, err := weights.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return sd
	}
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clip.ParseConfigJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	store, err := clip.NewStore(cfg, read("weights.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := backend.Open(backend.DefaultCPU)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := clip.NewEncoder(b, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Finalize()
	var _ tasks.Encoder = enc // *clip.Encoder must satisfy the interface

	zs, cases := read("zeroshot.safetensors"), read("cases.safetensors")
	floats := func(sd weights.StateDict, name string) []float32 {
		v, err := sd[name].Float32s()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v
	}
	ids, err := zs["template_tokens"].Int64s()
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([]int32, len(ids))
	for i, id := range ids {
		tokens[i] = int32(id)
	}
	const numClasses, numTemplates = 4, 3
	// Batch 5 splits the 12 prompts unevenly, across class boundaries.
	cls, err := tasks.ClassifierFromTokens(context.Background(), enc, tokens, numClasses, numTemplates, 5)
	if err != nil {
		t.Fatal(err)
	}
	if cls.Dim != 32 || cls.NumClasses != 4 {
		t.Fatalf("classifier %d×%d, want 32×4", cls.Dim, cls.NumClasses)
	}
	d := maxAbsDiff(cls.Weights, floats(zs, "classifier"))
	if d > 1e-5 {
		t.Errorf("classifier max abs diff %g > 1e-5", d)
	}
	t.Logf("classifier max abs diff %.3g", d)
	pixels := floats(cases, "pixels")
	n := cases["pixels"].Shape[0]
	img, err := enc.EncodeImages(pixels, n)
	if err != nil {
		t.Fatal(err)
	}
	logits, err := cls.Logits(img, n)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(logits, floats(zs, "logits")); d > 5e-4 {
		t.Errorf("logits max abs diff %g > 5e-4", d)
	} else {
		t.Logf("logits max abs diff %.3g", d)
	}
}

// maxAbsDiff is graphtest.MaxAbsDiff without the index (+Inf on a length
// mismatch or a NaN).
func maxAbsDiff(a, b []float32) float64 {
	d, _ := graphtest.MaxAbsDiff(a, b)
	return d
}
