package phash

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"testing"

	"golang.org/x/image/draw"
)

// TestStringParse: what String writes, Parse reads back; anything else is
// refused.
func TestStringParse(t *testing.T) {
	for _, h := range []Hash{{Bits: 0}, {Bits: 0xc3a1_0000_ffff_0001}, {Bits: math.MaxUint64}, {Flat: true}} {
		got, err := Parse(h.String())
		if err != nil || got != h {
			t.Errorf("%+v → %q → %+v, %v", h, h.String(), got, err)
		}
	}
	if s := (Hash{Bits: 0xab}).String(); s != "00000000000000ab" {
		t.Errorf("String = %q, want 16 zero-padded hex digits", s)
	}
	for _, bad := range []string{"", "ab", "00000000000000ag", "0x000000000000ab", "FLAT", "000000000000000000ab"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

// blobs draws a w×h image whose structure scales with it: the same picture
// at any size.
func blobs(w, h int, seed float64) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			u, v := float64(x)/float64(w), float64(y)/float64(h)
			g.SetGray(x, y, color.Gray{uint8(127 + 120*math.Sin(7*u*seed+3*v)*math.Cos(5*v+seed*u))})
		}
	}
	return g
}

func jpegOf(t *testing.T, img image.Image, q int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestNearAndFar: a copy resized and re-encoded hashes within a few bits
// of the original, another picture far from it, a blank one flat.
func TestNearAndFar(t *testing.T) {
	orig := blobs(640, 480, 1)
	small := image.NewGray(image.Rect(0, 0, 300, 225))
	draw.BiLinear.Scale(small, small.Bounds(), orig, orig.Bounds(), draw.Src, nil)
	h0, err := FromEncoded(jpegOf(t, orig, 90))
	if err != nil {
		t.Fatal(err)
	}
	h1, err := FromEncoded(jpegOf(t, small, 40))
	if err != nil {
		t.Fatal(err)
	}
	other := Of(blobs(640, 480, 2.3))
	if h0.Flat || h1.Flat || other.Flat {
		t.Fatalf("structured images hash flat: %v %v %v", h0, h1, other)
	}
	if d := Distance(h0.Bits, h1.Bits); d > 6 {
		t.Errorf("resized, re-encoded copy %d bits away", d)
	}
	if d := Distance(h0.Bits, other.Bits); d < 16 {
		t.Errorf("another picture only %d bits away", d)
	}
	blank := image.NewGray(image.Rect(0, 0, 100, 80))
	for i := range blank.Pix {
		blank.Pix[i] = uint8(200 + i%2) // a one-level ripple is no contrast
	}
	if !Of(blank).Flat {
		t.Error("a blank image is not flat")
	}
	if _, err := FromEncoded([]byte("BM, a BMP header")); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("a format FromEncoded does not read: %v, want ErrUnknownFormat for the caller to fall back", err)
	}
}
