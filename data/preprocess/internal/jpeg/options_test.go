package jpeg

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// optionInputs are the reference JPEGs (every layout the decoder reads)
// and noise JPEGs of several sizes, in a fixed order.
func optionInputs(t testing.TB) (names []string, raws [][]byte) {
	files, err := filepath.Glob("../../testdata/*.jpg")
	if err != nil || len(files) == 0 {
		t.Fatalf("no reference JPEGs: %v", err)
	}
	sort.Strings(files)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		names, raws = append(names, filepath.Base(f)), append(raws, raw)
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for i, q := range []int{20, 75, 95} {
		for _, gray := range []bool{false, true} {
			w, h := 17+rng.IntN(200), 9+rng.IntN(150)
			names = append(names, fmt.Sprintf("noise%d-q%d-gray=%v-%dx%d", i, q, gray, w, h))
			raws = append(raws, noiseJPEG(t, rng, w, h, q, gray))
		}
	}
	return names, raws
}

func samePlanes(a, b *Image) error {
	if a.Width != b.Width || a.Height != b.Height || a.ColorSpace != b.ColorSpace || len(a.Components) != len(b.Components) {
		return fmt.Errorf("image %dx%d %v %d components, want %dx%d %v %d", a.Width, a.Height, a.ColorSpace, len(a.Components),
			b.Width, b.Height, b.ColorSpace, len(b.Components))
	}
	for i := range a.Components {
		ca, cb := a.Components[i], b.Components[i]
		if ca.Width != cb.Width || ca.Height != cb.Height || ca.HFactor != cb.HFactor || ca.VFactor != cb.VFactor {
			return fmt.Errorf("component %d: %+v, want %+v", i, ca, cb)
		}
		for y := range ca.Height {
			if !bytes.Equal(ca.Pix[y*ca.Stride:y*ca.Stride+ca.Width], cb.Pix[y*cb.Stride:y*cb.Stride+cb.Width]) {
				return fmt.Errorf("component %d row %d differs", i, y)
			}
		}
	}
	return nil
}

// TestScratchReuse decodes images of every layout one after the other with
// one Scratch, at every scale, with and without SubsampledChroma: each
// result must be what a fresh Decode gives, whatever the scratch held
// before (larger or smaller planes, progressive coefficients).
func TestScratchReuse(t *testing.T) {
	names, raws := optionInputs(t)
	var s Scratch
	for pass := range 2 {
		for i, raw := range raws {
			for _, scale := range []int{1, 2, 4, 8} {
				for _, sub := range []bool{false, true} {
					want, err := Decode(raw, Options{Scale: scale, SubsampledChroma: sub})
					if err != nil {
						t.Fatalf("%s: %v", names[i], err)
					}
					got, err := Decode(raw, Options{Scale: scale, SubsampledChroma: sub, Scratch: &s})
					if err != nil {
						t.Fatalf("%s with scratch: %v", names[i], err)
					}
					if err := samePlanes(got, want); err != nil {
						t.Errorf("pass %d, %s, scale 1/%d, subsampled chroma %v: %v", pass, names[i], scale, sub, err)
					}
				}
			}
		}
	}
}

// TestSubsampledChroma checks that SubsampledChroma leaves each component
// at its own resolution divided by the scale: the luma plane is the default
// one, and a subsampled chroma plane at scale 1/s is the one libjpeg
// computes at 1/(2s), where it scales that same chroma up by two in the DCT
// domain to meet the luma — the same inverse DCT of the same blocks.
func TestSubsampledChroma(t *testing.T) {
	names, raws := optionInputs(t)
	tested := 0
	for i, raw := range raws {
		for _, scale := range []int{1, 2, 4} {
			sub, err := Decode(raw, Options{Scale: scale, SubsampledChroma: true})
			if err != nil {
				t.Fatal(err)
			}
			def, err := Decode(raw, Options{Scale: scale})
			if err != nil {
				t.Fatal(err)
			}
			if err := samePlanes(&Image{Width: sub.Width, Height: sub.Height, Components: sub.Components[:1]},
				&Image{Width: def.Width, Height: def.Height, Components: def.Components[:1]}); err != nil {
				t.Errorf("%s scale 1/%d: luma: %v", names[i], scale, err)
			}
			if len(sub.Components) < 3 || sub.Components[1].HFactor != 2 || sub.Components[1].VFactor != 2 {
				continue // only 4:2:0 has a chroma plane that 1/(2s) decodes at the same size
			}
			half, err := Decode(raw, Options{Scale: 2 * scale})
			if err != nil {
				t.Fatal(err)
			}
			for c := 1; c < 3; c++ {
				s, h := sub.Components[c], half.Components[c]
				if s.Width != h.Width || s.Height != h.Height {
					t.Fatalf("%s scale 1/%d: chroma %dx%d, want %dx%d", names[i], scale, s.Width, s.Height, h.Width, h.Height)
				}
				for y := range s.Height {
					if !bytes.Equal(s.Pix[y*s.Stride:y*s.Stride+s.Width], h.Pix[y*h.Stride:y*h.Stride+h.Width]) {
						t.Fatalf("%s scale 1/%d: chroma %d row %d differs from scale 1/%d's", names[i], scale, c, y, 2*scale)
					}
				}
			}
			tested++
		}
	}
	if tested == 0 {
		t.Fatal("no 4:2:0 input compared")
	}
}

// TestScaleFor checks that ScaleFor sees the image's size before decoding
// and that its scale is used, and that a scale Decode does not implement is
// refused.
func TestScaleFor(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/baseline420.jpg")
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := DecodeHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	var gotW, gotH int
	img, err := Decode(raw, Options{Scale: 1, ScaleFor: func(w, h int) int { gotW, gotH = w, h; return 4 }})
	if err != nil {
		t.Fatal(err)
	}
	if gotW != hdr.Width || gotH != hdr.Height {
		t.Errorf("ScaleFor saw %dx%d, want %dx%d", gotW, gotH, hdr.Width, hdr.Height)
	}
	want, err := Decode(raw, Options{Scale: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := samePlanes(img, want); err != nil {
		t.Errorf("ScaleFor 4: %v", err)
	}
	if _, err := Decode(raw, Options{ScaleFor: func(int, int) int { return 3 }}); err == nil {
		t.Error("ScaleFor 3 decoded, want an error")
	}
	if _, err := Decode(raw, Options{MaxPixels: 10, ScaleFor: func(int, int) int { t.Error("ScaleFor called for a refused image"); return 1 }}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("MaxPixels 10: %v, want ErrTooLarge", err)
	}
}

// FuzzDecode feeds damaged JPEGs to the decoder: it must return an error or
// planes, never panic, and a reused Scratch (first dirtied by another
// image) must give what a fresh decode gives. The seeds are the reference
// JPEGs cut short and with bytes flipped in their tables and scans.
//
//	go test ./data/preprocess/internal/jpeg -run '^$' -fuzz FuzzDecode -fuzztime 5m -fuzzminimizetime 5s
func FuzzDecode(f *testing.F) {
	_, raws := optionInputs(f)
	for i, raw := range raws {
		f.Add(raw, uint8(i))
		f.Add(raw[:len(raw)*2/3], uint8(i+1))
		flipped := bytes.Clone(raw)
		for j := len(raw) / 2; j < len(raw)/2+16 && j < len(raw); j++ {
			flipped[j] ^= 0xa5
		}
		f.Add(flipped, uint8(i+2))
	}
	dirty := raws[0]
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		opts := Options{Scale: []int{1, 2, 4, 8}[sel%4], SubsampledChroma: sel&4 != 0, MaxPixels: 1 << 20}
		fresh, errFresh := Decode(data, opts)
		var s Scratch
		opts.Scratch = &s
		if _, err := Decode(dirty, opts); err != nil {
			t.Fatal(err)
		}
		reused, errReused := Decode(data, opts)
		if (errFresh == nil) != (errReused == nil) {
			t.Fatalf("fresh decode: %v; with a reused scratch: %v", errFresh, errReused)
		}
		if errFresh == nil {
			if err := samePlanes(reused, fresh); err != nil {
				t.Fatalf("with a reused scratch: %v", err)
			}
		}
	})
}
