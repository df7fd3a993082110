package jpeg

import "encoding/binary"

// DecodeLumaDC decodes the 1/8-scale plane of a JPEG's first component —
// the luma of a YCbCr or grey image — from its DC coefficients alone: it is
// bit for bit Decode(data, Options{Scale: 8, MaxPixels: maxPixels})'s
// Components[0], at a fraction of the work, for thumbnails and hashes.
//
// At 1/8 scale a block's sample is its dequantised DC coefficient, so
// nothing else is reconstructed. Sequential scans still have to be
// entropy-decoded in full to find where each block starts, but AC
// coefficients are only skipped (a look-up table gives the bits and block
// positions of the next symbol, or of the next few when they fit in its
// window, with no value to extend, dequantise or store), and other
// components' DC values are not accumulated. Progressive
// AC scans, and scans without the first component, are not decoded at all:
// the marker parser steps over them. So unlike Decode, data that ends
// inside a skipped scan is not reported as truncated, since the plane does
// not depend on it. Corrupt data that runs a coefficient past the end of a
// block is read as libjpeg reads it (the coefficient's bits consumed, the
// block ended).
//
// The returned Image has the one component. A first component sampled
// below the image's maximum (which Decode would scale in the DCT domain at
// more than one sample per block) gives an UnsupportedError.
func DecodeLumaDC(data []byte, maxPixels int64) (*Image, error) {
	d := decoder{data: data, opts: Options{Scale: 8, MaxPixels: maxPixels}, lumaDC: &lumaDCState{}}
	initRangeLimit(&d.rangeLim)
	if err := d.parse(false); err != nil {
		return nil, err
	}
	if d.progressive {
		d.lumaDCReconstruct()
	}
	img := d.image()
	img.Components = img.Components[:1]
	return img, nil
}

// lumaDCState is DecodeLumaDC's state across scans.
type lumaDCState struct {
	// coef holds the first component's DC coefficients of a progressive
	// image, one per block of the MCU-padded grid (Decode's coeffs layout).
	coef []int32
	// skip are the AC skip tables of the current sequential scan, by table
	// selector, allocated when first used.
	skip [maxTh + 1]*acSkipTable
}

// skipBits is the look-ahead of an acSkipTable: AC codes up to this length,
// nearly all of them, are skipped in one look-up, and often several.
const skipBits = 11

// An acSkipTable maps the next skipBits bits to what skipping the AC
// symbols they start takes, or 0 when the first symbol's code is longer.
// An entry describes the first symbol alone (bits 0–12) and, in the same
// layout from bit 16, every whole symbol the window holds (codes and extra
// bits, up to and including an end of block): the bits they span (bits
// 0–4) and their advance in the block (bits 5–12): the zero runs plus
// coefficients (16 for a ZRL, 1 for an end of block), capped at 65, plus
// skipEnd when they end the block, which takes the position past any
// block's end without a branch. The run of symbols may be taken only when
// its advance without skipEnd keeps it in the block; the first symbol
// alone always may.
type acSkipTable [1 << skipBits]uint32

const (
	skipLenMask  = 0x1f
	skipAdvShift = 5
	skipAdvMask  = 0xff
	skipEnd      = 0x80 // in the advance: an end of block
	skipRunShift = 16
)

// build fills t from a Huffman table: first the single-symbol halves, in
// the order codes are assigned (section C), then the runs of symbols, each
// found by looking up the bits after a symbol in the single-symbol halves.
func (t *acSkipTable) build(h *huffman) {
	clear(t[:])
	code, k := 0, 0
	for l := 1; l <= 16; l++ {
		n := 0 // codes of length l: they run from code to maxCode[l]
		if h.maxCode[l] >= 0 {
			n = int(h.maxCode[l]) - code + 1
		}
		for range n {
			if l <= skipBits {
				sym := h.vals[k]
				run, size := uint32(sym>>4), uint32(sym&0x0f)
				e := uint32(l) + size
				switch {
				case size != 0:
					e |= (run + 1) << skipAdvShift
				case run == 0x0f:
					e |= 16 << skipAdvShift
				default:
					e |= (1 | skipEnd) << skipAdvShift
				}
				shift := skipBits - l
				for j := code << shift; j < (code+1)<<shift; j++ {
					t[j] = e
				}
			}
			code++
			k++
		}
		code <<= 1
	}
	const mask = 1<<skipBits - 1
	for j, first := range t {
		if first == 0 {
			continue
		}
		used, adv := first&skipLenMask, first>>skipAdvShift&skipAdvMask
		for used < skipBits && adv&skipEnd == 0 {
			e := t[(j<<used)&mask] // the symbol after, its bits zero-padded
			n := e & skipLenMask
			if e == 0 || used+n > skipBits { // not wholly in the window
				break
			}
			used += n
			a := e >> skipAdvShift & skipAdvMask
			adv = min(adv+a&^skipEnd, 65) | a&skipEnd
		}
		t[j] = first | (used|adv<<skipAdvShift)<<skipRunShift
	}
}

// lumaDCScan is processSOS for DecodeLumaDC, called once the scan header
// is read and checked.
func (d *decoder) lumaDCScan(scan []scanComp, zigStart int32, ah, al uint32) error {
	if c := &d.comp[0]; c.ss != 1 {
		return UnsupportedError("first component subsampled (more than one sample per block at 1/8 scale)")
	}
	hasLuma := false
	for _, sc := range scan {
		hasLuma = hasLuma || sc.ci == 0
	}
	if !hasLuma || zigStart != 0 {
		// Nothing of the plane here: leave d.pos at the entropy-coded data,
		// which the marker parser skips.
		return nil
	}
	d.resetBits()
	if d.progressive {
		return d.lumaDCProgressive(scan, ah, al)
	}
	return d.lumaDCSequential(scan)
}

// blockPos gives the component-block position of block j of MCU m, as
// processSOS walks them: one block per MCU over the blocks holding data in a
// non-interleaved scan, c.h×c.v blocks per MCU otherwise.
func (d *decoder) blockPos(scan []scanComp, i, j, m int) (bx, by int) {
	c := &d.comp[scan[i].ci]
	if len(scan) == 1 {
		return m % c.bw, m / c.bw
	}
	mx, my := m%d.mxx, m/d.mxx
	return c.h*mx + j%c.h, c.v*my + j/c.h
}

// mcus is the number of MCUs of a scan.
func (d *decoder) mcus(scan []scanComp) int {
	if len(scan) == 1 {
		c := &d.comp[scan[0].ci]
		return c.bw * c.bh
	}
	return d.mxx * d.myy
}

// lumaRestart handles the restart marker after MCU m (0-based) when one is
// due, as processSOS's restart does; it reports whether it reset the state.
func (d *decoder) lumaRestart(m, total int, expected *byte) (bool, error) {
	if d.ri == 0 || (m+1)%d.ri != 0 || m+1 >= total {
		return false, nil
	}
	if err := d.findRST(*expected); err != nil {
		return false, err
	}
	*expected++
	if *expected > rst7Marker {
		*expected = rst0Marker
	}
	d.resetBits()
	return true, nil
}

// lumaDCProgressive decodes a progressive DC scan (first pass or
// refinement), keeping the first component's coefficients. DC scans are a
// small part of a file, so the generic bit reader serves.
func (d *decoder) lumaDCProgressive(scan []scanComp, ah, al uint32) error {
	st := d.lumaDC
	c0 := &d.comp[0]
	stride := d.mxx * c0.h
	if st.coef == nil {
		st.coef = make([]int32, stride*d.myy*c0.v)
	}
	var pred [maxComponents]int32
	total, rst := d.mcus(scan), byte(rst0Marker)
	for m := range total {
		for i, sc := range scan {
			c := &d.comp[sc.ci]
			blocks := c.h * c.v
			if len(scan) == 1 {
				blocks = 1
			}
			for j := range blocks {
				var x int32
				if ah != 0 {
					if d.decodeBit() {
						x = 1 << al
					}
				} else {
					t, err := d.decodeHuffman(&d.huff[0][sc.td])
					if err != nil {
						return err
					}
					if t > 16 {
						return FormatError("excessive DC component")
					}
					pred[i] += d.receiveExtend(t)
				}
				if sc.ci != 0 {
					continue
				}
				bx, by := d.blockPos(scan, i, j, m)
				if ah != 0 {
					st.coef[by*stride+bx] |= x
				} else {
					st.coef[by*stride+bx] = pred[i] << al
				}
			}
		}
		reset, err := d.lumaRestart(m, total, &rst)
		if err != nil {
			return err
		}
		if reset {
			pred = [maxComponents]int32{}
		}
	}
	if d.truncated() {
		return ErrTruncated
	}
	d.resetBits()
	return nil
}

// lumaDCReconstruct writes the plane of a progressive image from its DC
// coefficients, over the whole padded grid as reconstructProgressive does.
func (d *decoder) lumaDCReconstruct() {
	c := &d.comp[0]
	if d.lumaDC.coef == nil || c.plane == nil {
		return
	}
	q0 := d.quant[c.tq][0]
	stride := d.mxx * c.h
	for by := range d.myy * c.v {
		for bx := range stride {
			c.plane[by*c.pstr+bx] = limit(&d.rangeLim, descale(int(d.lumaDC.coef[by*stride+bx]*q0), 3))
		}
	}
}

// lumaDCSequential decodes a sequential scan that holds the first
// component: every block's DC and AC codes are read, the first component's
// DC values accumulated and written to the plane as idct1x1 would, the rest
// skipped. The bit accumulator and read position live in local variables.
func (d *decoder) lumaDCSequential(scan []scanComp) error {
	st := d.lumaDC
	var built [maxTh + 1]bool
	for _, sc := range scan {
		if !built[sc.ta] {
			if st.skip[sc.ta] == nil {
				st.skip[sc.ta] = new(acSkipTable)
			}
			st.skip[sc.ta].build(&d.huff[1][sc.ta])
			built[sc.ta] = true
		}
	}
	// The blocks of one MCU in decoding order; off places a luma block in
	// the plane relative to its MCU's corner.
	type slot struct {
		dc, ac *huffman
		skip   *acSkipTable
		off    int
		luma   bool
	}
	c0 := &d.comp[0]
	var slots []slot
	mcuW, mcuDX, mcuDY := d.mxx, c0.h, c0.v*c0.pstr // MCUs per row, MCU step in the plane
	if len(scan) == 1 {
		mcuW, mcuDX, mcuDY = c0.bw, 1, c0.pstr
	}
	for _, sc := range scan {
		c := &d.comp[sc.ci]
		blocks := c.h * c.v
		if len(scan) == 1 {
			blocks = 1
		}
		for j := range blocks {
			slots = append(slots, slot{&d.huff[0][sc.td], &d.huff[1][sc.ta], st.skip[sc.ta], j/c.h*c.pstr + j%c.h, sc.ci == 0})
		}
	}
	q0 := d.quant[c0.tq][0]
	var pred int32
	total, rst := d.mcus(scan), byte(rst0Marker)
	data, plane := d.data, c0.plane
	// No closure may capture these: they would stop living in registers.
	acc, nbits, pos := d.acc, d.nbits, d.pos
	corner, mx := 0, 0 // the MCU's top-left sample in the plane, its column
	for m := range total {
		for si := range slots {
			s := &slots[si]
			// DC: the code, then its extra bits.
			if nbits < 32 {
				acc, nbits, pos = d.refillLocal(acc, nbits, pos)
			}
			var t uint8
			if v := s.dc.lut[acc>>(64-lookBits)]; v != 0 {
				n := uint(v >> 8)
				acc <<= n
				nbits -= n
				t = uint8(v)
			} else {
				sym, n, ok := slowSymbol(s.dc, acc)
				if !ok {
					return FormatError("bad Huffman code")
				}
				acc <<= n
				nbits -= n
				t = sym
			}
			if t > 16 {
				return FormatError("excessive DC component")
			}
			if s.luma {
				if t > 0 {
					x := int32(acc >> (64 - uint(t)))
					if x < 1<<(t-1) {
						x += -1<<t + 1
					}
					pred += x
				}
				plane[corner+s.off] = limit(&d.rangeLim, descale(int(pred*q0), 3))
			}
			acc <<= t
			nbits -= uint(t)
			// AC: skipped, a run of symbols or one symbol per look-up.
			for k := 1; k < blockSize; {
				if nbits < 32 {
					// refillLocal's fast case, inline: eight bytes without 0xff.
					if pos+8 <= len(data) && !d.hitMarker {
						x := binary.BigEndian.Uint64(data[pos:])
						if v := ^x; (v-0x0101010101010101)&^v&0x8080808080808080 == 0 {
							n := (64 - nbits) >> 3
							acc |= x >> (64 - 8*n) << (64 - nbits - 8*n)
							nbits += 8 * n
							pos += int(n)
						} else {
							acc, nbits, pos = d.refillLocal(acc, nbits, pos)
						}
					} else {
						acc, nbits, pos = d.refillLocal(acc, nbits, pos)
					}
				}
				if e := s.skip[acc>>(64-skipBits)]; e != 0 {
					if k+int(e>>(skipRunShift+skipAdvShift)&(skipEnd-1)) <= blockSize {
						e >>= skipRunShift // the whole run of symbols
					}
					n := uint(e & skipLenMask)
					acc <<= n
					nbits -= n
					k += int(e >> skipAdvShift & skipAdvMask) // past 64 after an end of block
					continue
				}
				sym, n, ok := slowSymbol(s.ac, acc)
				if !ok {
					return FormatError("bad Huffman code")
				}
				size := uint(sym & 0x0f)
				acc <<= n + size
				nbits -= n + size
				switch {
				case size != 0:
					k += int(sym>>4) + 1
				case sym>>4 == 0x0f:
					k += 16
				default:
					k = blockSize // end of block
				}
			}
		}
		if mx++; mx == mcuW {
			mx = 0
			corner += mcuDY - (mcuW-1)*mcuDX
		} else {
			corner += mcuDX
		}
		if d.ri != 0 && (m+1)%d.ri == 0 && m+1 < total {
			d.acc, d.nbits, d.pos = acc, nbits, pos
			if _, err := d.lumaRestart(m, total, &rst); err != nil {
				return err
			}
			acc, nbits, pos = d.acc, d.nbits, d.pos
			pred = 0
		}
	}
	d.acc, d.nbits, d.pos = acc, nbits, pos
	if d.truncated() {
		return ErrTruncated
	}
	d.resetBits()
	return nil
}

// refillLocal tops a local copy of the bit accumulator up to more than 56
// bits: eight bytes at once when none is 0xff (no stuffing, no marker),
// else through fill, which handles both.
func (d *decoder) refillLocal(acc uint64, nbits uint, pos int) (uint64, uint, int) {
	if !d.hitMarker && pos+8 <= len(d.data) {
		x := binary.BigEndian.Uint64(d.data[pos:])
		const lo, hi = 0x0101010101010101, 0x8080808080808080
		if v := ^x; (v-lo)&^v&hi == 0 { // no byte of x is 0xff
			n := (64 - nbits) >> 3
			acc |= x >> (64 - 8*n) << (64 - nbits - 8*n)
			return acc, nbits + 8*n, pos + int(n)
		}
	}
	d.acc, d.nbits, d.pos = acc, nbits, pos
	d.fill()
	return d.acc, d.nbits, d.pos
}
