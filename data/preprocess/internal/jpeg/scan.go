// Copyright 2012 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.
//
// Modified for bmca: planes per component, libjpeg's inverse DCTs, restart
// intervals counted in blocks for non-interleaved scans (section A.2.2).

package jpeg

// scanComp is one component of a scan.
type scanComp struct {
	ci     int   // index into decoder.comp
	td, ta uint8 // DC and AC table selectors
}

// processSOS decodes one scan (section B.2.3).
func (d *decoder) processSOS(seg []byte) error {
	if !d.sawSOF {
		return FormatError("missing SOF marker")
	}
	if len(seg) < 1 {
		return FormatError("SOS has wrong length")
	}
	nComp := int(seg[0])
	if nComp < 1 || nComp > d.nComp || len(seg) != 4+2*nComp {
		return FormatError("SOS has wrong length")
	}
	if d.comp[0].plane == nil {
		d.setupScaling()
	}
	var scan [maxComponents]scanComp
	totalHV := 0
	for i := range nComp {
		cs := seg[1+2*i]
		ci := -1
		for j := range d.nComp {
			if d.comp[j].c == cs {
				ci = j
			}
		}
		if ci < 0 {
			return FormatError("unknown component selector")
		}
		for j := range i {
			if scan[j].ci == ci {
				return FormatError("repeated component selector")
			}
		}
		scan[i] = scanComp{ci: ci, td: seg[2+2*i] >> 4, ta: seg[2+2*i] & 0x0f}
		if scan[i].td > maxTh || scan[i].ta > maxTh || (d.baseline && (scan[i].td > 1 || scan[i].ta > 1)) {
			return FormatError("bad Td or Ta value")
		}
		totalHV += d.comp[ci].h * d.comp[ci].v
	}
	if nComp > 1 && totalHV > 10 {
		return FormatError("total sampling factors too large")
	}

	zigStart, zigEnd, ah, al := int32(0), int32(blockSize-1), uint32(0), uint32(0)
	if d.progressive {
		zigStart = int32(seg[1+2*nComp])
		zigEnd = int32(seg[2+2*nComp])
		ah = uint32(seg[3+2*nComp] >> 4)
		al = uint32(seg[3+2*nComp] & 0x0f)
		if (zigStart == 0 && zigEnd != 0) || zigStart > zigEnd || blockSize <= zigEnd {
			return FormatError("bad spectral selection bounds")
		}
		if zigStart != 0 && nComp != 1 {
			return FormatError("progressive AC coefficients for more than one component")
		}
		if ah != 0 && ah != al+1 {
			return FormatError("bad successive approximation values")
		}
		if al > 13 {
			return FormatError("bad successive approximation values")
		}
		for i := range nComp {
			c := &d.comp[scan[i].ci]
			if d.coeffs[scan[i].ci] == nil && d.lumaDC == nil {
				n := d.mxx * c.h * d.myy * c.v
				if sc := d.opts.Scratch; sc != nil {
					sc.coeffs[scan[i].ci] = grow(sc.coeffs[scan[i].ci], n)
					d.coeffs[scan[i].ci] = sc.coeffs[scan[i].ci]
				} else {
					d.coeffs[scan[i].ci] = make([]block, n)
				}
			}
		}
	}
	for i := range nComp {
		if d.huffNeeded(scan[i], zigStart, ah) {
			return FormatError("scan uses an undefined Huffman table")
		}
	}

	if d.lumaDC != nil {
		return d.lumaDCScan(scan[:nComp], zigStart, ah, al)
	}
	for _, sc := range scan[:nComp] {
		d.scanned[sc.ci] = true
	}
	if !d.progressive && !d.genericEntropy {
		return d.sequentialScan(scan[:nComp])
	}
	d.resetBits()
	d.eobRun = 0
	st := scanState{zigStart: zigStart, zigEnd: zigEnd, ah: ah, al: al}
	mcu, expectedRST := 0, byte(rst0Marker)
	restart := func() error {
		mcu++
		if d.ri == 0 || mcu%d.ri != 0 {
			return nil
		}
		if err := d.findRST(expectedRST); err != nil {
			return err
		}
		expectedRST++
		if expectedRST > rst7Marker {
			expectedRST = rst0Marker
		}
		d.resetBits()
		st.dc = [maxComponents]int32{}
		d.eobRun = 0
		return nil
	}

	if nComp == 1 {
		// Non-interleaved: one block per MCU, covering only the blocks
		// that hold image data (section A.2.2).
		sc := scan[0]
		c := &d.comp[sc.ci]
		total := c.bw * c.bh
		for by := range c.bh {
			for bx := range c.bw {
				if err := d.decodeBlock(&st, sc, bx, by); err != nil {
					return err
				}
				if by*c.bw+bx+1 < total {
					if err := restart(); err != nil {
						return err
					}
				}
			}
		}
	} else {
		total := d.mxx * d.myy
		for my := range d.myy {
			for mx := range d.mxx {
				for i := range nComp {
					sc := scan[i]
					c := &d.comp[sc.ci]
					for j := range c.h * c.v {
						if err := d.decodeBlock(&st, sc, c.h*mx+j%c.h, c.v*my+j/c.h); err != nil {
							return err
						}
					}
				}
				if my*d.mxx+mx+1 < total {
					if err := restart(); err != nil {
						return err
					}
				}
			}
		}
	}
	if d.truncated() {
		return ErrTruncated
	}
	// Leave d.pos at the marker that follows the scan: the accumulator may
	// hold bytes read ahead, which belong to this scan's padding.
	d.resetBits()
	return nil
}

// scanState is what decodeBlock needs to know about the current scan.
type scanState struct {
	zigStart, zigEnd int32
	ah, al           uint32
	dc               [maxComponents]int32 // DC predictors
	b                block
}

// naturalPadded is unzig (zig-zag to natural order) padded as libjpeg's
// jpeg_natural_order is: positions past 63, reached by corrupt runs, map to
// 63; the padding up to 128 lets the index be masked instead of checked.
var naturalPadded = func() (t [128]uint8) {
	for i := range t {
		t[i] = uint8(unzig[min(i, blockSize-1)])
	}
	return t
}()

// slowSymbol decodes the Huffman code at the top of acc, which must hold at
// least 16 valid bits, returning the symbol and the code length.
func slowSymbol(h *huffman, acc uint64) (sym uint8, n uint, ok bool) {
	if v := h.lut[acc>>(64-lookBits)]; v != 0 {
		return uint8(v), uint(v >> 8), true
	}
	for l := lookBits + 1; l <= 16; l++ {
		code := int32(acc >> (64 - uint(l)))
		if code <= h.maxCode[l] {
			return h.vals[(h.valOffset[l]+code)&0xff], uint(l), true
		}
	}
	return 0, 0, false
}

// decodeBlock decodes the next block of the scan, which belongs to
// component sc.ci at block position (bx, by), and reconstructs it unless
// the image is progressive.
func (d *decoder) decodeBlock(st *scanState, sc scanComp, bx, by int) error {
	c := &d.comp[sc.ci]
	stride := d.mxx * c.h // blocks per row of the coefficient buffer
	b := &st.b
	if d.progressive {
		*b = d.coeffs[sc.ci][by*stride+bx]
	} else {
		*b = block{}
	}
	acSeen := false
	if st.ah != 0 {
		if err := d.refine(b, &d.huff[1][sc.ta], st.zigStart, st.zigEnd, 1<<st.al); err != nil {
			return err
		}
	} else {
		zig := st.zigStart
		if zig == 0 {
			zig++
			value, err := d.decodeHuffman(&d.huff[0][sc.td])
			if err != nil {
				return err
			}
			if value > 16 {
				return FormatError("excessive DC component")
			}
			st.dc[sc.ci] += d.receiveExtend(value)
			b[0] = st.dc[sc.ci] << st.al
		}
		if zig <= st.zigEnd && d.eobRun > 0 {
			d.eobRun--
		} else {
			huff := &d.huff[1][sc.ta]
			for ; zig <= st.zigEnd; zig++ {
				value, err := d.decodeHuffman(huff)
				if err != nil {
					return err
				}
				run, size := int32(value>>4), value&0x0f
				if size != 0 {
					zig += run
					if zig > st.zigEnd {
						break
					}
					b[unzig[zig]] = d.receiveExtend(size) << st.al
					acSeen = true
				} else {
					if run != 0x0f {
						if d.progressive {
							d.eobRun = 1<<run + int(d.decodeBits(uint(run))) - 1
						}
						// Sequential scans have no EOB runs: libjpeg
						// ends the block on any run other than 15.
						break
					}
					zig += 0x0f
				}
			}
		}
	}
	if d.progressive {
		d.coeffs[sc.ci][by*stride+bx] = *b
		return nil
	}
	d.reconstructBlock(b, sc.ci, bx, by, !acSeen)
	return nil
}

// huffNeeded reports whether a scan would use a table that was never defined.
func (d *decoder) huffNeeded(sc scanComp, zigStart int32, ah uint32) bool {
	if zigStart == 0 && ah == 0 && d.huff[0][sc.td].nCodes == 0 {
		return true
	}
	if (!d.progressive || zigStart != 0) && d.huff[1][sc.ta].nCodes == 0 {
		return true
	}
	return false
}

// findRST consumes the expected restart marker. Well-formed data has it
// next; otherwise, like Go, scan forward to it, failing on any other marker.
func (d *decoder) findRST(expected byte) error {
	for {
		for d.pos < len(d.data) && d.data[d.pos] != 0xff {
			d.pos++
		}
		for d.pos < len(d.data) && d.data[d.pos] == 0xff {
			d.pos++
		}
		if d.pos >= len(d.data) {
			return ErrTruncated
		}
		m := d.data[d.pos]
		d.pos++
		switch {
		case m == expected:
			return nil
		case m == 0:
			continue
		default:
			return FormatError("bad RST marker")
		}
	}
}

// refine decodes a successive approximation refinement block (section G.1.2).
func (d *decoder) refine(b *block, h *huffman, zigStart, zigEnd, delta int32) error {
	if zigStart == 0 {
		if d.decodeBit() {
			b[0] |= delta
		}
		return nil
	}
	zig := zigStart
	if d.eobRun == 0 {
	loop:
		for ; zig <= zigEnd; zig++ {
			z := int32(0)
			value, err := d.decodeHuffman(h)
			if err != nil {
				return err
			}
			val0, val1 := int32(value>>4), value&0x0f
			switch val1 {
			case 0:
				if val0 != 0x0f {
					d.eobRun = 1<<val0 + int(d.decodeBits(uint(val0)))
					break loop
				}
			case 1:
				z = delta
				if !d.decodeBit() {
					z = -z
				}
			default:
				return FormatError("unexpected Huffman code")
			}
			zig = d.refineNonZeroes(b, zig, zigEnd, val0, delta)
			if zig > zigEnd {
				return FormatError("too many coefficients")
			}
			if z != 0 {
				b[unzig[zig]] = z
			}
		}
	}
	if d.eobRun > 0 {
		d.eobRun--
		d.refineNonZeroes(b, zig, zigEnd, -1, delta)
	}
	return nil
}

// refineNonZeroes refines non-zero entries of b in zig-zag order. If nz >= 0,
// the first nz zero entries are skipped over.
func (d *decoder) refineNonZeroes(b *block, zig, zigEnd, nz, delta int32) int32 {
	for ; zig <= zigEnd; zig++ {
		u := unzig[zig]
		if b[u] == 0 {
			if nz == 0 {
				break
			}
			nz--
			continue
		}
		if !d.decodeBit() {
			continue
		}
		if b[u] >= 0 {
			b[u] += delta
		} else {
			b[u] -= delta
		}
	}
	return zig
}

// reconstructProgressive runs the inverse DCT over every stored block once
// all scans are in.
func (d *decoder) reconstructProgressive() {
	for ci := range d.nComp {
		c := &d.comp[ci]
		if d.coeffs[ci] == nil {
			continue
		}
		stride := d.mxx * c.h
		for by := range d.myy * c.v {
			for bx := range stride {
				b := &d.coeffs[ci][by*stride+bx]
				d.reconstructBlock(b, ci, bx, by, acZero(b))
			}
		}
	}
}

// acZero reports whether a block has only a DC coefficient.
func acZero(b *block) bool {
	var or int32
	for _, v := range b[1:] {
		or |= v
	}
	return or == 0
}

// reconstructBlock dequantises block b of component ci and writes its
// inverse DCT, at the component's scaled size, into the plane. dcOnly says
// that every AC coefficient is zero: then every IDCT (full or reduced) gives
// the same flat block, libjpeg's zero-column and zero-row shortcut value,
// which is computed once.
func (d *decoder) reconstructBlock(b *block, ci, bx, by int, dcOnly bool) {
	c := &d.comp[ci]
	q := &d.quant[c.tq]
	out := c.plane[by*c.ss*c.pstr+bx*c.ss:]
	if dcOnly && c.ss > 1 {
		v := limit(&d.rangeLim, descale(int(b[0]*q[0])<<pass1Bits, pass1Bits+3))
		for r := range c.ss {
			row := out[r*c.pstr : r*c.pstr+c.ss]
			for i := range row {
				row[i] = v
			}
		}
		return
	}
	switch {
	case c.ss == 8:
		idctIslow(b, q, out, c.pstr, &d.rangeLim)
	case c.ss == 1:
		idct1x1(b, q, out, &d.rangeLim)
	case d.opts.BlockSizes != nil:
		idctNxN(b, q, out, c.pstr, c.ss, &d.rangeLim)
	case c.ss == 4:
		idct4x4(b, q, out, c.pstr, &d.rangeLim)
	case c.ss == 2:
		idct2x2(b, q, out, c.pstr, &d.rangeLim)
	default:
		idctNxN(b, q, out, c.pstr, c.ss, &d.rangeLim)
	}
}
