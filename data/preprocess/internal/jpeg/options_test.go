package jpeg

import (
	"bytes"
	"errors"
	"fmt"
	"math"
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

// sizesFor returns a BlockSizes callback giving every component n samples
// per block side.
func sizesFor(n int) func(Frame) [MaxComponents]int {
	return func(f Frame) (s [MaxComponents]int) {
		for i := range f.Components {
			s[i] = n
		}
		return s
	}
}

// TestScratchReuse decodes images of every layout one after the other with
// one Scratch, at every scale and at block sizes 3 and 6: each result must
// be what a fresh Decode gives, whatever the scratch held before (larger or
// smaller planes, progressive coefficients).
func TestScratchReuse(t *testing.T) {
	names, raws := optionInputs(t)
	var s Scratch
	var variants []Options
	for _, scale := range []int{1, 2, 4, 8} {
		variants = append(variants, Options{Scale: scale})
	}
	variants = append(variants, Options{BlockSizes: sizesFor(3)}, Options{BlockSizes: sizesFor(6)})
	for pass := range 2 {
		for i, raw := range raws {
			for v, opts := range variants {
				want, err := Decode(raw, opts)
				if err != nil {
					t.Fatalf("%s: %v", names[i], err)
				}
				opts.Scratch = &s
				got, err := Decode(raw, opts)
				if err != nil {
					t.Fatalf("%s with scratch: %v", names[i], err)
				}
				if err := samePlanes(got, want); err != nil {
					t.Errorf("pass %d, %s, variant %d: %v", pass, names[i], v, err)
				}
			}
		}
	}
}

// TestBlockSizes checks Options.BlockSizes: at size 8 a component is the
// full-size decode's; at the other sizes every plane has the size its block
// size implies; and the fast path, which only skips the symbols past the
// n×n corner it reconstructs, gives the planes of the generic decoder,
// which decodes every coefficient.
func TestBlockSizes(t *testing.T) {
	names, raws := optionInputs(t)
	for i, raw := range raws {
		want, err := Decode(raw, Options{Scale: 1})
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(raw, Options{BlockSizes: sizesFor(8)})
		if err != nil {
			t.Fatal(err)
		}
		if err := samePlanes(got, want); err != nil {
			t.Errorf("%s block size 8: %v", names[i], err)
		}
		hdr, _ := DecodeHeader(raw)
		for n := 1; n <= 8; n++ {
			img, err := Decode(raw, Options{BlockSizes: sizesFor(n)})
			if err != nil {
				t.Fatalf("%s block size %d: %v", names[i], n, err)
			}
			if img.Width != hdr.Width || img.Height != hdr.Height {
				t.Errorf("%s block size %d: image %dx%d, want the full %dx%d", names[i], n, img.Width, img.Height, hdr.Width, hdr.Height)
			}
			for c, comp := range img.Components {
				if comp.BlockSize != n || comp.Width != ceilDiv(hdr.Width*n, comp.HFactor*8) || comp.Height != ceilDiv(hdr.Height*n, comp.VFactor*8) {
					t.Errorf("%s block size %d component %d: %+v", names[i], n, c, comp)
				}
			}
			generic, err := decodeGeneric(raw, Options{BlockSizes: sizesFor(n)})
			if err != nil {
				t.Fatal(err)
			}
			if err := samePlanes(img, generic); err != nil {
				t.Errorf("%s block size %d: %v, against the generic decoder", names[i], n, err)
			}
		}
	}
	if _, err := Decode(raws[0], Options{BlockSizes: sizesFor(9)}); err == nil {
		t.Error("block size 9 decoded, want an error")
	}
}

// TestIDCTNxN checks the N-point inverse DCTs against the formula they
// compute, in floating point, on random coefficient blocks, sparse and
// dense (both ways idctNxN computes): within one level, as libjpeg's own
// integer IDCTs are of the exact one.
func TestIDCTNxN(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var rl [1024]uint8
	initRangeLimit(&rl)
	var q block
	for i := range q {
		q[i] = int32(1 + rng.IntN(8))
	}
	for trial := range 200 {
		var b block
		b[0] = int32(rng.IntN(200) - 100)
		for range rng.IntN(12) {
			b[rng.IntN(64)] = int32(rng.IntN(41) - 20)
		}
		if trial%4 == 0 {
			// Dense low frequencies, which take the separable product.
			for i := range 48 {
				b[i] = int32(rng.IntN(41) - 20)
			}
		}
		for _, n := range []int{2, 3, 4, 5, 6, 7} {
			out := make([]byte, n*n)
			idctNxN(&b, &q, out, n, n, &rl)
			for y := range n {
				for x := range n {
					f := 0.0
					for v := range n {
						for u := range n {
							cu, cv := 1.0, 1.0
							if u == 0 {
								cu = 1 / math.Sqrt2
							}
							if v == 0 {
								cv = 1 / math.Sqrt2
							}
							f += cu * cv * float64(b[v*8+u]*q[v*8+u]) *
								math.Cos(float64(2*x+1)*float64(u)*math.Pi/float64(2*n)) *
								math.Cos(float64(2*y+1)*float64(v)*math.Pi/float64(2*n))
						}
					}
					want := min(max(math.Round(f/4+128), 0), 255)
					if d := math.Abs(float64(out[y*n+x]) - want); d > 1 {
						t.Fatalf("trial %d, n %d, (%d, %d): %d, want %.0f", trial, n, x, y, out[y*n+x], want)
					}
				}
			}
		}
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
		opts := Options{Scale: []int{1, 2, 4, 8}[sel%4], MaxPixels: 1 << 20}
		if sel&4 != 0 {
			opts.BlockSizes = sizesFor(1 + int(sel>>3)%8)
		}
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
