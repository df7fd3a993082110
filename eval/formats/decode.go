package formats

import (
	"bytes"
	"fmt"
	"image"
	"io"

	"github.com/bmca/bmca/data/preprocess"

	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// WithExtraDecoders extends an image preprocessing function (such as
// data/preprocess Config.Apply, which reads JPEG, PNG and WebP) with TIFF and
// BMP: such images are decoded by DecodeExtra and handed to applyImage
// (Config.ApplyImage), everything else goes to apply unchanged.
// NCT-CRC-HE, Kather 2016 and BACH ship TIFF, SIPaKMeD BMP. The resize is
// the same, but unlike JPEG and PNG the decoded pixels were not checked
// against Pillow's.
func WithExtraDecoders(apply func([]byte) ([]float32, error), applyImage func(image.Image) ([]float32, error)) func([]byte) ([]float32, error) {
	return func(encoded []byte) ([]float32, error) {
		img, ok, err := DecodeExtra(encoded)
		if !ok {
			return apply(encoded)
		}
		if err != nil {
			return nil, err
		}
		return applyImage(img)
	}
}

// DecodeExtra decodes a TIFF or BMP image with golang.org/x/image, under
// the same decompression-bomb limit as JPEG and PNG (preprocess.MaxPixels),
// checked before the pixels are allocated. ok is false for any other
// format, which it leaves to data/preprocess.
func DecodeExtra(encoded []byte) (img image.Image, ok bool, err error) {
	var decode func(io.Reader) (image.Image, error)
	var config func(io.Reader) (image.Config, error)
	var name string
	switch {
	case bytes.HasPrefix(encoded, []byte("II*\x00")), bytes.HasPrefix(encoded, []byte("MM\x00*")):
		decode, config, name = tiff.Decode, tiff.DecodeConfig, "tiff"
	case bytes.HasPrefix(encoded, []byte("BM")):
		decode, config, name = bmp.Decode, bmp.DecodeConfig, "bmp"
	default:
		return nil, false, nil
	}
	cfg, err := config(bytes.NewReader(encoded))
	if err != nil {
		return nil, true, fmt.Errorf("decode %s header: %w", name, err)
	}
	if int64(cfg.Width)*int64(cfg.Height) > preprocess.MaxPixels {
		return nil, true, fmt.Errorf("decode %s: %d×%d pixels exceeds the limit of %d", name, cfg.Width, cfg.Height, preprocess.MaxPixels)
	}
	img, err = decode(bytes.NewReader(encoded))
	if err != nil {
		return nil, true, fmt.Errorf("decode %s: %w", name, err)
	}
	return img, true, nil
}
