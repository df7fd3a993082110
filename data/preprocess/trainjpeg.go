package preprocess

import (
	"errors"

	jpegdec "github.com/bmca/bmca/data/preprocess/internal/jpeg"
)

// The training transform's fast path for JPEGs (Config.DCTScaling with the
// pure-Go decoder). It never builds an RGB image:
//
//   - each component is decoded at the smallest DCT block size (N/8 of its
//     resolution, N from 1 to 8) at which the crop still covers the output
//     size (Config.blockSizes): a 1500-pixel figure's luma at 2/8 and its
//     4:2:0 chroma at 3/8, a 720-pixel one's at 5/8, where Pillow's draft
//     offers only 1/1, 1/2, 1/4 and 1/8;
//   - each plane is resized on its own from the crop box in its own
//     coordinates, fractional edges included, straight to the output size
//     (a 4:2:0 chroma at full size through libjpeg's upsampling folded into
//     the resize coefficients), and YCbCr becomes RGB after the resize, on
//     the output pixels only;
//   - the normalised tensor is written from the resized planes;
//   - the decoder's and resampler's buffers are reused from one image to
//     the next.
//
// Colour conversion is affine and the resampling weights sum to one, so
// converting YCbCr after resizing changes only roundings and the clipping
// of colours outside the RGB gamut and of bicubic overshoot at sharp edges.
// How far the result is from the exact transform is TestTrainPlanarIsClose's
// business: closer than the general path's DCT scaling on the figures.

// trainScratch is what one training transform call reuses from the last.
type trainScratch struct {
	jpeg   jpegdec.Scratch
	planes [3][]uint8 // the resized components
	resize planeScratch
}

// errNotPlanar says that a JPEG is not one trainJPEG handles (a layout the
// pure-Go decoder does not read); the caller takes the general path.
var errNotPlanar = errors.New("not a planar JPEG")

// cropBox is a training crop of the full-size image.
type cropBox struct {
	left, top, w, h int
}

// trainJPEG decodes a JPEG, with sizes choosing each component's DCT block
// size from the frame and setting crop, and returns the normalised crop
// resized to ImageSize. Any decoding error gives errNotPlanar.
func (c Config) trainJPEG(encoded []byte, sizes func(jpegdec.Frame) [jpegdec.MaxComponents]int, crop *cropBox, s *trainScratch, lut *normLUT) ([]float32, error) {
	img, err := jpegdec.Decode(encoded, jpegdec.Options{BlockSizes: sizes, MaxPixels: MaxPixels, Scratch: &s.jpeg})
	if err != nil {
		return nil, errNotPlanar
	}
	full := true // every component at full size: libjpeg's scale 1
	for _, comp := range img.Components {
		full = full && comp.BlockSize == 8
	}
	size := c.ImageSize
	n := size * size
	for i, comp := range img.Components {
		s.planes[i] = grow(s.planes[i], n)
		var ax, ay axis
		if full {
			// The general path's box, and libjpeg's upsampling of a
			// subsampled chroma (the fancy filter where libjpeg uses it).
			fh := comp.HFactor == 2 && comp.VFactor <= 2 && comp.Width > 2
			fv := comp.VFactor == 2 && (comp.HFactor == 1 || comp.HFactor == 2 && comp.Width > 2)
			ax = axis{float64(crop.left), float64(crop.left + crop.w), img.Width, comp.Width, comp.HFactor, fh}
			ay = axis{float64(crop.top), float64(crop.top + crop.h), img.Height, comp.Height, comp.VFactor, fv}
		} else {
			// The box in the plane's samples: a sample spans
			// 8·HFactor/BlockSize pixels, centred (JFIF's chroma siting).
			sx := float64(comp.BlockSize) / float64(8*comp.HFactor)
			sy := float64(comp.BlockSize) / float64(8*comp.VFactor)
			ax = axis{float64(crop.left) * sx, float64(crop.left+crop.w) * sx, comp.Width, comp.Width, 1, false}
			ay = axis{float64(crop.top) * sy, float64(crop.top+crop.h) * sy, comp.Height, comp.Height, 1, false}
		}
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
