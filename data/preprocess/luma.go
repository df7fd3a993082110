package preprocess

import (
	"errors"
	"fmt"
	"image"
	"image/color"

	jpegdec "github.com/bmca/bmca/data/preprocess/internal/jpeg"
)

// Luma decodes an image's luma — ITU-R BT.601 Y, what a JPEG stores and a
// grey image is — small, for hashing and thumbnails rather than for a
// model: a JPEG at the largest DCT scale (1/8, 1/4, 1/2) that keeps both
// sides at least minSide, its Y plane taken as decoded (at 1/8 each pixel is
// the mean of an 8×8 block, read from the DC coefficients alone, no colour
// conversion, no upsampling); PNG and
// WebP at full size, converted as image/color's GrayModel does. Bytes that
// are none of these give an error wrapping ErrUnknownFormat; images above
// MaxPixels are refused from their header.
func Luma(encoded []byte, minSide int) (*image.Gray, error) {
	f, err := detectFormat(encoded)
	if err != nil {
		return nil, fmt.Errorf("preprocess: luma: %w", err)
	}
	if f == formatJPEG {
		if g, ok, err := jpegLuma(encoded, minSide); ok || err != nil {
			return g, err
		}
	}
	img, _, err := decode(encoded)
	if err != nil {
		return nil, err
	}
	return GrayOf(img), nil
}

// GrayOf converts any image to luma with image/color's GrayModel (BT.601
// weights on 16-bit channels); a YCbCr image (a decoded JPEG) gives its Y
// plane, as the JPEG path of Luma does.
func GrayOf(img image.Image) *image.Gray {
	if g, ok := img.(*image.Gray); ok && g.Rect.Min == (image.Point{}) {
		return g
	}
	b := img.Bounds()
	out := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	switch src := img.(type) {
	case *image.YCbCr:
		for y := range b.Dy() {
			copy(out.Pix[y*out.Stride:(y+1)*out.Stride], src.Y[src.YOffset(b.Min.X, b.Min.Y+y):])
		}
		return out
	case *image.RGBA: // premultiplied, as GrayModel reads it
		for y := range b.Dy() {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range b.Dx() {
				out.Pix[y*out.Stride+x] = grayOf16(uint32(row[4*x])*0x101, uint32(row[4*x+1])*0x101, uint32(row[4*x+2])*0x101)
			}
		}
		return out
	case *image.NRGBA:
		for y := range b.Dy() {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := range b.Dx() {
				a := uint32(row[4*x+3]) * 0x101
				r, g, bl := uint32(row[4*x])*0x101*a/0xffff, uint32(row[4*x+1])*0x101*a/0xffff, uint32(row[4*x+2])*0x101*a/0xffff
				out.Pix[y*out.Stride+x] = grayOf16(r, g, bl)
			}
		}
		return out
	}
	for y := range b.Dy() {
		for x := range b.Dx() {
			out.Pix[y*out.Stride+x] = color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y
		}
	}
	return out
}

// grayOf16 is color.GrayModel's formula on premultiplied 16-bit channels.
func grayOf16(r, g, b uint32) uint8 { return uint8((19595*r + 38470*g + 7471*b + 1<<15) >> 24) }

// jpegLuma decodes a JPEG's Y plane at a DCT scale; ok is false for JPEGs
// this path does not serve (CMYK, RGB-coded, subsampled luma, features the
// decoder lacks), which then decode in full.
func jpegLuma(encoded []byte, minSide int) (*image.Gray, bool, error) {
	hdr, err := jpegdec.DecodeHeader(encoded)
	var unsupported jpegdec.UnsupportedError
	if errors.As(err, &unsupported) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("preprocess: luma: jpeg header: %w", err)
	}
	if err := checkSize(formatJPEG, hdr.Width, hdr.Height); err != nil {
		return nil, false, err
	}
	scale := 1
	for _, s := range []int{8, 4, 2} {
		if (hdr.Width+s-1)/s >= minSide && (hdr.Height+s-1)/s >= minSide {
			scale = s
			break
		}
	}
	var img *jpegdec.Image
	if scale == 8 {
		// One sample per block: the DC coefficients are all it takes.
		img, err = jpegdec.DecodeLumaDC(encoded, MaxPixels)
	} else {
		img, err = jpegdec.Decode(encoded, jpegdec.Options{Scale: scale, MaxPixels: MaxPixels})
	}
	if errors.As(err, &unsupported) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("preprocess: luma: %w", err)
	}
	y := img.Components[0]
	if (img.ColorSpace != jpegdec.Gray && img.ColorSpace != jpegdec.YCbCr) || y.HFactor != 1 || y.VFactor != 1 {
		return nil, false, nil
	}
	out := image.NewGray(image.Rect(0, 0, img.Width, img.Height))
	for r := range img.Height {
		copy(out.Pix[r*out.Stride:(r+1)*out.Stride], y.Pix[r*y.Stride:r*y.Stride+img.Width])
	}
	return out, true, nil
}
