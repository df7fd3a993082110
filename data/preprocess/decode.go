package preprocess

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"
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
	if px := int64(cfg.Width) * int64(cfg.Height); px > MaxPixels || cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, info, fmt.Errorf("preprocess: decode %s: %d×%d pixels is empty or above the limit of %d", f, cfg.Width, cfg.Height, MaxPixels)
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
