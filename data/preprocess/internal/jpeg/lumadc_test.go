package jpeg

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	stdjpeg "image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bmca/bmca/internal/cputime"
	"github.com/bmca/bmca/internal/testshared"
)

// lumaDCInputs are JPEGs of every kind the decoder reads: the reference
// files (progressive and baseline, restart intervals, 4:2:0, 4:2:2, 4:4:0,
// 4:1:1, grey, RGB), images encoded from noise and gradients at qualities
// 1–100 and sizes that are not multiples of a block or an MCU, and, when
// the shared material is present, the real figures and medical images.
func lumaDCInputs(t *testing.T) map[string][]byte {
	inputs := referenceJPEGs(t)
	if dir := testshared.Locate(); dir != "" {
		for _, f := range testshared.RealJPEGs(t, dir, true) {
			inputs[f.Name] = f.Data
		}
	} else {
		t.Log("shared material absent: the real images are not compared")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, q := range []int{1, 10, 50, 75, 90, 100} {
		for _, gray := range []bool{false, true} {
			w, h := 9+rng.IntN(300), 9+rng.IntN(300)
			inputs[fmt.Sprintf("q%d-gray=%v-%dx%d", q, gray, w, h)] = noiseJPEG(t, rng, w, h, q, gray)
		}
	}
	return inputs
}

// referenceJPEGs reads the package's reference JPEGs (data/preprocess's
// testdata), keyed by file name.
func referenceJPEGs(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("../../testdata/*.jpg")
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
	return inputs
}

// noiseJPEG encodes a w×h image mixing gradients and noise, so that its
// blocks range from flat to busy (long codes, large coefficients, ZRL runs,
// 0xff stuffing).
func noiseJPEG(t testing.TB, rng *rand.Rand, w, h, quality int, gray bool) []byte {
	t.Helper()
	var img image.Image
	if gray {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				g.SetGray(x, y, color.Gray{uint8(x*3 + y + rng.IntN(1+x%64))})
			}
		}
		img = g
	} else {
		c := image.NewRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				n := rng.IntN(1 + y%128)
				c.SetRGBA(x, y, color.RGBA{uint8(x*5 + n), uint8(y*4 - n), uint8(x*y + n), 255})
			}
		}
		img = c
	}
	var buf bytes.Buffer
	if err := stdjpeg.Encode(&buf, img, &stdjpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestLumaDCMatchesDecode: DecodeLumaDC's plane is Decode's first
// component at 1/8 scale, every byte of it (padding included), with the
// same size and colour space.
func TestLumaDCMatchesDecode(t *testing.T) {
	for name, raw := range lumaDCInputs(t) {
		full, err := Decode(raw, Options{Scale: 8})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		dc, err := DecodeLumaDC(raw, 0)
		if err != nil {
			t.Fatalf("%s: DecodeLumaDC: %v", name, err)
		}
		want, got := full.Components[0], dc.Components[0]
		if len(dc.Components) != 1 || dc.Width != full.Width || dc.Height != full.Height || dc.ColorSpace != full.ColorSpace ||
			got.Width != want.Width || got.Height != want.Height || got.Stride != want.Stride || got.HFactor != want.HFactor || got.VFactor != want.VFactor {
			t.Errorf("%s: DecodeLumaDC %dx%d %v %+v, Decode %dx%d %v %+v", name, dc.Width, dc.Height, dc.ColorSpace, meta(got),
				full.Width, full.Height, full.ColorSpace, meta(want))
			continue
		}
		if !slices.Equal(got.Pix, want.Pix) {
			t.Errorf("%s: planes differ", name)
		}
	}
}

func meta(c Component) Component { c.Pix = nil; return c }

// TestLumaDCErrors: data cut inside the luma's scan is truncated, as for
// Decode; a size limit holds; a luma plane sampled below the maximum is
// refused as unsupported (the caller falls back to Decode).
func TestLumaDCErrors(t *testing.T) {
	raw := noiseJPEG(t, rand.New(rand.NewPCG(3, 4)), 200, 150, 90, false)
	for _, cut := range []int{len(raw) / 2, len(raw) - 100} {
		_, errFull := Decode(raw[:cut], Options{Scale: 8})
		_, errDC := DecodeLumaDC(raw[:cut], 0)
		if errFull == nil || errDC == nil || errFull.Error() != errDC.Error() {
			t.Errorf("cut at %d: Decode %v, DecodeLumaDC %v; want the same error", cut, errFull, errDC)
		}
	}
	if _, err := DecodeLumaDC(raw, 100*100); !errors.Is(err, ErrTooLarge) {
		t.Errorf("200×150 with a limit of 10,000 pixels: %v", err)
	}
	// Swap the sampling factors of Y (2×2) and Cb (1×1) in the frame header.
	odd, err := os.ReadFile("../../testdata/baseline420.jpg")
	if err != nil {
		t.Fatal(err)
	}
	odd = slices.Clone(odd)
	sof := bytes.Index(odd, []byte{0xff, sof0Marker})
	if sof < 0 || odd[sof+11] != 0x22 || odd[sof+14] != 0x11 {
		t.Fatalf("unexpected frame header % x", odd[sof:sof+19])
	}
	odd[sof+11], odd[sof+14] = 0x11, 0x22
	var unsupported UnsupportedError
	if _, err := DecodeLumaDC(odd, 0); !errors.As(err, &unsupported) {
		t.Errorf("subsampled luma: %v, want an UnsupportedError", err)
	}
}

// BenchmarkLumaDC compares the 1/8-scale luma decode of the real JPEG
// figures and images by Decode and by DecodeLumaDC, in MB of JPEG and
// images per CPU-second (run with -cpu 1 for the one-core rate).
func BenchmarkLumaDC(b *testing.B) {
	var files [][]byte
	var total int
	for _, f := range testshared.RealJPEGs(b, testshared.Dir(b), true) {
		files = append(files, f.Data)
		total += len(f.Data)
	}
	for _, mode := range []string{"Decode", "DecodeLumaDC"} {
		b.Run(mode, func(b *testing.B) {
			cpu0 := cputime.Process()
			for b.Loop() {
				for _, raw := range files {
					var err error
					if mode == "Decode" {
						_, err = Decode(raw, Options{Scale: 8})
					} else {
						_, err = DecodeLumaDC(raw, 0)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			cpu := (cputime.Process() - cpu0).Seconds()
			b.ReportMetric(float64(total)*float64(b.N)/1e6/cpu, "MB/cpu-s")
			b.ReportMetric(float64(len(files))*float64(b.N)/cpu, "images/cpu-s")
		})
	}
}
