package preprocess

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	jpegdec "github.com/bmca/bmca/data/preprocess/internal/jpeg"
	"github.com/bmca/bmca/internal/testshared"
)

// trainJPEGInputs are the reference JPEGs of every layout and, when the
// shared material is present, the real figures and medical JPEGs.
func trainJPEGInputs(t *testing.T) map[string][]byte {
	files, err := filepath.Glob("testdata/*.jpg")
	if err != nil || len(files) == 0 {
		t.Fatalf("no reference JPEGs: %v", err)
	}
	if dir := testshared.Locate(); dir != "" {
		for _, g := range []string{"data/jats-with-figures/*/*.jpg", "data/jats-with-figures/*/*/*.jpg", "data/images/*/*.jp*g"} {
			m, _ := filepath.Glob(filepath.Join(dir, g))
			files = append(files, m...)
		}
	} else {
		t.Log("shared material absent: only the small reference JPEGs are compared")
	}
	inputs := map[string][]byte{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs[filepath.Base(f)] = raw
	}
	return inputs
}

// TestTrainPlanarIsClose compares the training transform's JPEG fast path
// (planes resized separately, subsampled chroma through the upsampling
// folded into the resize, YCbCr converted after the resize) with the
// composition of the eval path's steps at the same DCT scale and for the
// same crop, on every JPEG layout and the real figures and medical images.
// Differences are in 8-bit levels of the RGB output (the tensor times std,
// times 255).
//
// Grey and RGB JPEGs must give the same tensor. For YCbCr the yardstick is
// the augmentation itself: the fast path must stay closer to the exact one
// than the exact one is to itself with the random crop moved by one pixel
// of the decoded image, and within 10 levels for 99% of the values. The
// largest differences are single pixels at saturated colour edges, where
// clipping to the RGB gamut before or after the resize differs.
func TestTrainPlanarIsClose(t *testing.T) {
	cfg := OpenAI(224)
	cfg.DCTScaling = true
	a, err := Augment{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	lut := cfg.normLUT()
	var s trainScratch
	inputs := trainJPEGInputs(t)
	names := make([]string, 0, len(inputs))
	for name := range inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	levels := func(d []float64, x, y []float32) []float64 {
		n := len(x) / 3
		for i := range x {
			d = append(d, math.Abs(float64(x[i]-y[i]))*float64(cfg.Std[i/n])*255)
		}
		return d
	}
	var all []float64
	for _, name := range names {
		raw := inputs[name]
		hdr, err := jpegdec.DecodeHeader(raw)
		if err != nil {
			t.Fatal(err)
		}
		var diffs, shifted []float64
		for seed := range uint64(2) {
			fast, err := cfg.trainPlanar(raw, a, seed, &s, lut)
			if err != nil {
				t.Fatalf("%s seed %d: %v", name, seed, err)
			}
			exact, err := cfg.trainGeneral(raw, a, seed)
			if err != nil {
				t.Fatal(err)
			}
			diffs = levels(diffs, fast, exact)
			// The same crop one decoded pixel to the side.
			rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
			moved, err := cfg.trainGeneralCrop(raw, func(w, h int) (int, int, int, int) {
				top, left, ch, cw := a.cropParams(rng, w, h)
				step := draftScale(cw, ch, cfg.ImageSize, cfg.ImageSize)
				switch {
				case left+cw+step <= w:
					left += step
				case left >= step:
					left -= step
				case top+ch+step <= h:
					top += step
				default:
					top -= step // the crop is 90% of the image: it has room one way
				}
				return top, left, ch, cw
			})
			if err != nil {
				t.Fatal(err)
			}
			shifted = levels(shifted, moved, exact)
		}
		mean, p99, maxd := stats(diffs)
		shiftMean, _, _ := stats(shifted)
		t.Logf("%-36s %dx%d %d comp.: mean %.2f  p99 %.0f  max %.0f levels (crop moved by a pixel: mean %.2f)",
			name, hdr.Width, hdr.Height, hdr.Components, mean, p99, maxd, shiftMean)
		switch {
		case hdr.Components == 1 || name == "rgb444.jpg":
			if maxd != 0 {
				t.Errorf("%s: grey or RGB differs from the exact composition by up to %.0f levels, want 0", name, maxd)
			}
		case mean >= shiftMean || p99 > 10:
			t.Errorf("%s: mean %.2f, 99th percentile %.0f levels from the exact composition; want below %.2f (a one-pixel crop shift) and ≤ 10",
				name, mean, p99, shiftMean)
		}
		all = append(all, diffs...)
	}
	mean, p99, maxd := stats(all)
	t.Logf("all: mean %.2f  p99 %.0f  max %.0f levels", mean, p99, maxd)
}

func stats(d []float64) (mean, p99, maxd float64) {
	s := slices.Clone(d)
	slices.Sort(s)
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	return sum / float64(len(s)), s[len(s)*99/100], s[len(s)-1]
}
