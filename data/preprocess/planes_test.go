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

// TestResampleVectorMatchesScalar runs the vector kernel (a GOEXPERIMENT=simd
// build on an AVX2 CPU) and the scalar one on the same planes and boxes:
// downscales and upscales, fractional box edges, subsampled chroma planes
// with libjpeg's fancy upsampling folded in, and sizes that leave partial
// groups of eight rows and columns. The bytes must be equal.
func TestResampleVectorMatchesScalar(t *testing.T) {
	if !hasVectorResample() {
		t.Skip("no vector resampler in this build (it needs GOEXPERIMENT=simd on an amd64 CPU with AVX2)")
	}
	rng := rand.New(rand.NewPCG(9, 10))
	var vec, scalar planeScratch
	scalar.scalar = true
	for i := range 200 {
		w, h := 1+rng.IntN(400), 1+rng.IntN(400)
		outW, outH := 1+rng.IntN(240), 1+rng.IntN(240)
		stride := w + rng.IntN(5)
		pix := make([]uint8, stride*h)
		for j := range pix {
			pix[j] = uint8(rng.IntN(256))
			if rng.IntN(3) == 0 {
				pix[j] = []uint8{0, 255}[rng.IntN(2)]
			}
		}
		box := func(samples int) axis {
			factor := []int{1, 1, 2, 4}[rng.IntN(4)]
			size := samples * factor
			in0 := rng.Float64() * float64(size) / 3
			in1 := in0 + (1+rng.Float64()*float64(size-1))*(1-in0/float64(size))
			if factor == 1 {
				return axis{in0: in0, in1: min(in1, float64(samples)), size: samples, samples: samples, factor: 1}
			}
			in0, in1 = float64(int(in0)), float64(min(int(in1)+1, size))
			return axis{in0: in0, in1: in1, size: size, samples: samples, factor: factor, fancy: factor == 2 && rng.IntN(2) == 0}
		}
		ax, ay := box(w), box(h)
		got, want := make([]uint8, outW*outH), make([]uint8, outW*outH)
		resamplePlane(got, pix, stride, ax, ay, outW, outH, &vec)
		resamplePlane(want, pix, stride, ax, ay, outW, outH, &scalar)
		if !slices.Equal(got, want) {
			diff := 0
			for j := range got {
				if got[j] != want[j] {
					diff++
				}
			}
			t.Fatalf("case %d: %dx%d plane, boxes %+v %+v to %dx%d: %d of %d samples differ", i, w, h, ax, ay, outW, outH, diff, len(got))
		}
	}
}

// BenchmarkResamplePlane resizes a 1500-pixel figure's luma at 2/8 (a
// 375×335 plane, fractional crop box) to 224×224 with each kernel; the
// vector one runs only in a GOEXPERIMENT=simd build on an AVX2 CPU.
//
//	GOEXPERIMENT=simd go test ./data/preprocess -run '^$' -bench ResamplePlane
func BenchmarkResamplePlane(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	w, h := 375, 335
	pix := make([]uint8, w*h)
	for i := range pix {
		pix[i] = uint8(rng.IntN(256))
	}
	dst := make([]uint8, 224*224)
	ax := axis{in0: 3.5, in1: float64(w) - 2.25, size: w, samples: w, factor: 1}
	ay := axis{in0: 1.5, in1: float64(h) - 0.5, size: h, samples: h, factor: 1}
	for _, scalar := range []bool{true, false} {
		name := "scalar"
		if !scalar {
			if !hasVectorResample() {
				continue
			}
			name = "vector"
		}
		b.Run(name, func(b *testing.B) {
			s := planeScratch{scalar: scalar}
			for b.Loop() {
				resamplePlane(dst, pix, w, ax, ay, 224, 224, &s)
			}
		})
	}
}
