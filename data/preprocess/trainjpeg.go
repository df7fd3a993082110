package preprocess

import (
	"errors"
	"math"

	jpegdec "github.com/bmca/bmca/data/preprocess/internal/jpeg"
)

// The training transform's fast path for JPEGs (Config.DCTScaling with the
// pure-Go decoder). It decodes at the DCT scale of the general path, for
// the same crop, but never builds an RGB image:
//
//   - each component plane is resized on its own from the crop box in its
//     own coordinates straight to the output size (a 4:2:0 image's chroma
//     at scale 1 from its subsampled plane, with no upsampling first), and
//     YCbCr becomes RGB after the resize, on the output pixels only;
//   - the normalised tensor is written from the resized planes;
//   - the decoder's and resampler's buffers are reused from one image to
//     the next.
//
// Grey and RGB JPEGs give the general path's tensor exactly: the luma box
// is the same whole-pixel box, resized with the same coefficients.
// Colour conversion is affine and the resampling weights sum to one, so
// converting YCbCr after resizing changes only roundings and the clipping
// of colours outside the RGB gamut and of bicubic overshoot at sharp edges;
// chroma resized from its subsampled plane instead of libjpeg's fancy
// upsampling differs a little more at colour edges
// (TestTrainPlanarIsClose).

// trainScratch is what one training transform call reuses from the last.
type trainScratch struct {
	jpeg   jpegdec.Scratch
	planes [3][]uint8 // the resized components
	resize planeScratch
}

// normLUT maps each 8-bit value of each RGB channel to its normalised float.
type normLUT [3][256]float32

func (c Config) normLUT() *normLUT {
	var lut normLUT
	for ch := range 3 {
		for v := range 256 {
			lut[ch][v] = (float32(v)/255 - c.Mean[ch]) / c.Std[ch]
		}
	}
	return &lut
}

// errNotPlanar says that a JPEG is not one trainJPEG handles (a layout the
// pure-Go decoder does not read); the caller takes the general path.
var errNotPlanar = errors.New("not a planar JPEG")

// cropBox is a training crop of the full-size image and the DCT scale it
// is decoded at.
type cropBox struct {
	left, top, w, h, scale int
}

// trainJPEG decodes a JPEG, with pick choosing the DCT scale from the
// image's size and setting crop, and returns the normalised crop resized to
// ImageSize. Any decoding error gives errNotPlanar.
func (c Config) trainJPEG(encoded []byte, pick func(w, h int) int, crop *cropBox, s *trainScratch, lut *normLUT) ([]float32, error) {
	img, err := jpegdec.Decode(encoded, jpegdec.Options{ScaleFor: pick, MaxPixels: MaxPixels, Scratch: &s.jpeg})
	if err != nil {
		return nil, errNotPlanar
	}
	// The crop box in the decoded image, rounded to whole pixels as the
	// general path rounds it, so that both resize the same luma box.
	sw, sh := img.Width, img.Height
	left, top, scale := crop.left, crop.top, crop.scale
	bx0, by0, bx1, by1 := left, top, left+crop.w, top+crop.h
	if scale > 1 {
		f := float64(scale)
		bx0, by0 = int(math.Round(float64(left)/f)), int(math.Round(float64(top)/f))
		bx1 = min(int(math.Round(float64(left+crop.w)/f)), sw)
		by1 = min(int(math.Round(float64(top+crop.h)/f)), sh)
		bx1, by1 = max(bx1, bx0+1), max(by1, by0+1)
	}
	size := c.ImageSize
	n := size * size
	for i, comp := range img.Components {
		s.planes[i] = grow(s.planes[i], n)
		ax := axis{in0: bx0, in1: bx1, size: sw, samples: comp.Width, factor: comp.HFactor, fancy: comp.Fancy && comp.HFactor == 2}
		ay := axis{in0: by0, in1: by1, size: sh, samples: comp.Height, factor: comp.VFactor, fancy: comp.Fancy && comp.VFactor == 2}
		resamplePlane(s.planes[i], comp.Pix, comp.Stride, ax, ay, size, size, &s.resize)
	}
	t := make([]float32, 3*n)
	r, g, b := t[:n], t[n:2*n], t[2*n:]
	switch img.ColorSpace {
	case jpegdec.Gray:
		for i, v := range s.planes[0][:n] {
			r[i], g[i], b[i] = lut[0][v], lut[1][v], lut[2][v]
		}
	case jpegdec.RGB:
		p0, p1, p2 := s.planes[0][:n], s.planes[1][:n], s.planes[2][:n]
		for i := range n {
			r[i], g[i], b[i] = lut[0][p0[i]], lut[1][p1[i]], lut[2][p2[i]]
		}
	default: // YCbCr
		ycc.normalise(r, g, b, s.planes[0][:n], s.planes[1][:n], s.planes[2][:n], lut)
	}
	return t, nil
}

// normalise converts YCbCr samples to RGB with libjpeg's integer transform
// (ycc_rgb_convert) and writes them normalised into the r, g and b planes.
func (t *yccTables) normalise(r, g, b []float32, y, cb, cr []uint8, lut *normLUT) {
	n := len(y)
	r, g, b, cb, cr = r[:n], g[:n], b[:n], cb[:n], cr[:n]
	for i, yv := range y {
		yy := int32(yv) + 384
		cbv, crv := cb[i], cr[i]
		r[i] = lut[0][t.rangeLimit[(yy+t.crR[crv])&1023]]
		g[i] = lut[1][t.rangeLimit[(yy+(t.cbG[cbv]+t.crG[crv])>>16)&1023]]
		b[i] = lut[2][t.rangeLimit[(yy+t.cbB[cbv])&1023]]
	}
}
