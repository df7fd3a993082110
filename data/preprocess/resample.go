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

// window says which part of the source is resized to what, and which part
// of the result is kept: the source box [bx, bx+bw)×[by, by+bh) is resized
// to outW×outH (as if it had been cropped out first, which is how
// torchvision's crops and Pillow's resize compose), and the output is the
// w×h window at (x0, y0) of that resized image.
type window struct {
	bx, by, bw, bh int // source box
	outW, outH     int // size of the full resized image
	x0, y0         int // top-left corner of the kept window in the resized image
	w, h           int // kept window size
}

// spans returns the source rows and columns (box-relative) the resampler
// reads, and the coefficients of each pass that runs.
func (win window) spans() (hor, vert coeffs, needH, needV bool, col0, col1, row0, row1 int) {
	needH, needV = win.outW != win.bw, win.outH != win.bh
	col0, col1 = win.x0, win.x0+win.w
	row0, row1 = win.y0, win.y0+win.h
	if needH {
		hor = precomputeCoeffs(win.bw, win.outW, win.x0, win.w)
		col0, col1 = hor.first[0], hor.first[win.w-1]+hor.count[win.w-1]
		for i, c := range hor.count { // first+count is monotonic, but be safe with empty kernels
			col1 = max(col1, hor.first[i]+c)
		}
	}
	if needV {
		vert = precomputeCoeffs(win.bh, win.outH, win.y0, win.h)
		row0, row1 = vert.first[0], vert.first[win.h-1]+vert.count[win.h-1]
		for i, c := range vert.count {
			row1 = max(row1, vert.first[i]+c)
		}
	}
	return
}

// resampleBicubic8 resizes an interleaved 8-bit source with ch channels the
// way Pillow's ImagingResample does for BICUBIC, returning only the kept
// window. As in Pillow, each pass runs only if its dimension changes and the
// horizontal pass runs first, its output rounded and clipped to 8 bits.
// Rows are consumed as the source produces them; with premultiply, each row
// is premultiplied by its alpha first (Pillow's RGBA→RGBa before resizing).
func resampleBicubic8(src rowSource, ch int, win window, premul bool) ([]uint8, error) {
	hor, vert, needH, needV, col0, col1, row0, row1 := win.spans()
	midW := win.w
	if !needH {
		midW = col1 - col0
	}
	mid := make([]uint8, (row1-row0)*midW*ch)
	var hk []int32
	var hk64 []int64
	if needH {
		hk = hor.fixedPoint()
		hk64 = make([]int64, len(hk))
		for i, k := range hk {
			hk64[i] = int64(k)
		}
		for i := range hor.first {
			hor.first[i] -= col0 // index the row slice, which starts at col0
		}
	}
	var pending []uint8 // a row waiting for its partner in the two-row pass
	pendingY := 0
	var packed []int64
	var premulBuf []uint8
	err := src.readRows(win.by+row0, win.by+row1, win.bx+col0, win.bx+col1, func(y int, row []uint8) {
		if premul {
			premulBuf = append(premulBuf[:0], row...)
			premultiply(premulBuf)
			row = premulBuf
		}
		r := y - win.by - row0
		if !needH {
			copy(mid[r*midW*ch:(r+1)*midW*ch], row)
			return
		}
		if len(pending) == 0 {
			pending = append(pending, row...)
			pendingY = r
			return
		}
		if cap(packed) < len(row) {
			packed = make([]int64, len(row))
		}
		horizontalRows2(mid[pendingY*midW*ch:(pendingY+1)*midW*ch], mid[r*midW*ch:(r+1)*midW*ch],
			pending, row, ch, hor, hk64, packed[:len(row)])
		pending = pending[:0]
	})
	if err != nil {
		return nil, err
	}
	if len(pending) > 0 {
		horizontalRow(mid[pendingY*midW*ch:(pendingY+1)*midW*ch], pending, ch, hor, hk)
	}

	dst := make([]uint8, win.w*win.h*ch)
	midX := 0
	if !needH {
		midX = win.x0 - col0
	}
	if !needV {
		for yy := range win.h {
			row := win.y0 + yy - row0
			copy(dst[yy*win.w*ch:(yy+1)*win.w*ch], mid[(row*midW+midX)*ch:])
		}
		return dst, nil
	}
	vk := vert.fixedPoint()
	verticalPass(dst, mid, midW, midX, ch, win, vert, vk, row0)
	return dst, nil
}

// verticalPass runs Pillow's vertical 8-bit pass from the horizontally
// resized rows in mid (starting at source row row0) into dst. Accumulating
// whole rows keeps the reads sequential; as in horizontalRows2, two
// neighbouring samples share one int64 (low and high 32 bits), so one
// multiplication serves both, and taps are taken two at a time to halve the
// accumulator traffic. Each half holds exactly the int32 sum Pillow forms
// pixel by pixel (it never overflows), recovered with the low half's carry.
func verticalPass(dst, mid []uint8, midW, midX, ch int, win window, vert coeffs, vk []int32, row0 int) {
	n := win.w * ch
	n2 := n / 2
	acc := make([]int64, n2+1)
	const half2 = 1<<(precisionBits-1) | 1<<(precisionBits-1)<<32
	stride := midW * ch
	for yy := range win.h {
		out := dst[yy*n : (yy+1)*n]
		k := vk[yy*vert.ksize : yy*vert.ksize+vert.count[yy]]
		top := vert.first[yy] - row0
		base := (top*midW + midX) * ch
		a := acc[:n2]
		y := 0
		if len(k) >= 2 {
			r0 := mid[base : base+2*n2]
			r1 := mid[base+stride : base+stride+2*n2]
			k0, k1 := int64(k[0]), int64(k[1])
			for i := range a {
				a[i] = half2 + (int64(r0[2*i])|int64(r0[2*i+1])<<32)*k0 + (int64(r1[2*i])|int64(r1[2*i+1])<<32)*k1
			}
			y = 2
		} else {
			for i := range a {
				a[i] = half2
			}
		}
		for ; y+1 < len(k); y += 2 {
			r0 := mid[base+y*stride : base+y*stride+2*n2]
			r1 := mid[base+(y+1)*stride : base+(y+1)*stride+2*n2]
			k0, k1 := int64(k[y]), int64(k[y+1])
			for i := range a {
				a[i] += (int64(r0[2*i])|int64(r0[2*i+1])<<32)*k0 + (int64(r1[2*i])|int64(r1[2*i+1])<<32)*k1
			}
		}
		if y < len(k) {
			r0 := mid[base+y*stride : base+y*stride+2*n2]
			k0 := int64(k[y])
			for i := range a {
				a[i] += (int64(r0[2*i]) | int64(r0[2*i+1])<<32) * k0
			}
		}
		for i, v := range a {
			lo := int32(v)
			hi := int32((v - int64(lo)) >> 32)
			out[2*i], out[2*i+1] = clip8(lo), clip8(hi)
		}
		if n%2 == 1 {
			v := int32(1 << (precisionBits - 1))
			for y, ky := range k {
				v += int32(mid[base+y*stride+n-1]) * ky
			}
			out[n-1] = clip8(v)
		}
	}
}

// horizontalRows2 runs the horizontal pass over two rows at once. Both rows
// share the coefficients, so each sample of the first row and the same
// sample of the second are packed into one int64, low and high 32 bits, and
// one multiplication serves both. Pillow's accumulator is an int32 that
// does not overflow, so each half's sum fits in 32 bits and is recovered
// exactly from the 64-bit sum, carries from the low half included. The
// packed samples are stored one plane per channel, which keeps the inner
// loops free of bounds checks.
func horizontalRows2(out0, out1, in0, in1 []uint8, ch int, hor coeffs, hk []int64, packed []int64) {
	w := len(in0) / ch
	in1 = in1[:len(in0)]
	var planes [4][]int64
	for c := range min(ch, len(planes)) {
		planes[c] = packed[c*w : (c+1)*w]
	}
	switch ch {
	case 1:
		p0 := planes[0]
		for i, v := range in0 {
			p0[i] = int64(v) | int64(in1[i])<<32
		}
	case 3:
		p0, p1, p2 := planes[0][:w], planes[1][:w], planes[2][:w]
		for i := range w {
			a, b := in0[3*i:3*i+3:3*i+3], in1[3*i:3*i+3:3*i+3]
			p0[i] = int64(a[0]) | int64(b[0])<<32
			p1[i] = int64(a[1]) | int64(b[1])<<32
			p2[i] = int64(a[2]) | int64(b[2])<<32
		}
	default:
		for c := range ch {
			p := packed[c*w : (c+1)*w]
			for i := range p {
				p[i] = int64(in0[i*ch+c]) | int64(in1[i*ch+c])<<32
			}
		}
	}
	const half = 1<<(precisionBits-1) | 1<<(precisionBits-1)<<32
	split := func(a int64) (uint8, uint8) {
		lo := int32(a)
		hi := int32((a - int64(lo)) >> 32)
		return clip8(lo), clip8(hi)
	}
	for xx := range len(out0) / ch {
		k := hk[xx*hor.ksize : xx*hor.ksize+hor.count[xx]]
		f := hor.first[xx]
		switch ch {
		case 1:
			out0[xx], out1[xx] = split(half + dot1(planes[0][f:f+len(k)], k))
		case 3:
			a0, a1, a2 := dot3(planes[0][f:f+len(k)], planes[1][f:f+len(k)], planes[2][f:f+len(k)], k)
			o := 3 * xx
			out0[o], out1[o] = split(half + a0)
			out0[o+1], out1[o+1] = split(half + a1)
			out0[o+2], out1[o+2] = split(half + a2)
		case 4:
			a0, a1 := dot2(planes[0][f:f+len(k)], planes[1][f:f+len(k)], k)
			a2, a3 := dot2(planes[2][f:f+len(k)], planes[3][f:f+len(k)], k)
			o := 4 * xx
			out0[o], out1[o] = split(half + a0)
			out0[o+1], out1[o+1] = split(half + a1)
			out0[o+2], out1[o+2] = split(half + a2)
			out0[o+3], out1[o+3] = split(half + a3)
		default:
			for c := range ch {
				out0[xx*ch+c], out1[xx*ch+c] = split(half + dot1(packed[c*w+f:c*w+f+len(k)], k))
			}
		}
	}
}

// The dot products are small functions of their own, kept out of line, so
// that the accumulators stay in registers; inlined into the pass above they
// are spilled to the stack, which makes the pass twice as slow.

//go:noinline
func dot1(p, k []int64) int64 {
	p = p[:len(k)]
	var a int64
	for x, kx := range k {
		a += p[x] * kx
	}
	return a
}

//go:noinline
func dot2(p0, p1, k []int64) (a0, a1 int64) {
	p0, p1 = p0[:len(k)], p1[:len(k)]
	for x, kx := range k {
		a0 += p0[x] * kx
		a1 += p1[x] * kx
	}
	return a0, a1
}

//go:noinline
func dot3(p0, p1, p2, k []int64) (a0, a1, a2 int64) {
	p0, p1, p2 = p0[:len(k)], p1[:len(k)], p2[:len(k)]
	for x, kx := range k {
		a0 += p0[x] * kx
		a1 += p1[x] * kx
		a2 += p2[x] * kx
	}
	return a0, a1, a2
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
