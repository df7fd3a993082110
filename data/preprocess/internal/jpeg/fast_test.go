package jpeg

import (
	"fmt"
	"math/rand/v2"
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
	inputs := referenceJPEGs(t)
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
			inputs[fmt.Sprintf("q%d-gray=%v-%dx%d", q, gray, w, h)] = noiseJPEG(t, rng, w, h, q, gray)
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
	raw := noiseJPEG(t, rand.New(rand.NewPCG(3, 4)), 64, 48, 90, false)
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
