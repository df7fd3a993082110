package preprocess

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"

	jpegdec "github.com/bmca/bmca/data/preprocess/internal/jpeg"
)

// format names an encoded image container, detected from its first bytes.
type format string

// The formats Decode understands: the ones OpenCLIP's WebDataset loader
// accepts as images (jpg, png, jpeg, webp).
const (
	formatJPEG format = "jpeg"
	formatPNG  format = "png"
	formatWebP format = "webp"
)

// MaxPixels is the largest decoded image accepted, width×height. It is twice
// Pillow's MAX_IMAGE_PIXELS, the point where Pillow raises
// DecompressionBombError instead of warning, so a file OpenCLIP would refuse
// is refused here too, before its pixels are allocated.
const MaxPixels = 2 * (1024 * 1024 * 1024 / 4 / 3)

// ErrUnknownFormat is returned (wrapped) for bytes that are not a JPEG, PNG or WebP.
var ErrUnknownFormat = errors.New("unknown image format")

// detectFormat names the container of encoded from its magic bytes; file
// names and WebDataset extensions lie too often to be trusted.
func detectFormat(encoded []byte) (format, error) {
	switch {
	case bytes.HasPrefix(encoded, []byte("\x89PNG\r\n\x1a\n")):
		return formatPNG, nil
	case bytes.HasPrefix(encoded, []byte{0xff, 0xd8, 0xff}):
		return formatJPEG, nil
	case len(encoded) >= 12 && string(encoded[:4]) == "RIFF" && string(encoded[8:12]) == "WEBP":
		return formatWebP, nil
	}
	head := encoded[:min(len(encoded), 8)]
	return "", fmt.Errorf("%w (first bytes % x)", ErrUnknownFormat, head)
}

// Decode decodes a JPEG, PNG or WebP image, chosen by content (other bytes
// give an error wrapping ErrUnknownFormat). It refuses images larger than
// MaxPixels before decoding them. The result is whatever
// the Go decoder returns (*image.YCbCr, *image.Gray, *image.Paletted, ...),
// not yet converted to RGB, because the eval transform resizes in the
// image's own mode, as Pillow does.
func Decode(encoded []byte) (image.Image, error) {
	img, _, err := decode(encoded)
	return img, err
}

// decoded is an image plus what its container says about it that the Go
// decoders do not keep but Pillow's mode depends on.
type decoded struct {
	format format
	// pngColorType and pngBitDepth are the PNG IHDR fields: Go turns a grey
	// or RGB PNG with a tRNS chunk into NRGBA, while Pillow keeps it in mode
	// L or RGB and ignores the transparency; a 1-bit grey PNG is Pillow mode
	// "1", resized with NEAREST.
	pngColorType, pngBitDepth byte
}

// PNG IHDR colour types.
const (
	pngGrey      = 0
	pngTrueColor = 2
)

func decode(encoded []byte) (image.Image, decoded, error) {
	f, err := detectFormat(encoded)
	if err != nil {
		return nil, decoded{}, fmt.Errorf("preprocess: decode: %w", err)
	}
	info := decoded{format: f}
	var cfg image.Config
	switch f {
	case formatPNG:
		cfg, err = png.DecodeConfig(bytes.NewReader(encoded))
		// IHDR is always the first chunk: 8-byte signature, 4-byte length,
		// "IHDR", width, height, bit depth, colour type.
		if len(encoded) >= 26 && string(encoded[12:16]) == "IHDR" {
			info.pngBitDepth, info.pngColorType = encoded[24], encoded[25]
		}
	case formatJPEG:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(encoded))
	case formatWebP:
		cfg, err = webp.DecodeConfig(bytes.NewReader(encoded))
	}
	if err != nil {
		return nil, info, fmt.Errorf("preprocess: decode %s header: %w", f, err)
	}
	if err := checkSize(f, cfg.Width, cfg.Height); err != nil {
		return nil, info, err
	}
	var img image.Image
	switch f {
	case formatPNG:
		img, err = png.Decode(bytes.NewReader(encoded))
	case formatJPEG:
		img, err = jpeg.Decode(bytes.NewReader(encoded))
	case formatWebP:
		img, err = webp.Decode(bytes.NewReader(encoded))
	}
	if err != nil {
		return nil, info, fmt.Errorf("preprocess: decode %s: %w", f, err)
	}
	return img, info, nil
}

// open decodes encoded into a row source in Pillow's mode. pick is called
// with the image's full size once its header is read, before any pixel is
// decoded, and returns the DCT scale denominator (1, 2, 4 or 8); only JPEGs
// honour it, other formats always decode at full size. Images above
// MaxPixels are refused before decoding.
func (c Config) open(encoded []byte, pick func(w, h int) int) (rowSource, error) {
	f, err := detectFormat(encoded)
	if err != nil {
		return nil, fmt.Errorf("preprocess: decode: %w", err)
	}
	switch f {
	case formatJPEG:
		hdr, err := jpegdec.DecodeHeader(encoded)
		var unsupported jpegdec.UnsupportedError
		if errors.As(err, &unsupported) {
			return c.openStd(encoded, pick)
		}
		if err != nil {
			return nil, fmt.Errorf("preprocess: decode jpeg header: %w", err)
		}
		if err := checkSize(f, hdr.Width, hdr.Height); err != nil {
			return nil, err
		}
		scale := pick(hdr.Width, hdr.Height)
		if c.JPEG == JPEGTurbo {
			src, err := turboDecode(encoded, scale)
			if errors.Is(err, errTurboUnsupported) {
				return c.openStd(encoded, func(w, h int) int { return 1 })
			}
			if err != nil {
				return nil, fmt.Errorf("preprocess: decode jpeg (libjpeg-turbo): %w", err)
			}
			return src, nil
		}
		img, err := jpegdec.Decode(encoded, jpegdec.Options{Scale: scale, MaxPixels: MaxPixels})
		if errors.As(err, &unsupported) {
			return c.openStd(encoded, func(w, h int) int { return 1 })
		}
		if err != nil {
			return nil, fmt.Errorf("preprocess: decode jpeg: %w", err)
		}
		return &jpegSource{img: img}, nil
	case formatPNG:
		src, err := newPNGSource(encoded)
		if errors.Is(err, errPNGFallback) {
			return c.openStd(encoded, pick)
		}
		if err != nil {
			return nil, fmt.Errorf("preprocess: decode %w", err)
		}
		if err := checkSize(f, src.w, src.h); err != nil {
			return nil, err
		}
		pick(src.w, src.h)
		return src, nil
	}
	return c.openStd(encoded, pick)
}

// openStd decodes with the standard library's decoders (and x/image/webp)
// into a raster: WebP, the PNG layouts pngSource does not stream, and the
// JPEGs the pure-Go decoder does not handle (CMYK, 12-bit).
func (c Config) openStd(encoded []byte, pick func(w, h int) int) (rowSource, error) {
	img, info, err := decode(encoded)
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	pick(b.Dx(), b.Dy())
	r := toRaster(img, info)
	return &r, nil
}

// checkSize refuses empty images and decompression bombs from their header.
func checkSize(f format, w, h int) error {
	if px := int64(w) * int64(h); px > MaxPixels || w <= 0 || h <= 0 {
		return fmt.Errorf("preprocess: decode %s: %d×%d pixels is empty or above the limit of %d", f, w, h, MaxPixels)
	}
	return nil
}
