package contamination

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
	"math"
	"math/bits"
	"slices"

	"github.com/bmca/bmca/data/preprocess"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// Thumb is the side of the grey thumbnail perceptual hashes are computed
// from, and the smallest side a JPEG is DCT-scaled down to.
const Thumb = 32

// flatStdDev is the thumbnail contrast (standard deviation of grey levels)
// below which an image's perceptual hash is noise: blank and near-blank
// images only match exactly.
const flatStdDev = 2.0

// Hashes are one image's hashes.
type Hashes struct {
	// File is the SHA-256 of the encoded bytes.
	File [32]byte
	// Pixels is the SHA-256 of the decoded pixels (PixelHash); zero when
	// not computed (training images, unless a candidate).
	Pixels [32]byte
	// PHash is the perceptual hash (PerceptualHash), Flat set when the
	// image has too little contrast for it to mean anything.
	PHash uint64
	Flat  bool
}

// Distance is the Hamming distance of two perceptual hashes.
func Distance(a, b uint64) int { return bits.OnesCount64(a ^ b) }

// HashEval hashes an evaluation image: all three hashes, decoding it in
// full. JPEG, PNG, WebP, TIFF and BMP are read.
func HashEval(encoded []byte) (Hashes, error) {
	h := Hashes{File: sha256.Sum256(encoded)}
	img, err := decodeFull(encoded)
	if err != nil {
		return h, err
	}
	h.Pixels = PixelHash(img)
	g, err := thumbSource(encoded, img)
	if err != nil {
		return h, err
	}
	h.PHash, h.Flat = PerceptualHash(g)
	return h, nil
}

// HashTrain hashes a training image for the scan: its file SHA-256 and, with
// perceptual set, its perceptual hash from a reduced decode. Pixels stay
// zero (see HashPixels).
func HashTrain(encoded []byte, perceptual bool) (Hashes, error) {
	h := Hashes{File: sha256.Sum256(encoded)}
	if !perceptual {
		return h, nil
	}
	g, err := thumbSource(encoded, nil)
	if err != nil {
		return h, err
	}
	h.PHash, h.Flat = PerceptualHash(g)
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
// with golang.org/x/image.
func decodeFull(encoded []byte) (image.Image, error) {
	img, err := preprocess.Decode(encoded)
	if !errors.Is(err, preprocess.ErrUnknownFormat) {
		return img, err
	}
	switch {
	case bytes.HasPrefix(encoded, []byte("II*\x00")), bytes.HasPrefix(encoded, []byte("MM\x00*")):
		return checked(encoded, tiff.DecodeConfig, tiff.Decode, "tiff")
	case bytes.HasPrefix(encoded, []byte("BM")):
		return checked(encoded, bmp.DecodeConfig, bmp.Decode, "bmp")
	}
	return nil, err
}

func checked(encoded []byte, config func(r io.Reader) (image.Config, error), decode func(r io.Reader) (image.Image, error), name string) (image.Image, error) {
	cfg, err := config(bytes.NewReader(encoded))
	if err != nil {
		return nil, fmt.Errorf("decode %s header: %w", name, err)
	}
	if int64(cfg.Width)*int64(cfg.Height) > preprocess.MaxPixels {
		return nil, fmt.Errorf("decode %s: %d×%d pixels exceeds the limit of %d", name, cfg.Width, cfg.Height, preprocess.MaxPixels)
	}
	img, err := decode(bytes.NewReader(encoded))
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	return img, nil
}

// thumbSource is the grey image a perceptual hash starts from: the luma of
// a JPEG DCT-scaled to no less than Thumb per side (preprocess.Luma), so
// that evaluation and training images of any size go through the same
// steps; other formats' full decode, converted (img, when given, saves
// decoding again).
func thumbSource(encoded []byte, img image.Image) (*image.Gray, error) {
	if img == nil || bytes.HasPrefix(encoded, []byte{0xff, 0xd8, 0xff}) {
		g, err := preprocess.Luma(encoded, Thumb)
		if !errors.Is(err, preprocess.ErrUnknownFormat) {
			return g, err
		}
		if img, err = decodeFull(encoded); err != nil {
			return nil, err
		}
	}
	return preprocess.GrayOf(img), nil
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

// PerceptualHash is the DCT perceptual hash (pHash) of a grey image: it is
// averaged down to Thumb×Thumb (area weights, so every source pixel counts
// once), transformed by a 2-D DCT-II, and each of the 64 lowest-frequency
// coefficients (the top-left 8×8) gives a bit: 1 above their median. Images
// that look alike — a resized copy, a re-encoded one — differ in few bits.
// flat reports a thumbnail with a standard deviation under two grey
// levels, whose hash is noise.
func PerceptualHash(g *image.Gray) (hash uint64, flat bool) {
	t := areaThumb(g)
	var mean, sq float64
	for _, v := range t {
		mean += v
	}
	mean /= float64(len(t))
	for _, v := range t {
		sq += (v - mean) * (v - mean)
	}
	flat = math.Sqrt(sq/float64(len(t))) < flatStdDev
	// Rows, then columns, only the 8 lowest frequencies of each.
	var rows [Thumb][8]float64
	for y := range Thumb {
		for u := range 8 {
			var s float64
			for x := range Thumb {
				s += t[y*Thumb+x] * dctBasis[u][x]
			}
			rows[y][u] = s
		}
	}
	var coeffs [64]float64
	for v := range 8 {
		for u := range 8 {
			var s float64
			for y := range Thumb {
				s += rows[y][u] * dctBasis[v][y]
			}
			coeffs[v*8+u] = s
		}
	}
	sorted := coeffs
	slices.Sort(sorted[:])
	median := (sorted[31] + sorted[32]) / 2
	for i, c := range coeffs {
		if c > median {
			hash |= 1 << i
		}
	}
	return hash, flat
}

// dctBasis[u][x] = cos(π·(2x+1)·u / 2N), the DCT-II basis (unnormalised:
// the median threshold does not care about scale).
var dctBasis = func() (b [8][Thumb]float64) {
	for u := range 8 {
		for x := range Thumb {
			b[u][x] = math.Cos(math.Pi * float64(2*x+1) * float64(u) / (2 * Thumb))
		}
	}
	return b
}()

// areaThumb averages g down (or, when smaller, up) to Thumb×Thumb: each
// output cell is the mean of the source area it covers, partial pixels
// weighted by their overlap.
func areaThumb(g *image.Gray) []float64 {
	w, h := g.Rect.Dx(), g.Rect.Dy()
	xs, ys := spans(w), spans(h)
	// Sum rows first: cols[y][X] over source row y.
	tmp := make([]float64, h*Thumb)
	for y := range h {
		row := g.Pix[y*g.Stride : y*g.Stride+w]
		for X, sp := range xs {
			var s float64
			for _, p := range sp {
				s += float64(row[p.i]) * p.w
			}
			tmp[y*Thumb+X] = s
		}
	}
	out := make([]float64, Thumb*Thumb)
	for Y, sp := range ys {
		for X := range Thumb {
			var s, wsum float64
			for _, p := range sp {
				s += tmp[p.i*Thumb+X] * p.w
				wsum += p.w
			}
			out[Y*Thumb+X] = s / (wsum * xWeight(xs[X]))
		}
	}
	return out
}

type weighted struct {
	i int
	w float64
}

// spans splits n source pixels into Thumb output cells: for each, the
// source pixels it covers and by how much.
func spans(n int) [Thumb][]weighted {
	var out [Thumb][]weighted
	scale := float64(n) / Thumb
	for o := range Thumb {
		lo, hi := float64(o)*scale, float64(o+1)*scale
		for i := int(lo); i < n && float64(i) < hi; i++ {
			w := math.Min(hi, float64(i+1)) - math.Max(lo, float64(i))
			if w > 1e-12 {
				out[o] = append(out[o], weighted{i, w})
			}
		}
	}
	return out
}

func xWeight(sp []weighted) float64 {
	var s float64
	for _, p := range sp {
		s += p.w
	}
	return s
}
