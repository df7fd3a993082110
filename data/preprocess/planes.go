package preprocess

import "math"

// This file is the training path's resampler: one 8-bit plane (a JPEG
// component at its own resolution) resized from a box with fractional
// edges to the output size, with Pillow's bicubic filter and fixed-point
// arithmetic (resample.go's), the horizontal pass first. Unlike the eval
// path it does not reproduce a sequence of Pillow calls: it reads a
// subsampled chroma plane directly, with the crop box in that plane's
// coordinates, instead of upsampling it first.

// boxCoeffs is Pillow's precompute_coeffs for resizing the box [in0, in1)
// of an input of inSize samples to outSize, as if the box had been cropped
// out first (torchvision's resized_crop): the filter is centred on each
// output sample's position in the box and stretched by the downscale
// factor, and the taps outside the box's samples are dropped, the rest
// renormalised, as at Pillow's image edges. A box with integer edges gets
// exactly precomputeCoeffs's weights for its crop. It reuses c's slices.
func boxCoeffs(c *coeffs, inSize int, in0, in1 float64, outSize int) {
	// The box's samples, [base, hi): a fractional edge (a subsampled
	// plane's) takes in the sample it cuts through.
	base := min(max(int(math.Floor(in0)), 0), inSize-1)
	hi := min(max(int(math.Ceil(in1)), base+1), inSize)
	frac := in0 - float64(base)
	scale := (in1 - in0) / float64(outSize)
	filterScale := max(scale, 1)
	support := bicubicSupport * filterScale
	c.ksize = int(math.Ceil(support))*2 + 1
	c.first = grow(c.first, outSize)
	c.count = grow(c.count, outSize)
	c.weight = grow(c.weight, outSize*c.ksize)
	ss := 1 / filterScale
	for i := range outSize {
		// Box-relative, as precomputeCoeffs computes for a cropped input;
		// products are rounded separately, as there, so that no FMA moves
		// a weight.
		center := frac + float64(float64(float64(i)+0.5)*scale)
		xmin := max(int(center-support+0.5), 0)
		xmax := min(int(center+support+0.5), hi-base) - xmin
		if xmax <= 0 {
			// Only for a box past the plane's edge, from rounding: the
			// nearest sample.
			xmin, xmax = min(max(int(center), 0), hi-base-1), 1
			c.weight[i*c.ksize] = 1
			c.first[i], c.count[i] = base+xmin, xmax
			continue
		}
		k := c.weight[i*c.ksize : i*c.ksize+xmax]
		ww := 0.0
		for x := range k {
			w := bicubic(float64(float64(float64(x+xmin)-center+0.5) * ss))
			k[x] = w
			ww += w
		}
		if ww != 0 {
			for x := range k {
				k[x] /= ww
			}
		}
		c.first[i], c.count[i] = base+xmin, xmax
	}
}

// fixedPointInto is coeffs.fixedPoint into a reused slice.
func fixedPointInto(dst []int32, c *coeffs) []int32 {
	dst = grow(dst, len(c.weight))
	for i, w := range c.weight {
		if w < 0 {
			dst[i] = int32(-0.5 + w*(1<<precisionBits))
		} else {
			dst[i] = int32(0.5 + w*(1<<precisionBits))
		}
	}
	return dst
}

// planeScratch holds the buffers of resamplePlane for reuse.
type planeScratch struct {
	hor, vert, tmp coeffs
	hk             []int64
	vk             []int32
	mid            []int64
	packed         []int64
	acc            []int64
	vec            vectorScratch // the vector kernel's buffers, in builds that have it
	// scalar keeps resamplePlane on the scalar kernel, which tests compare
	// the vector one with.
	scalar bool
}

// axis is one direction of a plane's resize. The crop box [in0, in1) is
// in the pixels of the decoded image, whose extent is size; the plane has
// samples samples, each spanning factor pixels (1, 2 or 4: a subsampled
// chroma plane), which libjpeg fills in either with its triangle filter
// (fancy, for a factor of 2) or by repetition. With a factor of 1 the box
// is in the plane's samples and may have fractional edges.
type axis struct {
	in0, in1      float64
	size, samples int
	factor        int
	fancy         bool
}

// coeffs computes the axis's resize coefficients for out output samples,
// over the plane's own samples: for a subsampled plane, those of resizing
// the upsampled plane (as the general path does) folded through the
// upsampling weights, so that the chroma is never upsampled as such.
func (a axis) coeffs(c, tmp *coeffs, out int) {
	if a.factor == 1 {
		boxCoeffs(c, a.samples, a.in0, a.in1, out)
		return
	}
	boxCoeffs(tmp, a.size, a.in0, a.in1, out)
	c.ksize = tmp.ksize/a.factor + 3
	c.first = grow(c.first, out)
	c.count = grow(c.count, out)
	c.weight = grow(c.weight, out*c.ksize)
	last := a.samples - 1
	for i := range out {
		k := c.weight[i*c.ksize : (i+1)*c.ksize]
		clear(k)
		f, n := tmp.first[i], tmp.count[i]
		lo := max(f/a.factor-1, 0)
		hi := lo
		add := func(s int, w float64) {
			k[s-lo] += w
			hi = max(hi, s)
		}
		for j, w := range tmp.weight[i*tmp.ksize : i*tmp.ksize+n] {
			x := f + j
			s := min(x/a.factor, last)
			switch {
			case !a.fancy:
				add(s, w)
			case x%2 == 0: // libjpeg's h2v1/h2v2 fancy upsampling: ¾ nearer, ¼ farther
				add(s, 0.75*w)
				add(max(s-1, 0), 0.25*w)
			default:
				add(s, 0.75*w)
				add(min(s+1, last), 0.25*w)
			}
		}
		c.first[i], c.count[i] = lo, hi-lo+1
	}
}

// resamplePlane resizes the crop box of a plane (rows stride bytes apart)
// to outW×outH samples in dst, each direction as its axis says.
func resamplePlane(dst, pix []uint8, stride int, ax, ay axis, outW, outH int, s *planeScratch) {
	hor, vert := &s.hor, &s.vert
	ax.coeffs(hor, &s.tmp, outW)
	ay.coeffs(vert, &s.tmp, outH)
	col0, col1 := hor.first[0], 0
	for i, n := range hor.count {
		col0 = min(col0, hor.first[i])
		col1 = max(col1, hor.first[i]+n)
	}
	row0, row1 := vert.first[0], 0
	for i, n := range vert.count {
		row0 = min(row0, vert.first[i])
		row1 = max(row1, vert.first[i]+n)
	}
	for i := range hor.first {
		hor.first[i] -= col0
	}
	s.vk = fixedPointInto(s.vk, hor)
	s.hk = grow(s.hk, len(s.vk))
	for i, k := range s.vk {
		s.hk[i] = int64(k)
	}
	s.vk = fixedPointInto(s.vk, vert)
	if !s.scalar && resampleVector(dst, pix, stride, col0, col1, row0, row1, outW, outH, hor, vert, s.hk, s.vk, &s.vec) {
		return
	}
	n2 := (outW + 1) / 2 // output pairs per row
	s.mid = grow(s.mid, (row1-row0)*n2)
	s.packed = grow(s.packed, 2*(col1-col0))
	row := func(y int) []uint8 { return pix[y*stride+col0 : y*stride+col1] }
	out := func(y int) []int64 { return s.mid[(y-row0)*n2 : (y-row0+1)*n2] }
	y := row0
	for ; y+3 < row1; y += 4 {
		horizontalPlane4(out(y), out(y+1), out(y+2), out(y+3), row(y), row(y+1), row(y+2), row(y+3), hor, s.hk, s.packed)
	}
	for ; y < row1; y++ {
		// The last rows, one at a time (the other packed half idle).
		in := row(y)
		horizontalPlane4(out(y), nil, nil, nil, in, in, in, in, hor, s.hk, s.packed)
	}
	verticalPacked(dst, s.mid, n2, outW, outH, vert, s.vk, row0, &s.acc)
}

// horizontalPlane4 resizes four rows of one channel horizontally, into
// rows of output pairs packed as verticalPacked reads them (output 2i in
// the low 32 bits, 2i+1 in the high ones). Rows 0 and 1 share the
// multiplications of one int64 (low and high halves), rows 2 and 3 those
// of another, and both share the coefficient loads. A nil output is not
// written.
func horizontalPlane4(out0, out1, out2, out3 []int64, in0, in1, in2, in3 []uint8, hor *coeffs, hk, packed []int64) {
	n := len(in0)
	p01, p23 := packed[:n], packed[n:2*n]
	in1, in2, in3 = in1[:n], in2[:n], in3[:n]
	for i, v := range in0 {
		p01[i] = int64(v) | int64(in1[i])<<32
		p23[i] = int64(in2[i]) | int64(in3[i])<<32
	}
	const half = 1<<(precisionBits-1) | 1<<(precisionBits-1)<<32
	m := len(hor.count)
	var o0, o1, o2, o3 [2]uint8
	for xx := 0; xx < m; xx += 2 {
		for j := range min(2, m-xx) {
			x := xx + j
			k := hk[x*hor.ksize : x*hor.ksize+hor.count[x]]
			f := hor.first[x]
			a01, a23 := dot2(p01[f:], p23[f:], k)
			o0[j], o1[j] = split2(a01 + half)
			o2[j], o3[j] = split2(a23 + half)
		}
		i := xx / 2
		out0[i] = int64(o0[0]) | int64(o0[1])<<32
		if out1 != nil {
			out1[i] = int64(o1[0]) | int64(o1[1])<<32
			out2[i] = int64(o2[0]) | int64(o2[1])<<32
			out3[i] = int64(o3[0]) | int64(o3[1])<<32
		}
	}
}

// verticalPacked is the vertical pass over rows of packed output pairs:
// each multiplication serves two neighbouring samples (as in verticalPass),
// which the horizontal pass has already packed, and taps are taken two at
// a time. dst receives outH rows of outW bytes.
func verticalPacked(dst []uint8, mid []int64, n2, outW, outH int, vert *coeffs, vk []int32, row0 int, accBuf *[]int64) {
	*accBuf = grow(*accBuf, n2)
	acc := *accBuf
	const half2 = 1<<(precisionBits-1) | 1<<(precisionBits-1)<<32
	for yy := range outH {
		k := vk[yy*vert.ksize : yy*vert.ksize+vert.count[yy]]
		base := (vert.first[yy] - row0) * n2
		j := 0
		if len(k) >= 2 {
			r0, r1 := mid[base:base+n2], mid[base+n2:base+2*n2]
			k0, k1 := int64(k[0]), int64(k[1])
			for i := range acc {
				acc[i] = half2 + r0[i]*k0 + r1[i]*k1
			}
			j = 2
		} else {
			for i := range acc {
				acc[i] = half2
			}
		}
		for ; j+1 < len(k); j += 2 {
			r0 := mid[base+j*n2 : base+(j+1)*n2]
			r1 := mid[base+(j+1)*n2 : base+(j+2)*n2]
			k0, k1 := int64(k[j]), int64(k[j+1])
			for i := range acc {
				acc[i] += r0[i]*k0 + r1[i]*k1
			}
		}
		if j < len(k) {
			r0 := mid[base+j*n2 : base+(j+1)*n2]
			k0 := int64(k[j])
			for i := range acc {
				acc[i] += r0[i] * k0
			}
		}
		out := dst[yy*outW : (yy+1)*outW]
		for i, a := range acc[:outW/2] {
			out[2*i], out[2*i+1] = split2(a)
		}
		if outW%2 == 1 {
			out[outW-1], _ = split2(acc[n2-1])
		}
	}
}

// split2 recovers the two int32 sums packed in a (the high half borrowed
// from by a negative low half) and clips them to bytes.
func split2(a int64) (uint8, uint8) {
	lo := int32(a)
	hi := int32((a - int64(lo)) >> 32)
	return clip8(lo), clip8(hi)
}

// grow returns buf resized to n elements, reusing its storage when it is
// large enough; the contents are not cleared.
func grow[T any](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	return buf[:n]
}
