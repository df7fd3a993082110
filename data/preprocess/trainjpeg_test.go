package preprocess

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	jpegdec "github.com/bmca/bmca/data/preprocess/internal/jpeg"
	"github.com/bmca/bmca/internal/cputime"
	"github.com/bmca/bmca/internal/testshared"
)

// trainJPEGInputs are the reference JPEGs of every layout and, when the
// shared material is present, the real figures and medical JPEGs.
func trainJPEGInputs(t *testing.T) map[string][]byte {
	files, err := filepath.Glob("testdata/*.jpg")
	if err != nil || len(files) == 0 {
		t.Fatalf("no reference JPEGs: %v", err)
	}
	inputs := map[string][]byte{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs[filepath.Base(f)] = raw
	}
	if dir := testshared.Locate(); dir != "" {
		for _, f := range testshared.RealJPEGs(t, dir, true) {
			inputs[f.Name] = f.Data
		}
	} else {
		t.Log("shared material absent: only the small reference JPEGs are compared")
	}
	return inputs
}

// TestTrainPlanarIsClose compares the training transform's JPEG fast path
// with the exact one (Pillow's composition, decoded at full size) for the
// same crop, on every JPEG layout and, when the shared material is present,
// the real figures and medical images; and with the DCT-scaled general
// path it replaces, which decodes at Pillow's draft scale and rounds the
// crop box to that scale's pixels. Differences are in 8-bit levels of the
// RGB output (the tensor times std, times 255).
//
// The tolerance: at most 5 levels on average and 24 at the 99th percentile
// on each image, and over all images no further from the exact transform
// than the general DCT-scaled path (on the figures that path is 3 to 5
// levels away on average, 28 to 46 at the 99th percentile). A decoded-size
// grey or RGB JPEG must give the exact tensor. Both paths trade the same
// thing for speed: a band-limited reduction in the DCT domain instead of
// Pillow's filter over the full-size pixels.
func TestTrainPlanarIsClose(t *testing.T) {
	fastCfg := OpenAI(224)
	fastCfg.DCTScaling = true
	exactCfg := OpenAI(224)
	a, err := Augment{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	lut := fastCfg.normLUT()
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
			d = append(d, math.Abs(float64(x[i]-y[i]))*float64(fastCfg.Std[i/n])*255)
		}
		return d
	}
	var allFast, allDCT []float64
	for _, name := range names {
		raw := inputs[name]
		hdr, err := jpegdec.DecodeHeader(raw)
		if err != nil {
			t.Fatal(err)
		}
		var fastDiff, dctDiff []float64
		full := true
		for seed := range uint64(2) {
			fast, err := fastCfg.trainPlanar(raw, a, seed, &s, lut)
			if err != nil {
				t.Fatalf("%s seed %d: %v", name, seed, err)
			}
			dct, err := fastCfg.trainGeneral(raw, a, seed)
			if err != nil {
				t.Fatal(err)
			}
			exact, err := exactCfg.trainGeneral(raw, a, seed)
			if err != nil {
				t.Fatal(err)
			}
			fastDiff, dctDiff = levels(fastDiff, fast, exact), levels(dctDiff, dct, exact)
			rng := cropRNG(seed)
			top, left, ch, cw := a.cropParams(rng, hdr.Width, hdr.Height)
			f := jpegdec.Frame{Width: hdr.Width, Height: hdr.Height, Components: hdr.Components, HMax: 1, VMax: 1, H: [4]int{1, 1, 1, 1}, V: [4]int{1, 1, 1, 1}}
			full = full && fastCfg.blockSizes(f, cropBox{left, top, cw, ch})[0] == 8
		}
		mean, p99, maxd := stats(fastDiff)
		dctMean, dctP99, _ := stats(dctDiff)
		t.Logf("%-36s %4dx%-4d: mean %.2f  p99 %2.0f  max %2.0f levels (DCT-scaled general path: mean %.2f  p99 %2.0f)",
			name, hdr.Width, hdr.Height, mean, p99, maxd, dctMean, dctP99)
		if (hdr.Components == 1 || name == "rgb444.jpg") && full && maxd != 0 {
			t.Errorf("%s: a grey or RGB JPEG at full size differs from the exact transform by up to %.0f levels", name, maxd)
		}
		if mean > 5 || p99 > 24 {
			t.Errorf("%s: mean %.2f, 99th percentile %.0f levels from the exact transform; want ≤ 5 and ≤ 24", name, mean, p99)
		}
		allFast, allDCT = append(allFast, fastDiff...), append(allDCT, dctDiff...)
	}
	mean, p99, maxd := stats(allFast)
	dctMean, dctP99, dctMax := stats(allDCT)
	t.Logf("all: mean %.2f  p99 %.0f  max %.0f levels (DCT-scaled general path: mean %.2f  p99 %.0f  max %.0f)", mean, p99, maxd, dctMean, dctP99, dctMax)
	if mean > dctMean+0.05 {
		t.Errorf("mean %.2f levels from the exact transform, the general DCT-scaled path's is %.2f", mean, dctMean)
	}
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

// FuzzTrainJPEG feeds damaged JPEGs to the training transform with DCT
// scaling (the planar fast path, and the general path it falls back to):
// it must return a tensor of the right size or an error, never panic, and
// the same bytes and seed must give the same result.
//
//	go test ./data/preprocess -run '^$' -fuzz FuzzTrainJPEG -fuzztime 5m -fuzzminimizetime 5s
func FuzzTrainJPEG(f *testing.F) {
	files, err := filepath.Glob("testdata/*.jpg")
	if err != nil || len(files) == 0 {
		f.Fatalf("no reference JPEGs: %v", err)
	}
	for i, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, uint64(i))
		f.Add(raw[:len(raw)*3/4], uint64(i))
	}
	cfg := OpenAI(32)
	cfg.DCTScaling = true
	train, err := cfg.Train(Augment{Scale: [2]float64{0.1, 1}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		if hdr, err := jpegdec.DecodeHeader(data); err == nil && hdr.Width*hdr.Height > 1<<22 {
			return // large frames only make the fuzzer slow
		}
		a, errA := train(data, seed)
		b, errB := train(data, seed)
		if (errA == nil) != (errB == nil) || !slices.Equal(a, b) {
			t.Fatalf("same input, different results: %v, %v", errA, errB)
		}
		if errA == nil && len(a) != 3*32*32 {
			t.Fatalf("tensor of %d values", len(a))
		}
	})
}

// BenchmarkTrainFigures runs the training transform (DCT scaling, so the
// planar path for the pure-Go decoder) over the shared real JPEG figures in
// turn, one goroutine, in images per CPU-second; with the libjpeg build tag
// also through libjpeg-turbo (the general path).
//
//	go test ./data/preprocess -run '^$' -bench TrainFigures -cpu 1
func BenchmarkTrainFigures(b *testing.B) {
	var raws [][]byte
	for _, f := range testshared.RealJPEGs(b, testshared.Dir(b), false) {
		raws = append(raws, f.Data)
	}
	if len(raws) == 0 {
		b.Skip("no JPEG figures in the shared material")
	}
	for _, dec := range decoders() {
		b.Run(string(dec), func(b *testing.B) {
			cfg := OpenAI(224)
			cfg.DCTScaling, cfg.JPEG = true, dec
			train, err := cfg.Train(Augment{})
			if err != nil {
				b.Fatal(err)
			}
			cpu0 := cputime.Process()
			i := 0
			for b.Loop() {
				if _, err := train(raws[i%len(raws)], uint64(i)); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(i)/(cputime.Process()-cpu0).Seconds(), "images/cpu-s")
		})
	}
}
