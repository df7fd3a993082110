package preprocess

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestVerticalPassMatchesDirect checks the packed vertical pass against
// Pillow's pixel-by-pixel sum, for odd and even row lengths, one to four
// channels, kernels of one to many taps (up- and downscaling) and samples
// chosen so that some sums are negative, where the packed halves borrow.
func TestVerticalPassMatchesDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, c := range []struct{ w, ch, inH, outH int }{
		{224, 3, 340, 224}, {7, 1, 50, 13}, {5, 3, 9, 31}, {33, 4, 1000, 17}, {1, 1, 3, 3}, {2, 2, 2, 1},
	} {
		win := window{bw: c.w, bh: c.inH, outW: c.w, outH: c.outH, w: c.w, h: c.outH}
		vert := precomputeCoeffs(c.inH, c.outH, 0, c.outH)
		vk := vert.fixedPoint()
		// Rows that are black or white at random (inverted in odd columns)
		// put white under the kernels' negative lobes and black under their
		// centre, so sums below zero, where the low half borrows from the
		// high one, occur; then random samples.
		mid := make([]uint8, c.inH*c.w*c.ch)
		n := c.w * c.ch
		for y := range c.inH {
			white := rng.IntN(2) == 0
			for i := range n {
				switch {
				case y%4 == 3:
					mid[y*n+i] = uint8(rng.IntN(256))
				case white != (i%2 == 1):
					mid[y*n+i] = 255
				}
			}
		}
		got := make([]uint8, c.outH*c.w*c.ch)
		verticalPass(got, mid, c.w, 0, c.ch, win, vert, vk, 0)
		want := make([]uint8, len(got))
		for yy := range c.outH {
			for i := range n {
				acc := int32(1 << (precisionBits - 1))
				for y := range vert.count[yy] {
					acc += int32(mid[(vert.first[yy]+y)*n+i]) * vk[yy*vert.ksize+y]
				}
				want[yy*n+i] = clip8(acc)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%+v: packed vertical pass differs from the direct sum", c)
		}
	}
}
