package preprocess

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"testing"
)

// TestGrayOf: the fast paths give exactly what image/color's GrayModel
// gives, pixel by pixel, also for translucent NRGBA pixels.
func TestGrayOf(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	rgba := image.NewRGBA(image.Rect(2, 3, 19, 14))
	nrgba := image.NewNRGBA(image.Rect(0, 0, 13, 7))
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(rng.IntN(256))
	}
	for i := 3; i < len(rgba.Pix); i += 4 { // premultiplied: channels ≤ alpha
		a := rgba.Pix[i]
		for c := 1; c <= 3; c++ {
			rgba.Pix[i-c] = min(rgba.Pix[i-c], a)
		}
	}
	for i := range nrgba.Pix {
		nrgba.Pix[i] = uint8(rng.IntN(256))
	}
	for _, img := range []image.Image{rgba, nrgba} {
		g := GrayOf(img)
		b := img.Bounds()
		for y := range b.Dy() {
			for x := range b.Dx() {
				want := color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y
				if got := g.GrayAt(x, y).Y; got != want {
					t.Fatalf("%T (%d,%d): %d, GrayModel %d", img, x, y, got, want)
				}
			}
		}
	}
}

// TestLumaJPEGScale: a JPEG's luma decoded at 1/8 is, pixel by pixel, the
// mean of the 8×8 block of its full-size luma (up to the IDCT's rounding),
// and a PNG's luma is its grey pixels.
func TestLumaJPEGScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	src := image.NewRGBA(image.Rect(0, 0, 400, 320))
	for y := range 320 {
		for x := range 400 {
			src.Set(x, y, color.RGBA{uint8(x/3 + rng.IntN(20)), uint8(y/2 + rng.IntN(20)), uint8((x + y) / 5), 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	small, err := Luma(buf.Bytes(), 32)
	if err != nil {
		t.Fatal(err)
	}
	if b := small.Bounds(); b.Dx() != 50 || b.Dy() != 40 {
		t.Fatalf("luma at 1/8 is %v, want 50×40", b)
	}
	full, err := Luma(buf.Bytes(), 400) // no scaling
	if err != nil {
		t.Fatal(err)
	}
	if full.Bounds().Dx() != 400 {
		t.Fatalf("unscaled luma %v", full.Bounds())
	}
	for by := range 40 {
		for bx := range 50 {
			sum := 0
			for y := range 8 {
				for x := range 8 {
					sum += int(full.GrayAt(8*bx+x, 8*by+y).Y)
				}
			}
			if d := int(small.GrayAt(bx, by).Y) - (sum+32)/64; d < -2 || d > 2 {
				t.Fatalf("block (%d,%d): %d at 1/8, block mean %d", bx, by, small.GrayAt(bx, by).Y, (sum+32)/64)
			}
		}
	}
	g := image.NewGray(image.Rect(0, 0, 9, 5))
	for i := range g.Pix {
		g.Pix[i] = uint8(i * 5)
	}
	buf.Reset()
	if err := png.Encode(&buf, g); err != nil {
		t.Fatal(err)
	}
	got, err := Luma(buf.Bytes(), 32)
	if err != nil || !bytes.Equal(got.Pix, g.Pix) {
		t.Errorf("PNG luma %v, %v; want its pixels", got, err)
	}
	if _, err := Luma([]byte("GIF89a"), 32); err == nil {
		t.Error("GIF accepted")
	}
}
