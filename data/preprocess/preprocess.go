// Package preprocess turns encoded images into the float32 tensors a CLIP
// image tower takes, reproducing OpenCLIP's transforms as Pillow computes
// them: the eval transform (image_transform(size, is_train=False): bicubic
// resize of the shorter side, centre crop, conversion to RGB, ToTensor,
// Normalize) and the training one (RandomResizedCrop, seeded).
//
// Every step is bit-exact with OpenCLIP on the reference images: the resize
// is a port of Pillow's fixed-point resampler, and the pure-Go JPEG decoder
// (internal/jpeg) ports libjpeg-turbo's integer IDCT, fancy upsampling and
// colour conversion, so its pixels are libjpeg-turbo's. Binaries built with
// -tags libjpeg can use libjpeg-turbo itself instead (Config.JPEG). Large
// images are never held whole: rows stream from the decoder into the
// resampler, only the rows and columns the crop needs are produced, and
// with Config.DCTScaling JPEGs are decoded at 1/2, 1/4 or 1/8 size in the
// DCT domain (faster, no longer Pillow-exact). Sizes are checked from the
// header before decoding, refusing decompression bombs.
//
//	cfg := preprocess.OpenAI(224)
//	pixels, err := cfg.Apply(jpegBytes) // [3, 224, 224] row-major, CHW
//	train, _ := cfg.Train(preprocess.Augment{})
//	pixels, err = train(jpegBytes, seed)
package preprocess

import (
	"fmt"
	"image"
	"math"
)

// Config describes the image transform of one model.
type Config struct {
	// ImageSize is the side of the square output, the vision tower's
	// image_size (224 for ViT-B/16).
	ImageSize int
	// Mean and Std normalise each RGB channel after scaling to [0, 1]:
	// (x/255 - Mean) / Std, in float32 as torchvision computes it.
	Mean, Std [3]float32
	// JPEG selects the JPEG decoder; the zero value is JPEGGo.
	JPEG JPEGDecoder
	// DCTScaling lets a JPEG that is at least 2, 4 or 8 times larger than
	// the resize target be decoded at that fraction of its size in the DCT
	// domain, with the scale Pillow's Image.draft would choose (the
	// training transform, with the pure-Go decoder, goes further: each
	// component at the smallest N/8 that covers the output). Decoding large
	// photos gets several times faster, but the pixels are no longer those
	// of OpenCLIP's transform, so leave it off for evaluation.
	DCTScaling bool
}

// JPEGDecoder names a JPEG decoder.
type JPEGDecoder string

const (
	// JPEGGo is the pure-Go decoder: libjpeg-turbo's integer inverse DCT,
	// fancy upsampling and colour conversion ported, so its pixels are
	// libjpeg-turbo's (and Pillow's) for baseline and progressive JPEGs.
	JPEGGo JPEGDecoder = "go"
	// JPEGTurbo is libjpeg-turbo itself, through cgo; only binaries built
	// with the libjpeg build tag have it (TurboAvailable reports it).
	JPEGTurbo JPEGDecoder = "libjpeg-turbo"
)

// Validate reports a name that is no decoder (empty is JPEGGo). Whether
// this binary has libjpeg-turbo is Config.Validate's question, asked when
// images are decoded, so that a run config naming it still reads anywhere.
func (d JPEGDecoder) Validate() error {
	switch d {
	case "", JPEGGo, JPEGTurbo:
		return nil
	}
	return fmt.Errorf("%q is not one of %s, %s", string(d), JPEGGo, JPEGTurbo)
}

// OpenAI returns the transform of OpenAI's CLIP, OpenCLIP's default and
// BiomedCLIP's: OPENAI_DATASET_MEAN and OPENAI_DATASET_STD.
func OpenAI(imageSize int) Config {
	return Config{
		ImageSize: imageSize,
		Mean:      [3]float32{0.48145466, 0.4578275, 0.40821073},
		Std:       [3]float32{0.26862954, 0.26130258, 0.27577711},
	}
}

// Validate reports a configuration that cannot produce a tensor.
func (c Config) Validate() error {
	if c.ImageSize <= 0 {
		return fmt.Errorf("preprocess: Config.ImageSize must be positive, got %d", c.ImageSize)
	}
	for i := range 3 {
		if c.Std[i] == 0 || math.IsNaN(float64(c.Std[i])) || math.IsInf(float64(c.Std[i]), 0) {
			return fmt.Errorf("preprocess: Config.Std[%d] must be finite and non-zero, got %v", i, c.Std[i])
		}
		if math.IsNaN(float64(c.Mean[i])) || math.IsInf(float64(c.Mean[i]), 0) {
			return fmt.Errorf("preprocess: Config.Mean[%d] must be finite, got %v", i, c.Mean[i])
		}
	}
	if err := c.JPEG.Validate(); err != nil {
		return fmt.Errorf("preprocess: Config.JPEG: %w", err)
	}
	if c.JPEG == JPEGTurbo && !TurboAvailable() {
		return fmt.Errorf("preprocess: Config.JPEG is %q but this binary was built without it: rebuild with -tags libjpeg (cgo and libjpeg62-turbo-dev needed)", c.JPEG)
	}
	return nil
}

// Apply decodes a JPEG, PNG or WebP image (format detected from its bytes)
// and returns OpenCLIP's eval transform of it: the normalised
// [3, ImageSize, ImageSize] tensor, row-major. Bytes that do not decode give
// an error starting "preprocess: decode".
func (c Config) Apply(encoded []byte) ([]float32, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var win window
	src, err := c.open(encoded, func(w, h int) int {
		win = cropWindow(w, h, c.ImageSize)
		if !c.DCTScaling {
			return 1
		}
		return draftScale(w, h, win.outW, win.outH)
	})
	if err != nil {
		return nil, err
	}
	// The geometry comes from the full-size image; a DCT-scaled source is
	// resized whole to the same size, so the crop lands in the same place.
	_, win.bw, win.bh, _ = src.info()
	return c.transform(src, win)
}

// ApplyImage runs the eval transform on an image that is already decoded,
// for callers that draw images themselves. The image is read in the mode
// Pillow would give it: *image.Gray as L, *image.Paletted as P (resized with
// NEAREST), *image.YCbCr as a JFIF JPEG, images with transparency as RGBA
// (resized premultiplied), everything else as RGB.
func (c Config) ApplyImage(img image.Image) ([]float32, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b := img.Bounds()
	if b.Empty() {
		return nil, fmt.Errorf("preprocess: empty image %v", b)
	}
	r := toRaster(img, decoded{})
	win := cropWindow(r.w, r.h, c.ImageSize)
	return c.transform(&r, win)
}

// draftScale is the DCT scale Pillow's JpegImageFile.draft picks to reach at
// least outW×outH: the largest of 8, 4, 2, 1 not above min(w/outW, h/outH).
func draftScale(w, h, outW, outH int) int {
	scale := min(w/max(outW, 1), h/max(outH, 1))
	for _, s := range [...]int{8, 4, 2} {
		if scale >= s {
			return s
		}
	}
	return 1
}

// resizedSize is torchvision's Resize(size) output for a w×h image: the
// shorter side becomes size, the longer one int(size·long/short), truncated.
func resizedSize(w, h, size int) (newW, newH int) {
	short, long := w, h
	if w > h {
		short, long = h, w
	}
	newLong := int(float64(size*long) / float64(short))
	if w <= h {
		return size, newLong
	}
	return newLong, size
}

// cropWindow places torchvision's CenterCrop(size) on the image resized by
// resizedSize: the offsets are (extent-size)/2 rounded half to even, as
// Python's round does. The box is the whole w×h image.
func cropWindow(w, h, size int) window {
	outW, outH := resizedSize(w, h, size)
	return window{
		bw: w, bh: h,
		outW: outW, outH: outH,
		x0: int(math.RoundToEven(float64(outW-size) / 2)),
		y0: int(math.RoundToEven(float64(outH-size) / 2)),
		w:  size, h: size,
	}
}

// transform resizes the window's box and keeps its window, in the source's
// own mode, then converts to RGB and normalises; the order matters, since
// Pillow resizes L as one channel and P by palette index.
func (c Config) transform(src rowSource, win window) ([]float32, error) {
	m, _, _, pal := src.info()
	out := raster{mode: m, w: win.w, h: win.h, palette: pal}
	var err error
	switch {
	case win.outW == win.bw && win.outH == win.bh:
		// Pillow returns a copy when the size does not change; in particular
		// an RGBA image does not take the lossy premultiply round trip.
		out.pix, out.ints, err = cropOnly(src, win)
	case m == modeP || m == mode1:
		var r *raster
		if r, err = materialize(src); err == nil {
			sub := r.crop(win)
			out.pix = resampleNearest8(sub.pix, sub.w, sub.h, 1, win)
		}
	case m == modeI:
		sub := src.(*raster).crop(win)
		out.ints = resampleBicubic32(sub.ints, sub.w, sub.h, win)
	case m == modeRGBA:
		if out.pix, err = resampleBicubic8(src, 4, win, true); err == nil {
			unpremultiply(out.pix)
		}
	default:
		out.pix, err = resampleBicubic8(src, m.channels(), win, false)
	}
	if err != nil {
		// Streaming sources decode while the resampler reads; their errors
		// name the format ("png: row 12: unexpected EOF").
		return nil, fmt.Errorf("preprocess: decode %w", err)
	}

	lut := c.normLUT()
	n := win.w * win.h
	t := make([]float32, 3*n)
	for i := range n {
		r, g, b := out.rgbAt(i)
		t[i], t[n+i], t[2*n+i] = lut[0][r], lut[1][g], lut[2][b]
	}
	return t, nil
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

// cropOnly cuts the window out of a source that needs no resizing.
func cropOnly(src rowSource, win window) ([]uint8, []int32, error) {
	if r, ok := src.(*raster); ok && r.mode == modeI {
		ints := make([]int32, win.w*win.h)
		for y := range win.h {
			copy(ints[y*win.w:(y+1)*win.w], r.ints[(win.by+win.y0+y)*r.w+win.bx+win.x0:])
		}
		return nil, ints, nil
	}
	m, _, _, _ := src.info()
	ch := m.channels()
	pix := make([]uint8, win.w*win.h*ch)
	top := win.by + win.y0
	err := src.readRows(top, top+win.h, win.bx+win.x0, win.bx+win.x0+win.w, func(y int, row []uint8) {
		copy(pix[(y-top)*win.w*ch:], row)
	})
	return pix, nil, err
}
