package synth

import (
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"testing"

	"golang.org/x/image/draw"
)

// TestPreview writes a contact sheet when BMCA_SYNTH_PREVIEW names an output
// file: per modality, one row of generated 48 px samples and below it the same
// samples as the demo model sees them (resized to 32 px), all enlarged ×4.
//
//	BMCA_SYNTH_PREVIEW=/tmp/synth_preview.png go test ./data/synth -run Preview
func TestPreview(t *testing.T) {
	path := os.Getenv("BMCA_SYNTH_PREVIEW")
	if path == "" {
		t.Skip("set BMCA_SYNTH_PREVIEW=/tmp/synth_preview.png to write a contact sheet")
	}
	const (
		size, seen, cols, zoom, pad = 48, 32, 8, 4, 4
		cell                        = size*zoom + pad
	)
	rows := 2 * int(NumModalities)
	sheet := image.NewRGBA(image.Rect(0, 0, cols*cell+pad, rows*cell+pad))
	draw.Draw(sheet, sheet.Bounds(), image.NewUniform(color.Gray{128}), image.Point{}, draw.Src)
	rng := rand.New(rand.NewPCG(7, 7))
	for m := range NumModalities {
		for col := range cols {
			a := RandomAttributes(rng)
			a.Modality = m
			a.Color = NoColor
			if m == Fluorescence {
				a.Color = Color(1 + col%3)
			}
			a.Shape = Shape(col % int(NumShapes))
			a.Count = 1 + col%MaxCount
			a.Position = Position((col / 2) % int(NumPositions))
			img := Render(rng, a, size)
			t.Logf("%v: %s", m, Caption(rng, a))
			x0, y0 := pad+col*cell, pad+2*int(m)*cell
			draw.NearestNeighbor.Scale(sheet, image.Rect(x0, y0, x0+size*zoom, y0+size*zoom), img, img.Bounds(), draw.Src, nil)
			small := image.NewRGBA(image.Rect(0, 0, seen, seen))
			draw.CatmullRom.Scale(small, small.Bounds(), img, img.Bounds(), draw.Src, nil)
			y0 += cell
			draw.NearestNeighbor.Scale(sheet, image.Rect(x0, y0, x0+size*zoom, y0+size*zoom), small, small.Bounds(), draw.Src, nil)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, sheet); err != nil {
		t.Fatal(err)
	}
}
