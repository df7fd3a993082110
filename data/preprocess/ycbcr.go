package preprocess

import "image"

// Go's image.YCbCr leaves chroma subsampled and, when drawn, upsamples it by
// repetition. Pillow gets RGB from libjpeg-turbo (JPEG) or libwebp (WebP),
// which interpolate chroma ("fancy upsampling") and use their own integer
// colour transforms. These functions redo that step from the decoded planes,
// so the only remaining difference from Pillow is the decoder's inverse DCT.

// chromaFactors returns how many luma samples one chroma sample spans.
func chromaFactors(r image.YCbCrSubsampleRatio) (h, v int, ok bool) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 1, 1, true
	case image.YCbCrSubsampleRatio422:
		return 2, 1, true
	case image.YCbCrSubsampleRatio420:
		return 2, 2, true
	case image.YCbCrSubsampleRatio440:
		return 1, 2, true
	case image.YCbCrSubsampleRatio411:
		return 4, 1, true
	case image.YCbCrSubsampleRatio410:
		return 4, 2, true
	}
	return 0, 0, false
}

// plane is a chroma plane at its own (subsampled) resolution.
type plane struct {
	pix    []uint8
	stride int
	w, h   int // samples that belong to the image (libjpeg's downsampled_width/height)
}

// jpegChromaRow fills output row y of a chroma plane upsampled the way
// libjpeg-turbo 2.1 does with do_fancy_upsampling on (Pillow's setting):
// triangular filters for 2×1, 2×2 (only when the plane is wider than 2
// samples) and 1×2, plain repetition otherwise. colsum is scratch space of
// p.w values.
func jpegChromaRow(row []uint8, p plane, hs, vs, y int, colsum []int32) {
	upsampleRow(row, p, hs, vs, (hs == 2 && p.w > 2) || (hs == 1 && vs == 2), y, colsum)
}

// upsampleRow is jpegChromaRow with libjpeg's choice of filter made by the
// caller: fancy selects the triangular filters (valid for 2×1, 2×2 and 1×2),
// otherwise samples are replicated (libjpeg's h2v1/h2v2/int_upsample).
func upsampleRow(row []uint8, p plane, hs, vs int, fancy bool, y int, colsum []int32) {
	cy := y / vs
	near := p.pix[min(cy, p.h-1)*p.stride:]
	if !fancy {
		for x := range row {
			row[x] = near[min(x/hs, p.w-1)]
		}
		return
	}
	// The nearer chroma row weighs 3, the other one 1 (the row itself at the
	// image's top and bottom edges, as libjpeg's context rows replicate it).
	// Even and odd outputs get different rounding biases so that errors do
	// not drift in one direction.
	farRow := p.pix[min(max(cy+2*(y%2)-1, 0), p.h-1)*p.stride:]
	last := p.w - 1
	switch {
	case hs == 2 && vs == 2: // h2v2_fancy_upsample
		for cx := range colsum {
			colsum[cx] = 3*int32(near[cx]) + int32(farRow[cx])
		}
		for x := range row {
			cx := x / 2
			if x%2 == 0 {
				row[x] = uint8((3*colsum[cx] + colsum[max(cx-1, 0)] + 8) >> 4)
			} else {
				row[x] = uint8((3*colsum[cx] + colsum[min(cx+1, last)] + 7) >> 4)
			}
		}
	case hs == 2: // h2v1_fancy_upsample
		for x := range row {
			cx := x / 2
			if x%2 == 0 {
				row[x] = uint8((3*int32(near[cx]) + int32(near[max(cx-1, 0)]) + 1) >> 2)
			} else {
				row[x] = uint8((3*int32(near[cx]) + int32(near[min(cx+1, last)]) + 2) >> 2)
			}
		}
	default: // h1v2_fancy_upsample
		bias := int32(1 + y%2)
		for x := range row {
			row[x] = uint8((3*int32(near[x]) + int32(farRow[x]) + bias) >> 2)
		}
	}
}

// upsampleSpan is upsampleRow restricted to the output columns
// [x0, x0+len(row)): only the chroma the resampler will read is computed.
// scratch holds at least p.w+2 values.
func upsampleSpan(row []uint8, p plane, hs, vs int, fancy bool, y, x0 int, scratch []int32) {
	x1 := x0 + len(row)
	near := p.pix[min(y/vs, p.h-1)*p.stride:]
	last := p.w - 1
	if !fancy {
		if hs == 1 {
			copy(row, near[x0:x1])
			return
		}
		for x := x0; x < x1; x++ {
			row[x-x0] = near[min(x/hs, last)]
		}
		return
	}
	far := p.pix[min(max(y/vs+2*(y%2)-1, 0), p.h-1)*p.stride:]
	if hs == 1 { // h1v2_fancy_upsample
		bias := int32(1 + y%2)
		near, far := near[x0:x1], far[x0:x1]
		for i := range row {
			row[i] = uint8((3*int32(near[i]) + int32(far[i]) + bias) >> 2)
		}
		return
	}
	// The horizontal triangle filter of h2v1_fancy_upsample (on chroma
	// samples) and h2v2_fancy_upsample (on column sums 3·near + far):
	// output 2c is (3·v[c] + v[c-1] + bias0) >> shift and output 2c+1 is
	// (3·v[c] + v[c+1] + bias1) >> shift, the edge samples repeated.
	// v is stored shifted by one with the edges padded, so the loop
	// needs no clamping: v[c] is at padded[c+1].
	c0, c1 := x0/2, (x1-1)/2
	padded := scratch[:p.w+2]
	lo, hi := max(c0-1, 0), min(c1+1, last)
	bias0, bias1, shift := int32(1), int32(2), uint(2)
	if vs == 2 {
		for c := lo; c <= hi; c++ {
			padded[c+1] = 3*int32(near[c]) + int32(far[c])
		}
		bias0, bias1, shift = 8, 7, 4
	} else {
		for c := lo; c <= hi; c++ {
			padded[c+1] = int32(near[c])
		}
	}
	padded[0], padded[last+2] = padded[1], padded[last+1]
	x := x0
	if x%2 == 1 {
		c := x / 2
		row[0] = uint8((3*padded[c+1] + padded[c+2] + bias1) >> shift)
		x++
	}
	for ; x+2 <= x1; x += 2 {
		c := x / 2
		v := padded[c : c+3 : c+3]
		a := 3 * v[1]
		o := row[x-x0 : x-x0+2 : x-x0+2]
		o[0] = uint8((a + v[0] + bias0) >> shift)
		o[1] = uint8((a + v[2] + bias1) >> shift)
	}
	if x < x1 {
		c := x / 2
		row[x-x0] = uint8((3*padded[c+1] + padded[c] + bias0) >> shift)
	}
}

// yccTables holds libjpeg's build_ycc_rgb_table lookup tables, so that the
// per-pixel conversion is table lookups and adds, as in ycc_rgb_convert.
type yccTables struct {
	crR, cbB   [256]int32 // nearest int to 1.402·(cr-128) and 1.772·(cb-128)
	crG, cbG   [256]int32 // -0.71414·(cr-128) and -0.34414·(cb-128)+½, scaled by 2^16
	rangeLimit [1024]uint8
}

// ycc is computed once; it is never written afterwards.
var ycc = newYCCTables()

func newYCCTables() *yccTables {
	t := &yccTables{}
	const scaleBits, oneHalf = 16, 1 << 15
	for i := range 256 {
		x := int32(i - 128)
		t.crR[i] = (91881*x + oneHalf) >> scaleBits
		t.cbB[i] = (116130*x + oneHalf) >> scaleBits
		t.crG[i] = -46802 * x
		t.cbG[i] = -22554*x + oneHalf
	}
	for i := range t.rangeLimit {
		t.rangeLimit[i] = clampByte(int32(i) - 384)
	}
	return t
}

// convert is ycc_rgb_convert over one row of full-resolution planes.
func (t *yccTables) convert(out, y, cb, cr []uint8) {
	n := len(y)
	cb, cr, out = cb[:n], cr[:n], out[:3*n]
	for i, yv := range y {
		yy := int32(yv) + 384
		b, r := cb[i], cr[i]
		px := out[3*i : 3*i+3 : 3*i+3]
		px[0] = t.rangeLimit[(yy+t.crR[r])&1023]
		px[1] = t.rangeLimit[(yy+(t.cbG[b]+t.crG[r])>>16)&1023]
		px[2] = t.rangeLimit[(yy+t.cbB[b])&1023]
	}
}

// pixel converts one YCbCr sample; the chroma values come from the
// upsampler, already in 0..255.
func (t *yccTables) pixel(px []uint8, y, cb, cr int32) {
	yy := y + 384
	px = px[:3]
	px[0] = t.rangeLimit[(yy+t.crR[cr&255])&1023]
	px[1] = t.rangeLimit[(yy+(t.cbG[cb&255]+t.crG[cr&255])>>16)&1023]
	px[2] = t.rangeLimit[(yy+t.cbB[cb&255])&1023]
}

// convertFancy2 fuses libjpeg's h2v1 or h2v2 fancy upsampling of both chroma
// planes with the colour conversion, for output columns [x0, x0+len(out)/3)
// of one row: the common 4:2:0 and 4:2:2 JPEGs go through here. cbv and crv
// are the chroma values the horizontal filter runs over (samples for h2v1,
// column sums 3·near+far for h2v2), padded by one repeated sample at each
// end, so that chroma sample c is at index c+1; bias0, bias1 and shift are
// the filter's (1, 2, 2 for h2v1; 8, 7, 4 for h2v2).
func (t *yccTables) convertFancy2(out, y []uint8, cbv, crv []int32, x0 int, bias0, bias1 int32, shift uint) {
	x1 := x0 + len(out)/3
	x := x0
	if x%2 == 1 {
		c := x / 2
		cb := (3*cbv[c+1] + cbv[c+2] + bias1) >> shift
		cr := (3*crv[c+1] + crv[c+2] + bias1) >> shift
		t.pixel(out[0:3], int32(y[0]), cb, cr)
		x++
	}
	for ; x+2 <= x1; x += 2 {
		c := x / 2
		b, r := cbv[c:c+3:c+3], crv[c:c+3:c+3]
		b3, r3 := 3*b[1], 3*r[1]
		o := 3 * (x - x0)
		px := out[o : o+6 : o+6]
		yy := y[x-x0 : x-x0+2 : x-x0+2]
		t.pixel(px[0:3], int32(yy[0]), (b3+b[0]+bias0)>>shift, (r3+r[0]+bias0)>>shift)
		t.pixel(px[3:6], int32(yy[1]), (b3+b[2]+bias1)>>shift, (r3+r[2]+bias1)>>shift)
	}
	if x < x1 {
		c := x / 2
		cb := (3*cbv[c+1] + cbv[c] + bias0) >> shift
		cr := (3*crv[c+1] + crv[c] + bias0) >> shift
		t.pixel(out[3*(x-x0):], int32(y[x-x0]), cb, cr)
	}
}

// chromaSums fills padded[c+1] for the chroma samples c in [lo, hi] with
// what the horizontal fancy filter runs over for output row y (the samples
// of the nearer row for h2v1; 3·nearer + farther for h2v2), and pads both
// ends of the plane by repeating its edge samples.
func chromaSums(padded []int32, p plane, vs, y, lo, hi int) {
	near := p.pix[min(y/vs, p.h-1)*p.stride:]
	near = near[:hi+1]
	if vs == 2 {
		far := p.pix[min(max(y/vs+2*(y%2)-1, 0), p.h-1)*p.stride:]
		far = far[:hi+1]
		for c := lo; c <= hi; c++ {
			padded[c+1] = 3*int32(near[c]) + int32(far[c])
		}
	} else {
		for c := lo; c <= hi; c++ {
			padded[c+1] = int32(near[c])
		}
	}
	padded[0], padded[p.w+1] = padded[1], padded[p.w]
}

// jpegYCCToRGB is libjpeg's ycc_rgb_convert: JFIF full-range YCbCr with
// 16-bit fixed-point coefficients, rounded as its lookup tables round them.
func jpegYCCToRGB(y, cb, cr int32) (r, g, b uint8) {
	const (
		scaleBits = 16
		oneHalf   = 1 << (scaleBits - 1)
		fixCrR    = 91881  // FIX(1.40200)
		fixCbB    = 116130 // FIX(1.77200)
		fixCrG    = 46802  // FIX(0.71414)
		fixCbG    = 22554  // FIX(0.34414)
	)
	cb -= 128
	cr -= 128
	r = clampByte(y + (fixCrR*cr+oneHalf)>>scaleBits)
	g = clampByte(y + (-fixCbG*cb+oneHalf-fixCrG*cr)>>scaleBits)
	b = clampByte(y + (fixCbB*cb+oneHalf)>>scaleBits)
	return r, g, b
}

// webpYUVToRGB is libwebp's VP8YuvToRgb: VP8 stores limited-range BT.601
// ("studio swing"), converted with 14-bit fixed point (YUV_FIX2 = 6).
func webpYUVToRGB(y, u, v int32) (r, g, b uint8) {
	multHi := func(v, coeff int32) int32 { return (v * coeff) >> 8 }
	clip := func(v int32) uint8 {
		const mask = (256 << 6) - 1
		if v&^mask == 0 {
			return uint8(v >> 6)
		}
		if v < 0 {
			return 0
		}
		return 255
	}
	yy := multHi(y, 19077)
	r = clip(yy + multHi(v, 26149) - 14234)
	g = clip(yy - multHi(u, 6419) - multHi(v, 13320) + 8708)
	b = clip(yy + multHi(u, 33050) - 17685)
	return r, g, b
}

// upsampleWebP expands a 2×2-subsampled VP8 chroma plane to w×h like
// libwebp's fancy upsampler (UpsampleRgbLinePair driven by EmitFancyRGB):
// output rows come in pairs between two chroma rows; the first row, and the
// last row of an even-height image, use one chroma row only. Within a row
// the (9,3,3,1)/16 filter is evaluated through libwebp's two-diagonal
// approximation, whose rounding differs from the exact filter.
func upsampleWebP(p plane, w, h int) []uint8 {
	out := make([]uint8, w*h)
	for y := range h {
		var top, cur int // chroma rows; the output row is nearer to top when upper
		upper := true
		switch {
		case y == 0:
			top, cur = 0, 0
		case y == h-1 && h%2 == 0:
			top, cur = h/2-1, h/2-1
		case y%2 == 1:
			top, cur = (y-1)/2, (y+1)/2
		default:
			top, cur, upper = y/2-1, y/2, false
		}
		webpLine(out[y*w:(y+1)*w], p, top, cur, upper)
	}
	return out
}

// webpLine fills one output row from chroma rows top and cur; upper selects
// libwebp's top_dst (nearer to top) or bottom_dst (nearer to cur).
func webpLine(row []uint8, p plane, top, cur int, upper bool) {
	t := func(x int) int32 { return int32(p.pix[top*p.stride+x]) }
	c := func(x int) int32 { return int32(p.pix[cur*p.stride+x]) }
	n := len(row)
	tl, l := t(0), c(0)
	if upper {
		row[0] = uint8((3*tl + l + 2) >> 2)
	} else {
		row[0] = uint8((3*l + tl + 2) >> 2)
	}
	last := (n - 1) >> 1
	for x := 1; x <= last; x++ {
		tx, cx := t(x), c(x)
		avg := tl + tx + l + cx + 8
		diag12 := (avg + 2*(tx+l)) >> 3
		diag03 := (avg + 2*(tl+cx)) >> 3
		if upper {
			row[2*x-1] = uint8((diag12 + tl) >> 1)
			row[2*x] = uint8((diag03 + tx) >> 1)
		} else {
			row[2*x-1] = uint8((diag03 + l) >> 1)
			row[2*x] = uint8((diag12 + cx) >> 1)
		}
		tl, l = tx, cx
	}
	if n%2 == 0 {
		if upper {
			row[n-1] = uint8((3*tl + l + 2) >> 2)
		} else {
			row[n-1] = uint8((3*l + tl + 2) >> 2)
		}
	}
}

// ycbcrToRGB converts a decoded YCbCr image to interleaved RGB. webpRange
// selects VP8's limited-range transform and libwebp's upsampler instead of
// libjpeg's. It returns ok=false for layouts it does not model (a sub-image
// whose origin is not at 0,0, or an unknown subsampling); the caller then
// falls back to Go's own conversion.
func ycbcrToRGB(m *image.YCbCr, webpRange bool) (rgb []uint8, ok bool) {
	hs, vs, known := chromaFactors(m.SubsampleRatio)
	if !known || m.Rect.Min != (image.Point{}) {
		return nil, false
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	cw, ch := (w+hs-1)/hs, (h+vs-1)/vs
	cbPlane := plane{m.Cb, m.CStride, cw, ch}
	crPlane := plane{m.Cr, m.CStride, cw, ch}
	if webpRange {
		if hs != 2 || vs != 2 {
			return nil, false
		}
		cb, cr := upsampleWebP(cbPlane, w, h), upsampleWebP(crPlane, w, h)
		rgb = make([]uint8, w*h*3)
		for y := range h {
			convertRow(rgb[y*w*3:(y+1)*w*3], m.Y[y*m.YStride:], cb[y*w:], cr[y*w:], webpYUVToRGB)
		}
		return rgb, true
	}
	// Row by row, so the full-resolution chroma planes are never held.
	cbRow, crRow := make([]uint8, w), make([]uint8, w)
	colsum := make([]int32, cw)
	rgb = make([]uint8, w*h*3)
	for y := range h {
		jpegChromaRow(cbRow, cbPlane, hs, vs, y, colsum)
		jpegChromaRow(crRow, crPlane, hs, vs, y, colsum)
		convertRow(rgb[y*w*3:(y+1)*w*3], m.Y[y*m.YStride:], cbRow, crRow, jpegYCCToRGB)
	}
	return rgb, true
}

// convertRow applies a colour transform to one row of full-resolution planes.
func convertRow(out, y, cb, cr []uint8, convert func(y, cb, cr int32) (uint8, uint8, uint8)) {
	for x := range len(out) / 3 {
		out[3*x], out[3*x+1], out[3*x+2] = convert(int32(y[x]), int32(cb[x]), int32(cr[x]))
	}
}

func clampByte(v int32) uint8 {
	return uint8(min(max(v, 0), 255))
}
