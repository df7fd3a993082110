// Package phash is bmca's perceptual image hash: a 64-bit DCT hash (pHash)
// of a 32×32 grey thumbnail, in which images that look alike — a resized
// copy, a re-encoded one — differ in few bits. The contamination check
// (eval/contamination) compares the hashes of evaluation and training
// images; the ETL (etl/sample) stores each training image's hash in its
// json as Field, so that the check reads it instead of decoding the image.
// Both compute it here, so the two cannot drift apart.
//
//	h, err := phash.FromEncoded(jpegBytes) // 1/8-scale luma decode for most JPEGs
//	near := !h.Flat && !g.Flat && phash.Distance(h.Bits, g.Bits) <= 8
//	js["image_phash"] = h.String()         // "c3a1…" (16 hex digits) or "flat"
//
// The definition is fixed: the grey image is the luma of Luma (see
// data/preprocess.Luma: a JPEG DCT-scaled to no less than Thumb per side),
// averaged down to Thumb×Thumb with area weights, then DCT-II, and each of
// the 64 lowest-frequency coefficients gives a bit, 1 above their median
// (bit 8v+u for vertical frequency v, horizontal u). It is not the hash of
// Python's imagehash, whose thumbnail and bit order differ. A change to any
// step changes stored hashes' meaning: it must come with a new Field name
// and a new Version.
package phash

import (
	"fmt"
	"image"
	"math"
	"math/bits"
	"slices"
	"strconv"

	"github.com/bmca/bmca/data/preprocess"
)

// Thumb is the side of the grey thumbnail a hash is computed from, and the
// smallest side a JPEG is DCT-scaled down to.
const Thumb = 32

// FlatStdDev is the thumbnail contrast (standard deviation of grey levels)
// below which a hash is noise: blank and near-blank images get Flat hashes,
// which match nothing.
const FlatStdDev = 2.0

// Field is the json field in which bmca's ETL stores a training image's
// hash (Hash.String): bmca's extension of BIOMEDICA's sample json.
const Field = "image_phash"

// Version names the hash's definition; caches of computed hashes key on it.
const Version = 1

// Hash is an image's perceptual hash.
type Hash struct {
	// Bits are the 64 hash bits.
	Bits uint64
	// Flat reports a thumbnail with too little contrast (FlatStdDev) for
	// Bits to mean anything.
	Flat bool
}

// String is the hash as stored in Field: 16 lower-case hex digits of Bits
// (bit 63 first), or "flat".
func (h Hash) String() string {
	if h.Flat {
		return "flat"
	}
	return fmt.Sprintf("%016x", h.Bits)
}

// Parse reads a hash written by String.
func Parse(s string) (Hash, error) {
	if s == "flat" {
		return Hash{Flat: true}, nil
	}
	if len(s) != 16 {
		return Hash{}, fmt.Errorf("perceptual hash %q: want 16 hex digits or \"flat\"", s)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return Hash{}, fmt.Errorf("perceptual hash %q: want 16 hex digits or \"flat\"", s)
	}
	return Hash{Bits: v}, nil
}

// Distance is the Hamming distance of two hashes' bits.
func Distance(a, b uint64) int { return bits.OnesCount64(a ^ b) }

// FromEncoded hashes encoded image bytes: JPEG (at the largest DCT scale
// that keeps Thumb pixels a side), PNG or WebP; other formats give an error
// wrapping preprocess.ErrUnknownFormat, and the caller decodes them itself
// and calls Of.
func FromEncoded(encoded []byte) (Hash, error) {
	g, err := preprocess.Luma(encoded, Thumb)
	if err != nil {
		return Hash{}, err
	}
	return Of(g), nil
}

// ErrUnknownFormat is preprocess.ErrUnknownFormat, for callers of
// FromEncoded that fall back to their own decoders.
var ErrUnknownFormat = preprocess.ErrUnknownFormat

// Of hashes a grey image: averaged down (or up) to Thumb×Thumb with area
// weights (every source pixel counts once), transformed by a 2-D DCT-II,
// and each of the 64 lowest-frequency coefficients (the top-left 8×8)
// gives a bit: 1 above their median.
func Of(g *image.Gray) Hash {
	t := areaThumb(g)
	var mean, sq float64
	for _, v := range t {
		mean += v
	}
	mean /= float64(len(t))
	for _, v := range t {
		sq += (v - mean) * (v - mean)
	}
	var h Hash
	h.Flat = math.Sqrt(sq/float64(len(t))) < FlatStdDev
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
			h.Bits |= 1 << i
		}
	}
	return h
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
