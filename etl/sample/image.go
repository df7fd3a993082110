package sample

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
	"golang.org/x/image/webp"

	"github.com/bmca/bmca/data/preprocess"
)

// JPEGQuality is the quality of the JPEGs written for figures that are not
// JPEG files already.
const JPEGQuality = 95

// ErrUnsupportedFormat is returned (wrapped) for image bytes that are none
// of JPEG, PNG, GIF, TIFF, WebP or BMP.
var ErrUnsupportedFormat = errors.New("unsupported image format")

// Format names an image container.
type Format string

// The containers Probe recognises.
const (
	JPEG Format = "jpeg"
	PNG  Format = "png"
	GIF  Format = "gif"
	TIFF Format = "tiff"
	WebP Format = "webp"
	BMP  Format = "bmp"
)

type codec struct {
	config func([]byte) (image.Config, error)
	decode func([]byte) (image.Image, error)
}

func readerFunc[T any](f func(r *bytes.Reader) (T, error)) func([]byte) (T, error) {
	return func(b []byte) (T, error) { return f(bytes.NewReader(b)) }
}

var codecs = map[Format]codec{
	JPEG: {readerFunc(func(r *bytes.Reader) (image.Config, error) { return jpeg.DecodeConfig(r) }), readerFunc(func(r *bytes.Reader) (image.Image, error) { return jpeg.Decode(r) })},
	PNG:  {readerFunc(func(r *bytes.Reader) (image.Config, error) { return png.DecodeConfig(r) }), readerFunc(func(r *bytes.Reader) (image.Image, error) { return png.Decode(r) })},
	GIF:  {readerFunc(func(r *bytes.Reader) (image.Config, error) { return gif.DecodeConfig(r) }), readerFunc(func(r *bytes.Reader) (image.Image, error) { return gif.Decode(r) })},
	TIFF: {readerFunc(func(r *bytes.Reader) (image.Config, error) { return tiff.DecodeConfig(r) }), readerFunc(func(r *bytes.Reader) (image.Image, error) { return tiff.Decode(r) })},
	WebP: {readerFunc(func(r *bytes.Reader) (image.Config, error) { return webp.DecodeConfig(r) }), readerFunc(func(r *bytes.Reader) (image.Image, error) { return webp.Decode(r) })},
	BMP:  {readerFunc(func(r *bytes.Reader) (image.Config, error) { return bmp.DecodeConfig(r) }), readerFunc(func(r *bytes.Reader) (image.Image, error) { return bmp.Decode(r) })},
}

// detect names the container from its magic bytes; file extensions in
// packages are not trusted.
func detect(b []byte) (Format, error) {
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}):
		return JPEG, nil
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return PNG, nil
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return GIF, nil
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return TIFF, nil
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return WebP, nil
	case bytes.HasPrefix(b, []byte("BM")):
		return BMP, nil
	}
	return "", fmt.Errorf("%w (first bytes % x)", ErrUnsupportedFormat, b[:min(len(b), 8)])
}

// Probe reads an image's container and size from its header, without
// decoding the pixels. It refuses images of more than
// preprocess.MaxPixels pixels, as the training stream would.
func Probe(data []byte) (Format, image.Config, error) {
	f, err := detect(data)
	if err != nil {
		return "", image.Config{}, err
	}
	cfg, err := codecs[f].config(data)
	if err != nil {
		return f, cfg, fmt.Errorf("%s header: %w", f, err)
	}
	if px := int64(cfg.Width) * int64(cfg.Height); px > preprocess.MaxPixels || cfg.Width <= 0 || cfg.Height <= 0 {
		return f, cfg, fmt.Errorf("%s of %d×%d pixels (at most %d pixels are accepted)", f, cfg.Width, cfg.Height, preprocess.MaxPixels)
	}
	return f, cfg, nil
}

// ToJPEG returns the bytes of the jpg member for an image file: a JPEG as
// it is (after a full decode when verify is set), a CMYK JPEG or any
// other format decoded and re-encoded at JPEGQuality, transparency
// composited onto white. Probe must have accepted data.
func ToJPEG(data []byte, f Format, cfg image.Config, verify bool) ([]byte, error) {
	if f == JPEG && cfg.ColorModel != color.CMYKModel {
		if verify {
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				return nil, fmt.Errorf("jpeg: %w", err)
			}
		}
		return data, nil
	}
	img, err := codecs[f].decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	img = flatten(img)
	var buf bytes.Buffer
	buf.Grow(len(data) / 2)
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: JPEGQuality}); err != nil {
		return nil, fmt.Errorf("jpeg encode: %w", err)
	}
	return buf.Bytes(), nil
}

// flatten composites an image with transparency onto white, and brings
// colour models the JPEG encoder handles slowly (CMYK, 16-bit, palettes)
// to RGBA; grey and YCbCr images pass unchanged.
func flatten(img image.Image) image.Image {
	switch m := img.(type) {
	case *image.Gray, *image.YCbCr:
		return m
	case *image.RGBA:
		if m.Opaque() {
			return m
		}
	}
	b := img.Bounds()
	dst := image.NewRGBA(b)
	draw.Draw(dst, b, image.White, image.Point{}, draw.Src)
	draw.Draw(dst, b, img, b.Min, draw.Over)
	return dst
}
