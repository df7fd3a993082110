package preprocess

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestResamplePlaneMatchesPillow checks the training path's plane resampler
// against the eval path's port of Pillow's: with the whole plane as the box
// both compute the same coefficients and fixed-point sums, so the bytes
// must be equal, for downscales, upscales and sizes with odd rows and
// columns left over by the passes' pairing.
func TestResamplePlaneMatchesPillow(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var s planeScratch
	for _, tc := range [][4]int{{375, 335, 224, 224}, {101, 77, 33, 50}, {40, 30, 97, 61}, {9, 13, 7, 5}, {224, 224, 224, 224}, {1, 5, 3, 2}} {
		w, h, outW, outH := tc[0], tc[1], tc[2], tc[3]
		t.Run(fmt.Sprintf("%dx%d-%dx%d", w, h, outW, outH), func(t *testing.T) {
			stride := w + rng.IntN(3)
			pix := make([]uint8, stride*h)
			for y := range h {
				for x := range w {
					// Sharp edges and noise, so that bicubic overshoot clips.
					v := uint8(rng.IntN(256))
					if (x/3+y/4)%2 == 0 {
						v = []uint8{0, 255}[rng.IntN(2)]
					}
					pix[y*stride+x] = v
				}
			}
			got := make([]uint8, outW*outH)
			resamplePlane(got, pix, stride, axis{in1: float64(w), size: w, samples: w, factor: 1}, axis{in1: float64(h), size: h, samples: h, factor: 1}, outW, outH, &s)
			dense := make([]uint8, w*h)
			for y := range h {
				copy(dense[y*w:(y+1)*w], pix[y*stride:])
			}
			r := &raster{mode: modeL, w: w, h: h, pix: dense}
			want, err := resampleBicubic8(r, 1, window{bw: w, bh: h, outW: outW, outH: outH, w: outW, h: outH}, false)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				diff := 0
				for i := range got {
					if got[i] != want[i] {
						diff++
					}
				}
				t.Errorf("%d of %d samples differ from Pillow's resize", diff, len(got))
			}
		})
	}
}
