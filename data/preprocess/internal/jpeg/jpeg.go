// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
//
// Modified for bmca: decoding from a byte slice into component planes, with
// libjpeg-turbo's integer inverse DCTs (jidctint.c, jidctred.c) and its
// DCT-domain scaling rules. The marker parsing and the progressive-mode
// logic follow Go's image/jpeg.

// Package jpeg decodes 8-bit baseline and progressive JPEGs into component
// planes the way libjpeg-turbo does before upsampling and colour
// conversion: the inverse DCT is a port of libjpeg's JDCT_ISLOW (jidctint.c)
// and, for DCT-domain downscaling by 2, 4 or 8, of jidctred.c, with
// libjpeg's choice of per-component scaling. Planes decoded here are
// therefore bit-identical to libjpeg-turbo's, which is what Pillow (and so
// OpenCLIP) uses; upsampling and colour conversion are left to the caller.
//
//	img, err := jpeg.Decode(data, jpeg.Options{Scale: 1})
//	y := img.Components[0] // Pix, Stride, Width, Height, HFactor, VFactor
package jpeg

import (
	"errors"
	"fmt"
)

// ColorSpace is the colour space of the decoded components, decided as
// libjpeg's default_decompression_parms does.
type ColorSpace int

// The colour spaces a JPEG can be in.
const (
	Gray ColorSpace = iota
	YCbCr
	RGB
	CMYK
	YCCK
)

// String names the colour space.
func (c ColorSpace) String() string {
	return [...]string{"gray", "YCbCr", "RGB", "CMYK", "YCCK"}[c]
}

// Component is one decoded component plane at the output scale.
type Component struct {
	// Pix holds the samples, Stride bytes per row; rows and columns past
	// Width and Height are padding from the last block.
	Pix    []byte
	Stride int
	// Width and Height are the samples that belong to the image: libjpeg's
	// downsampled_width and downsampled_height after DCT scaling.
	Width, Height int
	// HFactor and VFactor are how many output pixels one sample spans
	// (1, 2 or 4), the upsampling the caller has to do.
	HFactor, VFactor int
	// Fancy says whether libjpeg would upsample this component with its
	// triangular ("fancy") filter rather than by replication.
	Fancy bool
	// BlockSize is the samples per side each 8×8 block was reconstructed
	// at: the plane is at BlockSize/8 of the component's own resolution.
	BlockSize int
}

// Image is a decoded JPEG.
type Image struct {
	// Width and Height are the output size: the image size divided by the
	// scale, rounded up.
	Width, Height int
	ColorSpace    ColorSpace
	Components    []Component
}

// Header is what the frame header says about an image.
type Header struct {
	Width, Height int
	Components    int
	Progressive   bool
}

// Options control decoding.
type Options struct {
	// Scale divides the output size with DCT-domain scaling, as libjpeg's
	// scale_num/scale_denom = 1/Scale: 1 (or 0), 2, 4 or 8.
	Scale int
	// MaxPixels refuses images whose width×height exceeds it, before any
	// plane is allocated; 0 means no limit.
	MaxPixels int64
	// BlockSizes, when not nil, is called with the frame header once it is
	// read, before any plane is allocated, and returns each component's
	// scaled block size N, 1 to 8: the component's 8×8 blocks are
	// reconstructed at N×N samples from their lowest-frequency
	// coefficients, so that it comes out at N/8 of its own resolution
	// (Component.BlockSize). Scale, ScaleFor and libjpeg's choice per
	// component are then ignored; Image.Width and Height are the full image
	// size and Component.Fancy is false. Size 8 is libjpeg's inverse DCT and
	// 1 its DC average; 2 to 7 an N-point inverse DCT of the N×N lowest
	// frequencies (a band-limited reduction, like libjpeg's, but not its
	// jidctred arithmetic), and in sequential scans the AC symbols past that
	// corner are only skipped, several per look-up. A caller resizing each
	// plane to a given size can so decode each at the smallest size that
	// still covers it.
	BlockSizes func(Frame) [MaxComponents]int
	// ScaleFor, when not nil, is called with the image's size once the frame
	// header is read, before any plane is allocated, and the scale it
	// returns (1, 2, 4 or 8) replaces Scale: a caller can choose the scale
	// from the size without parsing the header twice.
	ScaleFor func(width, height int) int
	// Scratch, when not nil, lends Decode its buffers, so that a caller
	// decoding many images does not allocate them each time. The returned
	// Image's planes then live in the scratch: they are valid until the next
	// Decode with it. A Scratch is not safe for concurrent use.
	Scratch *Scratch
}

// MaxComponents is the most components a frame has.
const MaxComponents = maxComponents

// Frame is what the frame header says, for Options.BlockSizes: the image's
// size, its number of components, their sampling factors and the largest.
type Frame struct {
	Width, Height int
	Components    int
	H, V          [MaxComponents]int
	HMax, VMax    int
}

// Scratch holds the buffers of one Decode for reuse by the next
// (Options.Scratch). The zero value is ready to use.
type Scratch struct {
	dec    decoder // its Huffman tables alone are tens of kilobytes
	planes [maxComponents][]byte
	coeffs [maxComponents][]block
	seg    segment
	skip   [maxTh + 1]acSkipTable
}

// grow returns buf resized to n elements, all zero, reusing its storage
// when it is large enough.
func grow[T any](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	buf = buf[:n]
	clear(buf)
	return buf
}

// A FormatError reports that the input is not a valid JPEG.
type FormatError string

// Error describes the format problem.
func (e FormatError) Error() string { return "invalid JPEG format: " + string(e) }

// An UnsupportedError reports a valid JPEG feature this decoder does not
// implement (12-bit samples, arithmetic coding, lossless mode, 4-component
// images, exotic sampling factors). Callers can fall back to another decoder.
type UnsupportedError string

// Error names the unsupported feature.
func (e UnsupportedError) Error() string { return "unsupported JPEG feature: " + string(e) }

// ErrTooLarge is returned (wrapped) when the frame exceeds Options.MaxPixels.
var ErrTooLarge = errors.New("image too large")

// ErrTruncated is returned when the data ends inside an entropy-coded
// segment: Pillow refuses such files ("image file is truncated").
var ErrTruncated = FormatError("truncated entropy-coded data")

const (
	blockSize = 64

	maxTc = 1
	maxTh = 3
	maxTq = 3

	maxComponents = 4
)

const (
	sof0Marker = 0xc0 // Start Of Frame (Baseline Sequential).
	sof1Marker = 0xc1 // Start Of Frame (Extended Sequential).
	sof2Marker = 0xc2 // Start Of Frame (Progressive).
	dhtMarker  = 0xc4 // Define Huffman Table.
	rst0Marker = 0xd0 // ReSTart (0).
	rst7Marker = 0xd7 // ReSTart (7).
	soiMarker  = 0xd8 // Start Of Image.
	eoiMarker  = 0xd9 // End Of Image.
	sosMarker  = 0xda // Start Of Scan.
	dqtMarker  = 0xdb // Define Quantization Table.
	driMarker  = 0xdd // Define Restart Interval.
	comMarker  = 0xfe // COMment.
	app0Marker = 0xe0
	app14Mark  = 0xee
	app15Mark  = 0xef
)

// unzig maps from the zig-zag ordering to the natural ordering.
var unzig = [blockSize]int{
	0, 1, 8, 16, 9, 2, 3, 10,
	17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34,
	27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36,
	29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46,
	53, 60, 61, 54, 47, 55, 62, 63,
}

// block holds the coefficients of one 8×8 block in natural order.
type block [blockSize]int32

// component is a frame component (section B.2.2) plus its decoding state.
type component struct {
	h, v  int   // sampling factors
	c     uint8 // component identifier
	tq    uint8 // quantization table selector
	ss    int   // DCT scaled size: samples per block side in the output (1, 2, 4, 8)
	bw    int   // blocks per row that hold image data (non-interleaved scans)
	bh    int   // block rows that hold image data
	plane []byte
	pstr  int // plane stride
}

// decoder holds the state of one Decode call.
type decoder struct {
	data []byte
	pos  int // next byte of data to parse

	// Entropy decoding: acc holds nbits bits, most significant first.
	acc       uint64
	nbits     uint
	hitMarker bool // a marker ended the segment; zeros are fed from here on
	eofBits   uint // zero bits fed because the data ended

	width, height int
	nComp         int
	comp          [maxComponents]component
	hmax, vmax    int
	mxx, myy      int                // MCUs per row and column in interleaved scans
	minSS         int                // libjpeg's min_DCT_scaled_size
	blockSizes    [maxComponents]int // Options.BlockSizes's answer

	baseline, progressive bool
	jfif                  bool
	adobe                 bool
	adobeTransform        uint8
	sawSOF                bool
	ri                    int // restart interval in MCUs
	eobRun                int
	lumaDC                *lumaDCState // DecodeLumaDC's, nil for Decode

	huff     [maxTc + 1][maxTh + 1]huffman
	quant    [maxTq + 1]block // natural order
	coeffs   [maxComponents][]block
	opts     Options
	rangeLim [1024]uint8
	// genericEntropy routes sequential scans through decodeBlock, the
	// straightforward decoder the fast path is tested against.
	genericEntropy bool
	seg            segment                 // sequentialScan's unstuffed restart interval
	skips          [maxTh + 1]*acSkipTable // sequentialScan's, by AC table (Options.BlockSizes)
	skipBuilt      [maxTh + 1]bool
	scanned        [maxComponents]bool
}

// DecodeHeader reads the frame header: enough to refuse an image by its
// size before decoding it.
func DecodeHeader(data []byte) (Header, error) {
	d := decoder{data: data}
	if err := d.parse(true); err != nil {
		return Header{}, err
	}
	return Header{Width: d.width, Height: d.height, Components: d.nComp, Progressive: d.progressive}, nil
}

// Decode decodes a JPEG into component planes.
func Decode(data []byte, opts Options) (*Image, error) {
	if err := checkScale(&opts.Scale); err != nil {
		return nil, err
	}
	var d *decoder
	if opts.Scratch != nil {
		d = &opts.Scratch.dec
		*d = decoder{data: data, opts: opts}
	} else {
		d = &decoder{data: data, opts: opts}
	}
	initRangeLimit(&d.rangeLim)
	if err := d.parse(false); err != nil {
		return nil, err
	}
	if d.progressive {
		d.reconstructProgressive()
	}
	if d.opts.Scratch != nil {
		for i := range d.nComp {
			if !d.scanned[i] {
				clear(d.comp[i].plane) // what a fresh plane would hold
			}
		}
	}
	return d.image(), nil
}

// checkScale accepts the scales Decode implements, 0 meaning 1.
func checkScale(scale *int) error {
	switch *scale {
	case 0:
		*scale = 1
	case 1, 2, 4, 8:
	default:
		return fmt.Errorf("jpeg: scale 1/%d not supported (1, 2, 4 or 8)", *scale)
	}
	return nil
}

// parse walks the markers; headerOnly stops at the frame header.
func (d *decoder) parse(headerOnly bool) error {
	if len(d.data) < 2 || d.data[0] != 0xff || d.data[1] != soiMarker {
		return FormatError("missing SOI marker")
	}
	d.pos = 2
	sawSOS := false
	for {
		marker, err := d.nextMarker()
		if err != nil {
			if sawSOS && err == errEOF {
				// A missing EOI after complete scans is common and harmless;
				// libjpeg only warns.
				return nil
			}
			return err
		}
		if marker == eoiMarker {
			break
		}
		if rst0Marker <= marker && marker <= rst7Marker {
			// A stray restart marker after the last interval: ignore it, as
			// Go and libjpeg do.
			continue
		}
		if marker == 0x01 { // TEM, no length
			continue
		}
		if d.pos+2 > len(d.data) {
			return errEOF
		}
		n := int(d.data[d.pos])<<8 | int(d.data[d.pos+1]) - 2
		d.pos += 2
		if n < 0 {
			return FormatError("short segment length")
		}
		if d.pos+n > len(d.data) {
			return errEOF
		}
		seg := d.data[d.pos : d.pos+n]
		d.pos += n
		switch marker {
		case sof0Marker, sof1Marker, sof2Marker:
			d.baseline = marker == sof0Marker
			d.progressive = marker == sof2Marker
			if err := d.processSOF(seg); err != nil {
				return err
			}
			if headerOnly {
				return nil
			}
		case 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf:
			return UnsupportedError(fmt.Sprintf("SOF marker 0x%02x (lossless, hierarchical or arithmetic coding)", marker))
		case dhtMarker:
			if err := d.processDHT(seg); err != nil {
				return err
			}
		case dqtMarker:
			if err := d.processDQT(seg); err != nil {
				return err
			}
		case sosMarker:
			if headerOnly {
				return FormatError("SOS before SOF")
			}
			if err := d.processSOS(seg); err != nil {
				return err
			}
			sawSOS = true
		case driMarker:
			if len(seg) != 2 {
				return FormatError("DRI has wrong length")
			}
			d.ri = int(seg[0])<<8 | int(seg[1])
		case app0Marker:
			if len(seg) >= 5 && string(seg[:5]) == "JFIF\x00" {
				d.jfif = true
			}
		case app14Mark:
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				d.adobe = true
				d.adobeTransform = seg[11]
			}
		default:
			if app0Marker <= marker && marker <= app15Mark || marker == comMarker {
				continue
			}
			if marker < 0xc0 {
				return FormatError("unknown marker")
			}
			return UnsupportedError(fmt.Sprintf("marker 0x%02x", marker))
		}
	}
	if !d.sawSOF {
		return FormatError("missing SOF marker")
	}
	if !headerOnly && !sawSOS {
		return FormatError("missing SOS marker")
	}
	return nil
}

var errEOF = FormatError("unexpected end of data")

// nextMarker skips to the next marker and returns its code. Like libjpeg
// (and Go), extraneous bytes before a marker are skipped.
func (d *decoder) nextMarker() (byte, error) {
	for {
		for d.pos < len(d.data) && d.data[d.pos] != 0xff {
			d.pos++
		}
		// Skip fill bytes.
		for d.pos < len(d.data) && d.data[d.pos] == 0xff {
			d.pos++
		}
		if d.pos >= len(d.data) {
			return 0, errEOF
		}
		m := d.data[d.pos]
		d.pos++
		if m != 0 { // 0xff00 is stuffed data, not a marker
			return m, nil
		}
	}
}

// Specified in section B.2.2.
func (d *decoder) processSOF(seg []byte) error {
	if d.sawSOF {
		return FormatError("multiple SOF markers")
	}
	d.sawSOF = true
	if len(seg) < 6 {
		return FormatError("SOF has wrong length")
	}
	if seg[0] != 8 {
		return UnsupportedError(fmt.Sprintf("%d-bit precision", seg[0]))
	}
	d.height = int(seg[1])<<8 | int(seg[2])
	d.width = int(seg[3])<<8 | int(seg[4])
	d.nComp = int(seg[5])
	if d.width == 0 || d.height == 0 {
		return FormatError("empty image (DNL markers are not supported)")
	}
	switch d.nComp {
	case 1, 3:
	case 4:
		return UnsupportedError("4-component (CMYK/YCCK) image")
	default:
		return UnsupportedError(fmt.Sprintf("%d components", d.nComp))
	}
	if len(seg) != 6+3*d.nComp {
		return FormatError("SOF has wrong length")
	}
	for i := range d.nComp {
		c := &d.comp[i]
		c.c = seg[6+3*i]
		for j := range i {
			if c.c == d.comp[j].c {
				return FormatError("repeated component identifier")
			}
		}
		c.tq = seg[8+3*i]
		if c.tq > maxTq {
			return FormatError("bad Tq value")
		}
		hv := seg[7+3*i]
		c.h, c.v = int(hv>>4), int(hv&0x0f)
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 {
			return FormatError("bad sampling factors")
		}
		if d.nComp == 1 {
			// A single-component image is non-interleaved by definition:
			// its sampling factors do not matter (section A.2).
			c.h, c.v = 1, 1
		}
		d.hmax, d.vmax = max(d.hmax, c.h), max(d.vmax, c.v)
	}
	for i := range d.nComp {
		c := &d.comp[i]
		if d.hmax%c.h != 0 || d.vmax%c.v != 0 {
			return UnsupportedError("non-integral sampling ratio")
		}
	}
	if d.opts.MaxPixels > 0 && int64(d.width)*int64(d.height) > d.opts.MaxPixels {
		return fmt.Errorf("jpeg: %d×%d pixels: %w (limit %d)", d.width, d.height, ErrTooLarge, d.opts.MaxPixels)
	}
	switch {
	case d.opts.BlockSizes != nil:
		f := Frame{Width: d.width, Height: d.height, Components: d.nComp, HMax: d.hmax, VMax: d.vmax}
		for i := range d.nComp {
			f.H[i], f.V[i] = d.comp[i].h, d.comp[i].v
		}
		d.blockSizes = d.opts.BlockSizes(f)
		for i := range d.nComp {
			if n := d.blockSizes[i]; n < 1 || n > 8 {
				return fmt.Errorf("jpeg: block size %d for component %d not supported (1 to 8)", n, i)
			}
		}
	case d.opts.ScaleFor != nil:
		d.opts.Scale = d.opts.ScaleFor(d.width, d.height)
		if err := checkScale(&d.opts.Scale); err != nil {
			return err
		}
	}
	d.mxx = (d.width + 8*d.hmax - 1) / (8 * d.hmax)
	d.myy = (d.height + 8*d.vmax - 1) / (8 * d.vmax)
	return nil
}

// Specified in section B.2.4.1. Tables are stored in natural order.
func (d *decoder) processDQT(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, seg[0]&0x0f
		seg = seg[1:]
		if tq > maxTq {
			return FormatError("bad Tq value")
		}
		switch pq {
		case 0:
			if len(seg) < blockSize {
				return FormatError("DQT has wrong length")
			}
			for zig := range blockSize {
				d.quant[tq][unzig[zig]] = int32(seg[zig])
			}
			seg = seg[blockSize:]
		case 1:
			if len(seg) < 2*blockSize {
				return FormatError("DQT has wrong length")
			}
			for zig := range blockSize {
				d.quant[tq][unzig[zig]] = int32(seg[2*zig])<<8 | int32(seg[2*zig+1])
			}
			seg = seg[2*blockSize:]
		default:
			return FormatError("bad Pq value")
		}
	}
	return nil
}

// colorSpace decides the colour space as libjpeg's
// default_decompression_parms does.
func (d *decoder) colorSpace() ColorSpace {
	if d.nComp == 1 {
		return Gray
	}
	switch {
	case d.jfif:
		return YCbCr
	case d.adobe:
		if d.adobeTransform == 0 {
			return RGB
		}
		return YCbCr
	case d.comp[0].c == 'R' && d.comp[1].c == 'G' && d.comp[2].c == 'B':
		return RGB
	}
	return YCbCr
}

// setupScaling picks each component's DCT scaled size and allocates its
// plane, as libjpeg's jpeg_calc_output_dimensions does: chroma is scaled up
// in the DCT domain where that saves an upsampling step.
func (d *decoder) setupScaling() {
	d.minSS = 8 / d.opts.Scale
	if d.opts.BlockSizes != nil {
		d.minSS = 8
		for i := range d.nComp {
			d.minSS = min(d.minSS, d.blockSizes[i])
		}
	}
	for i := range d.nComp {
		c := &d.comp[i]
		ss := d.minSS
		for ss < 8 && (d.hmax*d.minSS)%(c.h*ss*2) == 0 && (d.vmax*d.minSS)%(c.v*ss*2) == 0 {
			ss *= 2
		}
		if d.opts.BlockSizes != nil {
			ss = d.blockSizes[i]
		}
		c.ss = ss
		compW := ceilDiv(d.width*c.h, d.hmax)
		compH := ceilDiv(d.height*c.v, d.vmax)
		c.bw, c.bh = ceilDiv(compW, 8), ceilDiv(compH, 8)
		// Interleaved scans cover whole MCUs, so the plane is padded to them.
		c.pstr = d.mxx * c.h * ss
		if sc := d.opts.Scratch; sc != nil {
			// Not cleared: the scans write every block the image's samples
			// lie in, and Decode clears the plane of a component no scan
			// covers.
			n := c.pstr * d.myy * c.v * ss
			if cap(sc.planes[i]) < n {
				sc.planes[i] = make([]byte, n)
			}
			sc.planes[i] = sc.planes[i][:n]
			c.plane = sc.planes[i]
		} else {
			c.plane = make([]byte, c.pstr*d.myy*c.v*ss)
		}
	}
}

// image wraps the planes with what the caller needs to upsample them.
func (d *decoder) image() *Image {
	img := &Image{
		Width:      ceilDiv(d.width*d.minSS, 8),
		Height:     ceilDiv(d.height*d.minSS, 8),
		ColorSpace: d.colorSpace(),
	}
	if d.opts.BlockSizes != nil {
		img.Width, img.Height = d.width, d.height
		for i := range d.nComp {
			c := &d.comp[i]
			img.Components = append(img.Components, Component{
				Pix:       c.plane,
				Stride:    c.pstr,
				Width:     ceilDiv(d.width*c.h*c.ss, d.hmax*8),
				Height:    ceilDiv(d.height*c.v*c.ss, d.vmax*8),
				HFactor:   d.hmax / c.h,
				VFactor:   d.vmax / c.v,
				BlockSize: c.ss,
			})
		}
		return img
	}
	doFancy := d.minSS > 1
	for i := range d.nComp {
		c := &d.comp[i]
		hIn, vIn := c.h*c.ss/d.minSS, c.v*c.ss/d.minSS
		hf, vf := d.hmax/max(hIn, 1), d.vmax/max(vIn, 1)
		comp := Component{
			Pix:       c.plane,
			Stride:    c.pstr,
			Width:     ceilDiv(d.width*c.h*c.ss, d.hmax*8),
			Height:    ceilDiv(d.height*c.v*c.ss, d.vmax*8),
			HFactor:   hf,
			VFactor:   vf,
			BlockSize: c.ss,
		}
		switch {
		case hf == 2 && (vf == 1 || vf == 2):
			comp.Fancy = doFancy && comp.Width > 2
		case hf == 1 && vf == 2:
			comp.Fancy = doFancy
		}
		img.Components = append(img.Components, comp)
	}
	return img
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
