package jpeg

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	stdjpeg "image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bmca/bmca/internal/testshared"
)

// TestFastEntropyMatchesGeneric checks that the fast sequential decoder
// (sequentialScan: unstuffed segments, fast tables, eight-byte refills) produces the
// planes of the generic one, on the package's reference JPEGs (restart
// intervals, 4:2:0/4:2:2/4:4:0/4:4:4, progressive ones taking the generic
// path either way) and on JPEGs encoded from noise and gradients at
// qualities from 1 to 100, so that long codes, large coefficients, ZRL
// runs, 0xff stuffing and every DCT scale are exercised; and on the real
// figures of the shared material when it is present.
func TestFastEntropyMatchesGeneric(t *testing.T) {
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
	if dir := testshared.Locate(); dir != "" {
		// Real figures: large scans, many stuffed 0xff bytes.
		for _, f := range testshared.RealJPEGs(t, dir, false) {
			inputs[f.Name] = f.Data
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, q := range []int{1, 10, 50, 75, 90, 100} {
		for _, gray := range []bool{false, true} {
			w, h := 40+rng.IntN(90), 30+rng.IntN(90)
			inputs[fmt.Sprintf("q%d-gray=%v-%dx%d", q, gray, w, h)] = encodeNoise(t, rng, w, h, q, gray)
		}
	}
	for name, raw := range inputs {
		for _, scale := range []int{1, 2, 4, 8} {
			fast, err := Decode(raw, Options{Scale: scale})
			if err != nil {
				t.Fatalf("%s scale %d: %v", name, scale, err)
			}
			generic, err := decodeGeneric(raw, Options{Scale: scale})
			if err != nil {
				t.Fatalf("%s scale %d (generic): %v", name, scale, err)
			}
			for i := range generic.Components {
				if !slices.Equal(fast.Components[i].Pix, generic.Components[i].Pix) {
					t.Errorf("%s scale %d: component %d differs from the generic decoder", name, scale, i)
				}
			}
		}
	}
}

// TestFastEntropyTruncated checks that the fast path reports data cut in
// the middle of a scan as the generic one does.
func TestFastEntropyTruncated(t *testing.T) {
	raw := encodeNoise(t, rand.New(rand.NewPCG(3, 4)), 64, 48, 90, false)
	for _, cut := range []int{len(raw) / 2, len(raw) - 100} {
		_, errFast := Decode(raw[:cut], Options{Scale: 1})
		_, errGeneric := decodeGeneric(raw[:cut], Options{Scale: 1})
		if errFast == nil || errGeneric == nil || errFast.Error() != errGeneric.Error() {
			t.Errorf("cut at %d: fast %v, generic %v; want the same error", cut, errFast, errGeneric)
		}
	}
}

// decodeGeneric is Decode through the generic entropy decoder.
func decodeGeneric(data []byte, opts Options) (*Image, error) {
	if opts.Scale == 0 {
		opts.Scale = 1
	}
	d := decoder{data: data, opts: opts, genericEntropy: true}
	initRangeLimit(&d.rangeLim)
	if err := d.parse(false); err != nil {
		return nil, err
	}
	if d.progressive {
		d.reconstructProgressive()
	}
	return d.image(), nil
}

// encodeNoise encodes a w×h image mixing gradients and noise, so that its
// blocks range from flat to busy.
func encodeNoise(t *testing.T, rng *rand.Rand, w, h, quality int, gray bool) []byte {
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
