package jpeg

import (
	"bytes"
	"encoding/binary"
)

// This file is the fast path for sequential (baseline and extended) scans,
// which are nearly all the JPEGs a trainer reads. It computes what
// decodeBlock and fill compute, bit for bit, faster:
//
//   - Each restart interval's entropy-coded bytes are first copied out of
//     the file with the 0xff00 stuffing removed (bytes.IndexByte finds the
//     0xff bytes), into a buffer padded with zeros. The bit reader then
//     loads eight bytes at a time with no test for 0xff, markers or the end
//     of the data; the zeros are what libjpeg feeds once a marker or the end
//     of the data stops the segment.
//   - The fast tables decode nearly every symbol, with its value, in one
//     look-up, and an AC step that fits is free of branches: an end of
//     block carries the position past the block's end (fast entry layout).
//   - The scan's loops, the bit reader and the block live in one function,
//     and a block with no AC coefficient is cleared in one store.

// segPad is the zero padding after an unstuffed segment: more than one
// block can consume (64 symbols of at most 32 bits, plus an eight-byte
// load), so the reader only has to be pulled back once per block.
const segPad = 512

// segment is one restart interval's unstuffed entropy-coded data.
type segment struct {
	buf []byte // the data, then segPad zero bytes
	end int    // bytes of data in buf
	eof bool   // the data ended without a marker (bits past end are invented)
}

// unstuff copies the entropy-coded bytes from d.pos up to the next marker
// into s, without the stuffed zero bytes, and leaves d.pos at the marker (or
// at the end of the data), where fill would have stopped: a 0xff followed
// by 0x00 is a data byte 0xff (fill bytes 0xff before it are dropped), a
// 0xff followed by anything else is a marker, and 0xff bytes that run to
// the end of the data count as a marker too.
func (d *decoder) unstuff(s *segment) {
	data := d.data
	p := d.pos
	if need := len(data) - p + segPad; cap(s.buf) < need {
		s.buf = make([]byte, 0, need)
	}
	buf := s.buf[:0]
	s.eof = false
	for {
		i := bytes.IndexByte(data[p:], 0xff)
		if i < 0 {
			buf = append(buf, data[p:]...)
			p = len(data)
			s.eof = true
			break
		}
		buf = append(buf, data[p:p+i]...)
		p += i
		q := p + 1
		for q < len(data) && data[q] == 0xff {
			q++
		}
		if q < len(data) && data[q] == 0 {
			buf = append(buf, 0xff)
			p = q + 1
			continue
		}
		break // a marker: stop at its first 0xff
	}
	s.end = len(buf)
	buf = buf[:len(buf)+segPad]
	clear(buf[s.end:])
	s.buf = buf
	d.pos = p
}

// bitReader is the fast path's entropy decoder state, passed and
// returned by value so that it stays in registers: acc holds n valid bits
// from the top; the bits below them are the start of the bytes from pos
// on, put there by the eight-byte refill, which ORs them in again at the
// same place next time.
type bitReader struct {
	acc uint64
	n   uint
	pos int
}

// blockRef is what sequentialScan needs for one block of an MCU.
type blockRef struct {
	ci     int
	dc, ac *huffman
	// last is the last zig-zag position the reconstruction reads; the
	// symbols after it are only skipped, through skip.
	last   int
	skip   *acSkipTable
	q      *block // the component's quantisation table
	plane  []byte
	stride int // plane stride
	ss     int // DCT scaled size
	// truncated selects idctNxN at every size but 1 and 8
	// (Options.BlockSizes).
	truncated bool
	// off is the plane offset of the block in the MCU at (0, 0); an MCU
	// step moves it by mcuX bytes across and mcuY down.
	off, mcuX, mcuY int
}

// lastZig is, for n from 1 to 8, the last zig-zag position of the n×n
// lowest frequencies, which idctNxN reads.
var lastZig = func() (t [9]int) {
	for zig, nat := range unzig {
		n := max(nat/8, nat%8) + 1
		t[n] = max(t[n], zig)
	}
	for n := 2; n <= 8; n++ {
		t[n] = max(t[n], t[n-1])
	}
	return t
}()

// sequentialScan decodes a sequential scan of the components in scan and
// reconstructs its blocks.
func (d *decoder) sequentialScan(scan []scanComp) error {
	var refs [10]blockRef // an interleaved MCU holds at most 10 blocks
	n := 0
	mxx, myy := d.mxx, d.myy
	truncated := d.opts.BlockSizes != nil
	for _, sc := range scan {
		c := &d.comp[sc.ci]
		r := blockRef{ci: sc.ci, dc: &d.huff[0][sc.td], ac: &d.huff[1][sc.ta], last: blockSize - 1, q: &d.quant[c.tq],
			plane: c.plane, stride: c.pstr, ss: c.ss, truncated: truncated}
		if truncated && c.ss < 8 {
			// The reconstruction reads the n×n corner only: skip the rest.
			r.last = lastZig[c.ss]
			r.skip = d.skipTable(sc.ta)
		}
		if len(scan) == 1 {
			// Non-interleaved: one block per MCU, covering only the blocks
			// that hold image data (section A.2.2).
			mxx, myy = c.bw, c.bh
			r.mcuX, r.mcuY = c.ss, c.ss*c.pstr
			refs[0] = r
			n = 1
			break
		}
		r.mcuX, r.mcuY = c.h*c.ss, c.v*c.ss*c.pstr
		for j := range c.h * c.v {
			r.off = (j/c.h)*c.ss*c.pstr + (j%c.h)*c.ss
			refs[n] = r
			n++
		}
	}
	var pred [maxComponents]int32
	var b block
	seg := &d.seg
	if d.opts.Scratch != nil {
		seg = &d.opts.Scratch.seg
	}
	d.unstuff(seg)
	var br bitReader
	over := 0 // bytes read past seg.end and pulled back
	expectedRST := byte(rst0Marker)
	for m := range mxx * myy {
		if d.ri != 0 && m > 0 && m%d.ri == 0 {
			if seg.eof && 8*(over+max(br.pos-seg.end, 0)) > int(br.n) {
				return ErrTruncated
			}
			if err := d.findRST(expectedRST); err != nil {
				return err
			}
			expectedRST++
			if expectedRST > rst7Marker {
				expectedRST = rst0Marker
			}
			d.unstuff(seg)
			br, over = bitReader{}, 0
			pred = [maxComponents]int32{}
		}
		mx, my := m%mxx, m/mxx
		for i := range refs[:n] {
			r := &refs[i]
			if br.pos > seg.end {
				// Past the data only zeros remain: read them again from
				// the start of the padding.
				over += br.pos - seg.end
				br.pos = seg.end
			}
			var nz int32
			var err error
			br, pred[r.ci], nz, err = decodeBlockSeq(seg.buf, br, &b, r, pred[r.ci])
			if err != nil {
				return err
			}
			out := r.plane[r.off+my*r.mcuY+mx*r.mcuX:]
			if nz == 0 {
				// Only a DC coefficient: every IDCT gives the same flat
				// block, libjpeg's zero-column and zero-row shortcut value.
				fill(out, r.stride, r.ss, limit(&d.rangeLim, descale(int(b[0]*r.q[0])<<pass1Bits, pass1Bits+3)))
				b[0] = 0
				continue
			}
			switch {
			case r.ss == 8:
				idctIslow(&b, r.q, out, r.stride, &d.rangeLim)
			case r.truncated && r.ss > 1:
				idctNxN(&b, r.q, out, r.stride, r.ss, &d.rangeLim)
			case r.ss == 4:
				idct4x4(&b, r.q, out, r.stride, &d.rangeLim)
			case r.ss == 2:
				idct2x2(&b, r.q, out, r.stride, &d.rangeLim)
			case r.ss == 1:
				idct1x1(&b, r.q, out, &d.rangeLim)
			default:
				idctNxN(&b, r.q, out, r.stride, r.ss, &d.rangeLim)
			}
			b = block{}
		}
	}
	if seg.eof && 8*(over+max(br.pos-seg.end, 0)) > int(br.n) {
		return ErrTruncated
	}
	return nil
}

// fill sets an ss×ss block of a plane to v.
func fill(out []byte, stride, ss int, v byte) {
	switch ss {
	case 1:
		out[0] = v
	case 2:
		o := out[:stride+2]
		o[0], o[1], o[stride], o[stride+1] = v, v, v, v
	default:
		for r := range ss {
			row := out[r*stride : r*stride+ss]
			for i := range row {
				row[i] = v
			}
		}
	}
}

// decodeBlockSeq decodes one block of a sequential scan from the unstuffed
// segment buf into b, which must be zero, from the reader state br and the
// component's DC predictor, and returns both updated. nz is non-zero when
// the block has a non-zero AC coefficient. Like libjpeg (jdhuff.c), a
// coefficient whose run overshoots the block is read and stored at the
// last position (jpeg_natural_order's padding), ending the block.
func decodeBlockSeq(buf []byte, br bitReader, b *block, r *blockRef, pred int32) (bitReader, int32, int32, error) {
	acc, nbits, pos := br.acc, br.n, br.pos
	dcTab, acTab, last := r.dc, r.ac, r.last
	if nbits < 32 {
		acc |= binary.BigEndian.Uint64(buf[pos:]) >> nbits
		pos += int((63 - nbits) >> 3)
		nbits |= 56
	}
	e := dcTab.fast[acc>>(64-fastBits)]
	if e&fastRare != 0 {
		t, n, ok := slowSymbol(dcTab, acc)
		if !ok {
			return bitReader{acc, nbits, pos}, pred, 0, FormatError("bad Huffman code")
		}
		if t > 16 {
			return bitReader{acc, nbits, pos}, pred, 0, FormatError("excessive DC component")
		}
		acc <<= n
		nbits -= n
		e = 0
		if t > 0 {
			x := int32(acc >> (64 - uint(t)))
			acc <<= t
			nbits -= uint(t)
			if x < 1<<(t-1) {
				x += -1<<t + 1
			}
			e = x << 16
		}
	} else {
		n := uint(e & fastLenMask)
		acc <<= n
		nbits -= n
	}
	pred += e >> 16
	b[0] = pred
	var nz int32
	zig := 1
	for zig <= last {
		if nbits < 32 {
			acc |= binary.BigEndian.Uint64(buf[pos:]) >> nbits
			pos += int((63 - nbits) >> 3)
			nbits |= 56
		}
		e := acTab.fast[acc>>(64-fastBits)]
		if e&fastRare == 0 {
			n := uint(e & fastLenMask)
			acc <<= n
			nbits -= n
			zig += int(e>>fastRunShift) & fastRunMask
			v := e >> 16
			b[naturalPadded[zig&127]&(blockSize-1)] = v
			nz |= v
			zig++
			continue
		}
		run, size := int(e>>fastRunShift)&fastRunMask, uint(e>>fastSizeShift)&0x0f
		if n := uint(e & fastLenMask); n != 0 {
			acc <<= n
			nbits -= n
		} else {
			sym, n, ok := slowSymbol(acTab, acc)
			if !ok {
				return bitReader{acc, nbits, pos}, pred, 0, FormatError("bad Huffman code")
			}
			acc <<= n
			nbits -= n
			run, size = int(sym>>4), uint(sym&0x0f)
			if size == 0 {
				if run != 0x0f {
					break
				}
				zig += 16
				continue
			}
		}
		x := int32(acc >> (64 - size))
		acc <<= size
		nbits -= size
		if x < 1<<(size-1) {
			x += -1<<size + 1
		}
		zig += run
		b[naturalPadded[zig&127]&(blockSize-1)] = x
		nz |= x
		zig++
	}
	if zig < blockSize {
		// The rest of the block is not reconstructed: skip its symbols,
		// several per look-up where they fit in the skip table's window.
		skip := r.skip
		for zig < blockSize {
			if nbits < 32 {
				acc |= binary.BigEndian.Uint64(buf[pos:]) >> nbits
				pos += int((63 - nbits) >> 3)
				nbits |= 56
			}
			if e := skip[acc>>(64-skipBits)]; e != 0 {
				if zig+int(e>>(skipRunShift+skipAdvShift)&(skipEnd-1)) <= blockSize {
					e >>= skipRunShift // the whole run of symbols
				}
				n := uint(e & skipLenMask)
				acc <<= n
				nbits -= n
				zig += int(e >> skipAdvShift & skipAdvMask) // past 64 after an end of block
				continue
			}
			sym, n, ok := slowSymbol(acTab, acc)
			if !ok {
				return bitReader{acc, nbits, pos}, pred, 0, FormatError("bad Huffman code")
			}
			size := uint(sym & 0x0f)
			acc <<= n + size
			nbits -= n + size
			switch {
			case size != 0:
				zig += int(sym>>4) + 1
			case sym>>4 == 0x0f:
				zig += 16
			default:
				zig = blockSize // end of block
			}
		}
	}
	return bitReader{acc, nbits, pos}, pred, nz, nil
}

// skipTable returns the skip table of AC table ta, building it for this
// image the first time a scan asks (in the Scratch when there is one).
func (d *decoder) skipTable(ta uint8) *acSkipTable {
	if d.skipBuilt[ta] {
		return d.skips[ta]
	}
	if d.skips[ta] == nil {
		if sc := d.opts.Scratch; sc != nil {
			d.skips[ta] = &sc.skip[ta]
		} else {
			d.skips[ta] = new(acSkipTable)
		}
	}
	d.skips[ta].build(&d.huff[1][ta])
	d.skipBuilt[ta] = true
	return d.skips[ta]
}
