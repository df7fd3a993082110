package preprocess

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCropParams checks torchvision's RandomResizedCrop.get_params
// contract on many draws: crops fit, their area and aspect ratio stay in
// the bounds (up to rounding), and the fallback is a centre crop.
func TestCropParams(t *testing.T) {
	a, err := Augment{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range [][2]int{{224, 224}, {1929, 2207}, {640, 427}, {31, 29}} {
		w, h := size[0], size[1]
		for range 2000 {
			top, left, ch, cw := a.cropParams(rng, w, h)
			if top < 0 || left < 0 || top+ch > h || left+cw > w || ch <= 0 || cw <= 0 {
				t.Fatalf("%dx%d: crop top %d left %d %dx%d does not fit", w, h, top, left, cw, ch)
			}
			frac := float64(cw*ch) / float64(w*h)
			ratio := float64(cw) / float64(ch)
			slack := 3 / math.Sqrt(float64(w*h)) // rounding of a side by half a pixel
			if frac < 0.9-2*slack || frac > 1+2*slack || ratio < 0.75-slack || ratio > 4.0/3+slack {
				t.Fatalf("%dx%d: crop %dx%d has area fraction %.3f and ratio %.3f", w, h, cw, ch, frac, ratio)
			}
		}
	}
	// A 10:1 strip cannot take any crop of ratio ≤ 4/3 with 90% of its area:
	// the fallback keeps the full height and a centred 4/3 width.
	top, left, ch, cw := a.cropParams(rng, 1000, 100)
	if top != 0 || ch != 100 || cw != 133 || left != (1000-133)/2 {
		t.Errorf("fallback crop top %d left %d %dx%d, want a centred 133x100", top, left, cw, ch)
	}
}

func TestTrainTransform(t *testing.T) {
	raw := readImage(t, "torchxrayvision/tbx11k/tb/tb0005.png")
	cfg := OpenAI(224)
	train, err := cfg.Train(Augment{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := train(raw, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := train(raw, 7)
	c, _ := train(raw, 8)
	if len(a) != 3*224*224 || !slices.Equal(a, b) {
		t.Fatal("the same seed gives different tensors")
	}
	if slices.Equal(a, c) {
		t.Error("seeds 7 and 8 give the same crop")
	}

	// A crop of the whole square image is a plain resize to 224×224, which
	// is also what the eval transform does to a square image.
	whole, err := cfg.Train(Augment{Scale: [2]float64{1, 1}, Ratio: [2]float64{1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := whole(raw, 1)
	if err != nil {
		t.Fatal(err)
	}
	want, err := cfg.Apply(raw)
	if err != nil {
		t.Fatal(err)
	}
	if n := countDiffF(got, want); n != 0 {
		t.Errorf("whole-image crop differs from the eval resize in %d values", n)
	}

	for _, bad := range []Augment{{Scale: [2]float64{0.5, 1.5}}, {Ratio: [2]float64{2, 1}}} {
		if _, err := cfg.Train(bad); err == nil {
			t.Errorf("Train(%+v) accepted", bad)
		}
	}
}

// TestDCTScalingIsClose checks that DCT-domain downscaling, which is not
// Pillow-exact, stays close to the exact transform on the real JPEGs.
func TestDCTScalingIsClose(t *testing.T) {
	for _, name := range []string{"biomedclip/chest_X-ray.jpg", "biomedclip/H_and_E_histopathology.jpg", "biomedclip/brain_MRI.jpg"} {
		raw := readImage(t, name)
		exact, err := OpenAI(224).Apply(raw)
		if err != nil {
			t.Fatal(err)
		}
		cfg := OpenAI(224)
		cfg.DCTScaling = true
		fast, err := cfg.Apply(raw)
		if err != nil {
			t.Fatal(err)
		}
		_, mean, _ := diff(fast, exact)
		t.Logf("%s: mean abs diff %.4f (normalised units)", name, mean)
		if mean > 0.05 {
			t.Errorf("%s: DCT-scaled tensor is %.3f away on average", name, mean)
		}
	}
}

func countDiffF(a, b []float32) int {
	n := 0
	for i := range a {
		if a[i] != b[i] {
			n++
		}
	}
	return n
}
