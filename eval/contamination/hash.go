package contamination

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"image"
	"image/color"

	"github.com/bmca/bmca/data/phash"
	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/eval/formats"
)

// Hashes are one image's hashes.
type Hashes struct {
	// File is the SHA-256 of the encoded bytes.
	File [32]byte
	// Pixels is the SHA-256 of the decoded pixels (PixelHash); zero when
	// not computed (training images, unless a candidate).
	Pixels [32]byte
	// PHash is the perceptual hash (data/phash), Flat set when the image
	// has too little contrast for it to mean anything.
	PHash uint64
	Flat  bool
}

// HashEval hashes an evaluation image: all three hashes, decoding it in
// full. JPEG, PNG, WebP, TIFF and BMP are read.
func HashEval(encoded []byte) (Hashes, error) {
	h := Hashes{File: sha256.Sum256(encoded)}
	img, err := decodeFull(encoded)
	if err != nil {
		return h, err
	}
	h.Pixels = PixelHash(img)
	p, err := perceptualHash(encoded, img)
	if err != nil {
		return h, err
	}
	h.PHash, h.Flat = p.Bits, p.Flat
	return h, nil
}

// HashPixels decodes an image in full and returns PixelHash of it.
func HashPixels(encoded []byte) ([32]byte, error) {
	img, err := decodeFull(encoded)
	if err != nil {
		return [32]byte{}, err
	}
	return PixelHash(img), nil
}

// decodeFull decodes JPEG, PNG and WebP with data/preprocess, TIFF and BMP
// with eval/formats (golang.org/x/image).
func decodeFull(encoded []byte) (image.Image, error) {
	img, err := preprocess.Decode(encoded)
	if !errors.Is(err, preprocess.ErrUnknownFormat) {
		return img, err
	}
	if img, ok, xerr := formats.DecodeExtra(encoded); ok {
		return img, xerr
	}
	return nil, err
}

// perceptualHash is an image's perceptual hash: phash.FromEncoded for a JPEG
// (decoded at a DCT scale, luma only, so that evaluation and training
// images of any size go through the same steps) and the other formats it
// reads; phash.Of the full decode for TIFF and BMP, or when img, an
// already decoded non-JPEG, is given (which saves decoding it again).
func perceptualHash(encoded []byte, img image.Image) (phash.Hash, error) {
	if img == nil || bytes.HasPrefix(encoded, []byte{0xff, 0xd8, 0xff}) {
		h, err := phash.FromEncoded(encoded)
		if !errors.Is(err, phash.ErrUnknownFormat) {
			return h, err
		}
		if img, err = decodeFull(encoded); err != nil {
			return phash.Hash{}, err
		}
	}
	return phash.Of(preprocess.GrayOf(img)), nil
}

// PixelHash is the SHA-256 of an image's pixels: its width and height
// (uint32, little-endian), then every pixel as 8-bit non-premultiplied R,
// G, B, A, rows top to bottom. Equal pixels hash equal whatever the file
// format or colour model (a grey PNG and the RGB PNG of the same greys).
func PixelHash(img image.Image) [32]byte {
	h := sha256.New()
	b := img.Bounds()
	var dims [8]byte
	binary.LittleEndian.PutUint32(dims[:4], uint32(b.Dx()))
	binary.LittleEndian.PutUint32(dims[4:], uint32(b.Dy()))
	h.Write(dims[:])
	row := make([]byte, 4*b.Dx())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		switch src := img.(type) {
		case *image.Gray:
			for x, v := range src.Pix[src.PixOffset(b.Min.X, y):][:b.Dx()] {
				row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = v, v, v, 255
			}
		case *image.NRGBA:
			copy(row, src.Pix[src.PixOffset(b.Min.X, y):])
		case *image.RGBA:
			copy(row, src.Pix[src.PixOffset(b.Min.X, y):])
			for x := 0; x < len(row); x += 4 {
				if a := row[x+3]; a != 255 { // un-premultiply as NRGBAModel does
					c := color.NRGBAModel.Convert(src.RGBAAt(b.Min.X+x/4, y)).(color.NRGBA)
					row[x], row[x+1], row[x+2] = c.R, c.G, c.B
				}
			}
		default:
			for x := range b.Dx() {
				c := color.NRGBAModel.Convert(img.At(b.Min.X+x, y)).(color.NRGBA)
				row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = c.R, c.G, c.B, c.A
			}
		}
		h.Write(row)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
