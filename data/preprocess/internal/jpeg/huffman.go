// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
//
// Modified for bmca: a 64-bit bit accumulator over a byte slice, a 9-bit
// first-level look-up table, and for AC tables a table that decodes the
// symbol and its coefficient in one look-up (as stb_image's fast_ac).

package jpeg

// lookBits is the number of bits the first-level table decodes at once;
// nearly all codes are this short.
const lookBits = 9

// huffman is a Huffman decoding table (section C, Annex F.2.2.3).
type huffman struct {
	nCodes int
	// lut maps the next lookBits bits to (code length << 8 | value), or 0
	// when the code is longer.
	lut [1 << lookBits]uint16
	// maxCode[l] is the largest code of length l (1..16), -1 if none;
	// valOffset[l] turns a code of length l into an index of vals.
	maxCode   [18]int32
	valOffset [17]int32
	vals      [256]uint8
	// fast maps the next fastBits bits to a whole decoding step (fast
	// entry layout below), so that the sequential decoder needs one look-up
	// per symbol for every code of up to fastBits bits.
	fast [1 << fastBits]int32
}

// fastBits is the look-ahead of the fast table. Nearly all codes of a
// photo's or a figure's tables are this short, and nine in ten AC symbols
// fit in it together with their coefficient's extra bits.
const fastBits = 10

// A fast entry is one of three kinds, told apart by fastRare:
//
//   - fastRare clear: the code and its extra bits fit in the window. Bits
//     0–4 are the bits they span; bits 5–10 the zero run before the value
//     (63 for an end of block, which carries the position past any block's
//     end, 15 for a ZRL); bits 16–31 the sign-extended value (DC difference
//     or AC coefficient, 0 for EOB and ZRL). An AC step is then branch-free:
//     skip the bits, advance by the run, store the value, advance by one.
//   - fastRare set, bits 0–4 non-zero: the code fits but its extra bits do
//     not. Bits 0–4 are the code length, bits 5–10 the run and bits 12–15
//     the size of the value to read after the code.
//   - fastRare set, bits 0–4 zero: a longer code, decoded by slowSymbol.
const (
	fastLenMask   = 0x1f
	fastRunShift  = 5
	fastRunMask   = 0x3f
	fastRare      = 1 << 11
	fastSizeShift = 12
	fastEOBRun    = 63
)

// processDHT reads one or more Huffman tables (section B.2.4.2).
func (d *decoder) processDHT(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return FormatError("DHT has wrong length")
		}
		tc, th := seg[0]>>4, seg[0]&0x0f
		if tc > maxTc || th > maxTh || (d.baseline && th > 1) {
			return FormatError("bad Tc or Th value")
		}
		h := &d.huff[tc][th]
		var counts [17]int
		h.nCodes = 0
		for l := 1; l <= 16; l++ {
			counts[l] = int(seg[l])
			h.nCodes += counts[l]
		}
		if h.nCodes == 0 || h.nCodes > 256 || len(seg) < 17+h.nCodes {
			return FormatError("DHT has wrong length")
		}
		copy(h.vals[:], seg[17:17+h.nCodes])
		seg = seg[17+h.nCodes:]

		clear(h.lut[:])
		code, k := int32(0), 0
		for l := 1; l <= 16; l++ {
			h.valOffset[l] = int32(k) - code
			for range counts[l] {
				if code >= 1<<l {
					return FormatError("bad Huffman table")
				}
				if l <= lookBits {
					// Every lookBits-bit sequence starting with this code.
					shift := lookBits - l
					entry := uint16(l)<<8 | uint16(h.vals[k])
					for j := code << shift; j < (code+1)<<shift; j++ {
						h.lut[j] = entry
					}
				}
				code++
				k++
			}
			h.maxCode[l] = code - 1
			if counts[l] == 0 {
				h.maxCode[l] = -1
			}
			code <<= 1
		}
		h.maxCode[17] = 1 << 30 // sentinel
		h.buildFast(&counts, tc == 1)
		if tc == 1 {
			d.skipBuilt[th] = false // built from the old table
		}
	}
	return nil
}

// buildFast fills the fast table from the code lengths, in the order
// codes are assigned (section C). AC symbols are (run, size) pairs; DC
// symbols are sizes alone.
func (h *huffman) buildFast(counts *[17]int, ac bool) {
	for i := range h.fast {
		h.fast[i] = fastRare // codes longer than fastBits
	}
	code, k := 0, 0
	for l := 1; l <= 16; l++ {
		for range counts[l] {
			sym := h.vals[k]
			run, size := int32(sym>>4), int(sym&0x0f)
			if !ac {
				run, size = 0, int(sym)
			}
			if l <= fastBits {
				shift := fastBits - l
				for j := code << shift; j < (code+1)<<shift; j++ {
					h.fast[j] = fastEntry(j, l, run, size, ac)
				}
			}
			code++
			k++
		}
		code <<= 1
	}
}

// fastEntry is the fast table entry for window bits j that start with a
// code of length l for the symbol (run, size).
func fastEntry(j, l int, run int32, size int, ac bool) int32 {
	switch {
	case size > 15 || l+size > fastBits:
		// The value's extra bits run past the window (or the size is
		// invalid, which the rare path reports).
		return fastRare | int32(l) | run<<fastRunShift | int32(min(size, 15))<<fastSizeShift
	case size == 0 && ac && run != 15:
		return int32(l) | fastEOBRun<<fastRunShift // EOB (any run but 15 ends a sequential block)
	case size == 0:
		return int32(l) | run<<fastRunShift // ZRL, or a DC difference of 0
	}
	x := int32(j>>(fastBits-l-size)) & (1<<size - 1)
	if x < 1<<(size-1) {
		x += -1<<size + 1
	}
	return int32(l+size) | run<<fastRunShift | x<<16
}

// fill tops the accumulator up to at least 57 bits. Like libjpeg's
// jpeg_fill_bit_buffer, it un-stuffs 0xff00, skips 0xff fill bytes, and
// feeds zeros once a marker (or the end of the data) ends the segment,
// leaving the marker for the marker parser.
func (d *decoder) fill() {
	for d.nbits <= 56 {
		var b byte
		if d.hitMarker || d.pos >= len(d.data) {
			if !d.hitMarker {
				d.eofBits += 8
			}
			b = 0
		} else {
			b = d.data[d.pos]
			if b == 0xff {
				p := d.pos + 1
				for p < len(d.data) && d.data[p] == 0xff {
					p++
				}
				if p < len(d.data) && d.data[p] == 0 {
					d.pos = p + 1
				} else {
					// A marker: stop before it.
					d.hitMarker = true
					b = 0
				}
			} else {
				d.pos++
			}
		}
		d.acc |= uint64(b) << (56 - d.nbits)
		d.nbits += 8
	}
}

// resetBits discards the bits left in the accumulator: at the end of a
// scan or restart interval, the rest of the byte is padding.
func (d *decoder) resetBits() {
	d.acc, d.nbits, d.hitMarker, d.eofBits = 0, 0, false, 0
}

// truncated reports whether decoding consumed bits that were invented
// because the data ended, as opposed to zeros after a marker, which libjpeg
// accepts with a warning.
func (d *decoder) truncated() bool {
	return d.eofBits > d.nbits
}

// decodeHuffman returns the next Huffman-coded value.
func (d *decoder) decodeHuffman(h *huffman) (uint8, error) {
	if d.nbits < 16 {
		d.fill()
	}
	if v := h.lut[d.acc>>(64-lookBits)]; v != 0 {
		n := uint(v >> 8)
		d.acc <<= n
		d.nbits -= n
		return uint8(v), nil
	}
	if h.nCodes == 0 {
		return 0, FormatError("uninitialized Huffman table")
	}
	for l := lookBits + 1; l <= 16; l++ {
		code := int32(d.acc >> (64 - uint(l)))
		if code <= h.maxCode[l] {
			d.acc <<= uint(l)
			d.nbits -= uint(l)
			return h.vals[(h.valOffset[l]+code)&0xff], nil
		}
	}
	return 0, FormatError("bad Huffman code")
}

// receiveExtend reads t bits and sign-extends them (RECEIVE and EXTEND,
// section F.2.2.1). t is at most 16.
func (d *decoder) receiveExtend(t uint8) int32 {
	if t == 0 {
		return 0
	}
	if d.nbits < uint(t) {
		d.fill()
	}
	x := int32(d.acc >> (64 - uint(t)))
	d.acc <<= t
	d.nbits -= uint(t)
	if x < 1<<(t-1) {
		x += -1<<t + 1
	}
	return x
}

// decodeBits reads n raw bits.
func (d *decoder) decodeBits(n uint) int32 {
	if n == 0 {
		return 0
	}
	if d.nbits < n {
		d.fill()
	}
	x := int32(d.acc >> (64 - n))
	d.acc <<= n
	d.nbits -= n
	return x
}

// decodeBit reads one bit.
func (d *decoder) decodeBit() bool {
	if d.nbits == 0 {
		d.fill()
	}
	bit := d.acc>>63 != 0
	d.acc <<= 1
	d.nbits--
	return bit
}
