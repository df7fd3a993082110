package preprocess

import "math"

// This file ports the part of Pillow 9.4's resampler (libImaging/Resample.c
// and the NEAREST fast path of Geometry.c) that OpenCLIP's eval transform
// reaches. Only the crop window of the resized image is computed: every
// output pixel depends on its own coefficient row alone, so skipping the
// pixels CenterCrop throws away changes no value, and it keeps degenerate
// inputs (a 1×5000 strip would resize to 224×1120000) cheap.
//
// Products are wrapped in float64(...) conversions wherever Pillow rounds
// them: the Go spec lets the compiler fuse x*y+z into one FMA (it does on
// arm64), which would move weights by an ulp and break bit-exactness with the
// x86 build of Pillow the references come from.

// precisionBits is Pillow's PRECISION_BITS: 32 - 8 bits of pixel - 2 bits of headroom.
const precisionBits = 32 - 8 - 2

// bicubicSupport is the radius of Pillow's bicubic filter at scale 1.
const bicubicSupport = 2.0

// bicubic is Pillow's bicubic_filter with a = -0.5 (Keys' Catmull-Rom choice).
func bicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		p := float64((a+2)*x) - (a + 3)
		return float64(float64(p*x)*x) + 1
	}
	if x < 2 {
		p := float64((x-5)*x) + 8
		p = float64(p*x) - 4
		return p * a
	}
	return 0
}

// coeffs holds, for a run of consecutive output positions along one axis,
// the first input index and tap count of each, and its ksize weights.
type coeffs struct {
	ksize  int
	first  []int // first input index, per output position
	count  []int // number of taps, per output position
	weight []float64
}

// precomputeCoeffs is Pillow's precompute_coeffs for a box covering the whole
// input (in0 = 0, in1 = inSize), restricted to outputs [from, from+n).
func precomputeCoeffs(inSize, outSize, from, n int) coeffs {
	// Pillow passes the box edges as float, so the span is rounded to float32
	// before the division; exact for any image size below 2^24.
	scale := float64(float32(inSize)) / float64(outSize)
	filterScale := max(scale, 1)
	support := bicubicSupport * filterScale
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{
		ksize:  ksize,
		first:  make([]int, n),
		count:  make([]int, n),
		weight: make([]float64, n*ksize),
	}
	ss := 1 / filterScale
	for i := range n {
		xx := from + i
		center := float64(float64(float64(xx)+0.5) * scale)
		// C's (int) cast truncates toward zero, as Go's conversion does.
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), inSize) - xmin
		k := c.weight[i*ksize : (i+1)*ksize]
		ww := 0.0
		for x := range xmax {
			w := bicubic(float64(float64(float64(x+xmin)-center+0.5) * ss))
			k[x] = w
			ww += w
		}
		if ww != 0 {
			for x := range xmax {
				k[x] /= ww
			}
		}
		c.first[i] = xmin
		c.count[i] = xmax
	}
	return c
}

// fixedPoint converts normalised weights to Pillow's 22-bit fixed point,
// rounding half away from zero as normalize_coeffs_8bpc does.
func (c coeffs) fixedPoint() []int32 {
	out := make([]int32, len(c.weight))
	for i, w := range c.weight {
		if w < 0 {
			out[i] = int32(-0.5 + w*(1<<precisionBits))
		} else {
			out[i] = int32(0.5 + w*(1<<precisionBits))
		}
	}
	return out
}

// clip8 turns a fixed-point accumulator into a byte, saturating.
func clip8(v int32) uint8 {
	if v >= 1<<precisionBits<<8 {
		return 255
	}
	if v <= 0 {
		return 0
	}
	return uint8(v >> precisionBits)
}

// window is the part of the resized image that survives the centre crop.
type window struct {
	outW, outH int // size of the full resized image
	x0, y0     int // top-left corner of the crop in the resized image
	w, h       int // crop size
}

// resampleBicubic8 resizes an interleaved 8-bit image with ch channels the way
// Pillow's ImagingResample does for BICUBIC, returning only the crop window.
// As in Pillow, each pass runs only if its dimension changes and the
// horizontal pass runs first, its output rounded and clipped to 8 bits.
func resampleBicubic8(src []uint8, w, h, ch int, win window) []uint8 {
	needH := win.outW != w
	needV := win.outH != h

	var vert coeffs
	var vk []int32
	rowFrom, rowTo := win.y0, win.y0+win.h // source rows the horizontal pass must produce
	if needV {
		vert = precomputeCoeffs(h, win.outH, win.y0, win.h)
		vk = vert.fixedPoint()
		rowFrom = vert.first[0]
		rowTo = vert.first[win.h-1] + vert.count[win.h-1]
	}

	// mid holds rows [rowFrom, rowTo) of the horizontally resized image,
	// restricted to the crop's columns (or the source itself when no
	// horizontal pass is needed, with midX selecting the crop's columns).
	mid, midW, midX := src, w, win.x0
	midRow0 := 0
	if needH {
		hor := precomputeCoeffs(w, win.outW, win.x0, win.w)
		hk := hor.fixedPoint()
		midW, midX, midRow0 = win.w, 0, rowFrom
		mid = make([]uint8, (rowTo-rowFrom)*win.w*ch)
		for y := rowFrom; y < rowTo; y++ {
			horizontalRow(mid[(y-rowFrom)*win.w*ch:(y-rowFrom+1)*win.w*ch], src[y*w*ch:(y+1)*w*ch], ch, hor, hk)
		}
	}

	dst := make([]uint8, win.w*win.h*ch)
	acc := make([]int32, win.w*ch)
	for yy := range win.h {
		out := dst[yy*win.w*ch : (yy+1)*win.w*ch]
		if !needV {
			row := win.y0 + yy - midRow0
			copy(out, mid[(row*midW+midX)*ch:])
			continue
		}
		// Accumulating whole rows keeps the reads sequential; the sum is the
		// same integer sum Pillow forms pixel by pixel.
		for i := range acc {
			acc[i] = 1 << (precisionBits - 1)
		}
		k := vk[yy*vert.ksize : yy*vert.ksize+vert.count[yy]]
		top := vert.first[yy] - midRow0
		for y, ky := range k {
			row := mid[((top+y)*midW+midX)*ch:]
			row = row[:len(acc)]
			for i, v := range row {
				acc[i] += int32(v) * ky
			}
		}
		for i, a := range acc {
			out[i] = clip8(a)
		}
	}
	return dst
}

// horizontalRow runs Pillow's horizontal 8-bit pass over one row, with the
// channel loop unrolled for the common layouts.
func horizontalRow(out, in []uint8, ch int, hor coeffs, hk []int32) {
	const half = 1 << (precisionBits - 1)
	for xx := range len(out) / ch {
		k := hk[xx*hor.ksize : xx*hor.ksize+hor.count[xx]]
		px := in[hor.first[xx]*ch : (hor.first[xx]+len(k))*ch]
		switch ch {
		case 1:
			acc := int32(half)
			for x, kx := range k {
				acc += int32(px[x]) * kx
			}
			out[xx] = clip8(acc)
		case 3:
			a0, a1, a2 := int32(half), int32(half), int32(half)
			for x, kx := range k {
				p := px[3*x : 3*x+3]
				a0 += int32(p[0]) * kx
				a1 += int32(p[1]) * kx
				a2 += int32(p[2]) * kx
			}
			out[3*xx], out[3*xx+1], out[3*xx+2] = clip8(a0), clip8(a1), clip8(a2)
		default:
			for c := range ch {
				acc := int32(half)
				for x, kx := range k {
					acc += int32(px[x*ch+c]) * kx
				}
				out[xx*ch+c] = clip8(acc)
			}
		}
	}
}

// resampleBicubic32 is Pillow's 32-bit path for mode "I" images (16-bit
// greyscale PNGs): the same coefficients in double precision, rounded half
// away from zero after each pass and never clipped.
func resampleBicubic32(src []int32, w, h int, win window) []int32 {
	needH := win.outW != w
	needV := win.outH != h

	var vert coeffs
	rowFrom, rowTo := win.y0, win.y0+win.h
	if needV {
		vert = precomputeCoeffs(h, win.outH, win.y0, win.h)
		rowFrom = vert.first[0]
		rowTo = vert.first[win.h-1] + vert.count[win.h-1]
	}
	mid, midW, midX, midRow0 := src, w, win.x0, 0
	if needH {
		hor := precomputeCoeffs(w, win.outW, win.x0, win.w)
		midW, midX, midRow0 = win.w, 0, rowFrom
		mid = make([]int32, (rowTo-rowFrom)*win.w)
		for y := rowFrom; y < rowTo; y++ {
			in := src[y*w : (y+1)*w]
			for xx := range win.w {
				k := hor.weight[xx*hor.ksize : xx*hor.ksize+hor.count[xx]]
				ss := 0.0
				for x, kx := range k {
					ss += float64(float64(in[hor.first[xx]+x]) * kx)
				}
				mid[(y-rowFrom)*win.w+xx] = roundUp(ss)
			}
		}
	}
	dst := make([]int32, win.w*win.h)
	for yy := range win.h {
		out := dst[yy*win.w : (yy+1)*win.w]
		if !needV {
			row := win.y0 + yy - midRow0
			copy(out, mid[row*midW+midX:])
			continue
		}
		k := vert.weight[yy*vert.ksize : yy*vert.ksize+vert.count[yy]]
		top := vert.first[yy] - midRow0
		for x := range win.w {
			ss := 0.0
			for y, ky := range k {
				ss += float64(float64(mid[(top+y)*midW+midX+x]) * ky)
			}
			out[x] = roundUp(ss)
		}
	}
	return dst
}

// roundUp is Pillow's ROUND_UP macro: round half away from zero, then truncate.
func roundUp(f float64) int32 {
	if f >= 0 {
		return int32(f + 0.5)
	}
	return int32(f - 0.5)
}

// nearestIndices is Pillow's ImagingScaleAffine table for one axis: the input
// index sampled by each output position in [from, from+n), or -1 outside the
// input. The position is accumulated by repeated addition from the first
// pixel centre, exactly as Pillow does, so rounding drift matches too.
func nearestIndices(inSize, outSize, from, n int) []int {
	step := float64(float32(inSize)) / float64(outSize)
	pos := step * 0.5
	idx := make([]int, n)
	for x := range from + n {
		if x >= from {
			in := -1
			if pos >= 0 {
				in = int(pos)
			}
			if in >= inSize {
				in = -1
			}
			idx[x-from] = in
		}
		pos += step
	}
	return idx
}

// resampleNearest8 resizes like Pillow's NEAREST path (used for palette and
// bilevel images), returning only the crop window. The caller handles the
// unchanged-size case, where Pillow copies instead. Positions that fall
// outside the input stay 0, as Pillow's fill does.
func resampleNearest8(src []uint8, w, h, ch int, win window) []uint8 {
	xs := nearestIndices(w, win.outW, win.x0, win.w)
	ys := nearestIndices(h, win.outH, win.y0, win.h)
	dst := make([]uint8, win.w*win.h*ch)
	for yy, sy := range ys {
		if sy < 0 {
			continue
		}
		for xx, sx := range xs {
			if sx < 0 {
				continue
			}
			copy(dst[(yy*win.w+xx)*ch:(yy*win.w+xx+1)*ch], src[(sy*w+sx)*ch:])
		}
	}
	return dst
}
