package preprocess

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// pngSource streams a non-interlaced 8-bit PNG: rows are inflated and
// unfiltered one at a time and handed to the resampler, so even a 7-megapixel
// chart never exists as a whole image in memory, and the rows below the crop
// are never decoded. Other PNGs (interlaced, 1/2/4/16-bit) go through
// image/png and a raster.
type pngSource struct {
	w, h      int
	colorType byte
	bpp       int // bytes per pixel in the file
	mode      mode
	palette   [][3]uint8
	idat      io.Reader
}

// PNG colour types beyond grey and truecolour (pngGrey, pngTrueColor).
const (
	pngPaletted  = 3
	pngGreyAlpha = 4
	pngRGBA      = 6
)

// errPNGFallback says the file is valid but not streamed by pngSource.
var errPNGFallback = errors.New("png: not streamable")

// newPNGSource parses the chunks of a PNG. It returns errPNGFallback for the
// layouts it does not stream.
func newPNGSource(data []byte) (*pngSource, error) {
	const sig = "\x89PNG\r\n\x1a\n"
	if !bytes.HasPrefix(data, []byte(sig)) {
		return nil, fmt.Errorf("png: bad signature")
	}
	s := &pngSource{}
	var idats []io.Reader
	p := data[len(sig):]
	sawIHDR := false
	for {
		if len(p) < 12 {
			return nil, fmt.Errorf("png: %w", io.ErrUnexpectedEOF)
		}
		n := int(binary.BigEndian.Uint32(p))
		if n < 0 || n > len(p)-12 {
			return nil, fmt.Errorf("png: chunk length %d exceeds the data: %w", n, io.ErrUnexpectedEOF)
		}
		typ, body := string(p[4:8]), p[8:8+n]
		if crc32.ChecksumIEEE(p[4:8+n]) != binary.BigEndian.Uint32(p[8+n:]) {
			return nil, fmt.Errorf("png: invalid checksum in %s chunk", typ)
		}
		p = p[12+n:]
		switch typ {
		case "IHDR":
			if n != 13 {
				return nil, fmt.Errorf("png: bad IHDR length %d", n)
			}
			sawIHDR = true
			s.w, s.h = int(binary.BigEndian.Uint32(body)), int(binary.BigEndian.Uint32(body[4:]))
			depth, ct, interlace := body[8], body[9], body[12]
			if depth != 8 || interlace != 0 {
				return nil, errPNGFallback
			}
			s.colorType = ct
			switch ct {
			case pngGrey:
				s.bpp, s.mode = 1, modeL
			case pngTrueColor:
				s.bpp, s.mode = 3, modeRGB
			case pngPaletted:
				s.bpp, s.mode = 1, modeP
			case pngGreyAlpha:
				s.bpp, s.mode = 2, modeRGBA
			case pngRGBA:
				s.bpp, s.mode = 4, modeRGBA
			default:
				return nil, fmt.Errorf("png: bad colour type %d", ct)
			}
		case "PLTE":
			if n%3 != 0 || n > 256*3 {
				return nil, fmt.Errorf("png: bad PLTE length %d", n)
			}
			s.palette = make([][3]uint8, n/3)
			for i := range s.palette {
				copy(s.palette[i][:], body[3*i:])
			}
		case "IDAT":
			idats = append(idats, bytes.NewReader(body))
		case "IEND":
			if !sawIHDR {
				return nil, fmt.Errorf("png: missing IHDR")
			}
			if len(idats) == 0 {
				return nil, fmt.Errorf("png: no image data")
			}
			if s.colorType == pngPaletted && s.palette == nil {
				return nil, fmt.Errorf("png: paletted image without PLTE")
			}
			s.idat = io.MultiReader(idats...)
			return s, nil
		}
	}
}

func (s *pngSource) info() (mode, int, int, [][3]uint8) { return s.mode, s.w, s.h, s.palette }

func (s *pngSource) readRows(from, to, x0, x1 int, fn func(y int, row []uint8)) error {
	zr, err := zlib.NewReader(s.idat)
	if err != nil {
		return fmt.Errorf("png: %w", err)
	}
	defer zr.Close()
	stride := s.w * s.bpp
	cur, prev := make([]uint8, stride+1), make([]uint8, stride+1)
	var expanded []uint8
	if s.colorType == pngGreyAlpha {
		expanded = make([]uint8, 4*s.w)
	}
	ch := s.mode.channels()
	for y := range to {
		if _, err := io.ReadFull(zr, cur); err != nil {
			return fmt.Errorf("png: row %d: %w", y, err)
		}
		if err := unfilter(cur[0], cur[1:], prev[1:], s.bpp); err != nil {
			return fmt.Errorf("png: row %d: %w", y, err)
		}
		if y >= from {
			row := cur[1:]
			if expanded != nil {
				// LA: Pillow resizes it premultiplied like RGBA with equal
				// colour channels and converts to RGB by copying L.
				for i := range s.w {
					l, a := row[2*i], row[2*i+1]
					expanded[4*i], expanded[4*i+1], expanded[4*i+2], expanded[4*i+3] = l, l, l, a
				}
				row = expanded
			}
			fn(y, row[x0*ch:x1*ch])
		}
		cur, prev = prev, cur
	}
	return nil
}

// unfilter reverses one PNG row filter in place (section 9 of the spec).
func unfilter(ft byte, cur, prev []uint8, bpp int) error {
	switch ft {
	case 0:
	case 1: // Sub
		for i := bpp; i < len(cur); i++ {
			cur[i] += cur[i-bpp]
		}
	case 2: // Up
		prev = prev[:len(cur)]
		for i, p := range prev {
			cur[i] += p
		}
	case 3: // Average
		for i := range bpp {
			cur[i] += prev[i] / 2
		}
		for i := bpp; i < len(cur); i++ {
			cur[i] += uint8((int(cur[i-bpp]) + int(prev[i])) / 2)
		}
	case 4: // Paeth
		paeth(cur, prev, bpp)
	default:
		return fmt.Errorf("bad filter type %d", ft)
	}
	return nil
}

// paeth reverses the Paeth filter (section 9.4: predict whichever of a
// (left), b (up) and c (up-left) is closest to a+b-c, ties going to a, then
// b). The byte lanes of a pixel are independent chains, each depending on
// its left neighbour, so the common pixel sizes have loops that walk their
// lanes together with the left neighbours in registers, letting the CPU
// overlap the chains; the up-left neighbour is re-read from memory, which
// is off the critical path and keeps register pressure low.
func paeth(cur, prev []uint8, bpp int) {
	switch bpp {
	case 3:
		paeth3(cur, prev)
		return
	case 4:
		paeth4(cur, prev)
		return
	}
	n := len(cur)
	prev = prev[:n]
	for lane := range bpp {
		var a, c int32
		for i := lane; i < n; i += bpp {
			b := int32(prev[i])
			pa, pb := b-c, a-c
			pc := abs32(pa + pb)
			pa, pb = abs32(pa), abs32(pb)
			pred := a
			if pb < pa {
				pred, pa = b, pb
			}
			if pc < pa {
				pred = c
			}
			a = int32(uint8(int32(cur[i]) + pred))
			cur[i] = uint8(a)
			c = b
		}
	}
}

// paeth3 is paeth for 3-byte pixels.
//
//go:noinline
func paeth3(cur, prev []uint8) {
	n := len(cur)
	prev = prev[:n]
	if n < 3 {
		return
	}
	var a0, a1, a2 int32
	// The first pixel has no left neighbours: a = c = 0 predicts b.
	a0 = int32(cur[0] + prev[0])
	cur[0] = uint8(a0)
	a1 = int32(cur[1] + prev[1])
	cur[1] = uint8(a1)
	a2 = int32(cur[2] + prev[2])
	cur[2] = uint8(a2)
	var b, c, pa, pb, pc, c2 int32
	for i := 3; i+3 <= n; i += 3 {
		px, up, upLeft := cur[i:i+3:i+3], prev[i:i+3:i+3], prev[i-3:i:i]
		b, c = int32(up[0]), int32(upLeft[0])
		pa, pb = b-c, a0-c
		pc = abs32(pa + pb)
		pa, pb = abs32(pa), abs32(pb)
		if pb < pa {
			pa, c2 = pb, b
		} else {
			c2 = a0
		}
		if pc < pa {
			c2 = c
		}
		a0 = int32(uint8(int32(px[0]) + c2))
		px[0] = uint8(a0)
		b, c = int32(up[1]), int32(upLeft[1])
		pa, pb = b-c, a1-c
		pc = abs32(pa + pb)
		pa, pb = abs32(pa), abs32(pb)
		if pb < pa {
			pa, c2 = pb, b
		} else {
			c2 = a1
		}
		if pc < pa {
			c2 = c
		}
		a1 = int32(uint8(int32(px[1]) + c2))
		px[1] = uint8(a1)
		b, c = int32(up[2]), int32(upLeft[2])
		pa, pb = b-c, a2-c
		pc = abs32(pa + pb)
		pa, pb = abs32(pa), abs32(pb)
		if pb < pa {
			pa, c2 = pb, b
		} else {
			c2 = a2
		}
		if pc < pa {
			c2 = c
		}
		a2 = int32(uint8(int32(px[2]) + c2))
		px[2] = uint8(a2)
	}
}

// paeth4 is paeth for 4-byte pixels.
//
//go:noinline
func paeth4(cur, prev []uint8) {
	n := len(cur)
	prev = prev[:n]
	if n < 4 {
		return
	}
	var a0, a1, a2, a3 int32
	// The first pixel has no left neighbours: a = c = 0 predicts b.
	a0 = int32(cur[0] + prev[0])
	cur[0] = uint8(a0)
	a1 = int32(cur[1] + prev[1])
	cur[1] = uint8(a1)
	a2 = int32(cur[2] + prev[2])
	cur[2] = uint8(a2)
	a3 = int32(cur[3] + prev[3])
	cur[3] = uint8(a3)
	var b, c, pa, pb, pc, c2 int32
	for i := 4; i+4 <= n; i += 4 {
		px, up, upLeft := cur[i:i+4:i+4], prev[i:i+4:i+4], prev[i-4:i:i]
		b, c = int32(up[0]), int32(upLeft[0])
		pa, pb = b-c, a0-c
		pc = abs32(pa + pb)
		pa, pb = abs32(pa), abs32(pb)
		if pb < pa {
			pa, c2 = pb, b
		} else {
			c2 = a0
		}
		if pc < pa {
			c2 = c
		}
		a0 = int32(uint8(int32(px[0]) + c2))
		px[0] = uint8(a0)
		b, c = int32(up[1]), int32(upLeft[1])
		pa, pb = b-c, a1-c
		pc = abs32(pa + pb)
		pa, pb = abs32(pa), abs32(pb)
		if pb < pa {
			pa, c2 = pb, b
		} else {
			c2 = a1
		}
		if pc < pa {
			c2 = c
		}
		a1 = int32(uint8(int32(px[1]) + c2))
		px[1] = uint8(a1)
		b, c = int32(up[2]), int32(upLeft[2])
		pa, pb = b-c, a2-c
		pc = abs32(pa + pb)
		pa, pb = abs32(pa), abs32(pb)
		if pb < pa {
			pa, c2 = pb, b
		} else {
			c2 = a2
		}
		if pc < pa {
			c2 = c
		}
		a2 = int32(uint8(int32(px[2]) + c2))
		px[2] = uint8(a2)
		b, c = int32(up[3]), int32(upLeft[3])
		pa, pb = b-c, a3-c
		pc = abs32(pa + pb)
		pa, pb = abs32(pa), abs32(pb)
		if pb < pa {
			pa, c2 = pb, b
		} else {
			c2 = a3
		}
		if pc < pa {
			c2 = c
		}
		a3 = int32(uint8(int32(px[3]) + c2))
		px[3] = uint8(a3)
	}
}

func abs32(x int32) int32 {
	m := x >> 31
	return (x ^ m) - m
}
