//go:build goexperiment.simd && amd64

package preprocess

import "simd/archsimd"

// resampleVector is resamplePlane's two passes on AVX2, eight samples per
// instruction where the scalar kernel packs two into an int64: the same
// int32 fixed-point sums in the same order, so the bytes are identical
// (TestResampleVectorMatchesScalar). The horizontal pass runs down eight
// rows at once over the crop box transposed; the vertical pass along eight
// output columns at once. It returns false where the CPU lacks AVX2.
func resampleVector(dst, pix []uint8, stride, col0, col1, row0, row1, outW, outH int, hor, vert *coeffs, hk []int64, vk []int32, s *vectorScratch) bool {
	if !archsimd.X86.AVX2() {
		return false
	}
	inW, inH := col1-col0, row1-row0
	inH8, outW8 := (inH+7)&^7, (outW+7)&^7
	// t[x*inH8+y] is the box's sample (x, y); the padding rows repeat the
	// last row, and their results are never used.
	s.transposed = grow(s.transposed, inW*inH8)
	t := s.transposed
	for y0 := 0; y0 < inH; y0 += 8 {
		// Eight rows at a time: each 8×8 block is widened to int32 and
		// transposed in registers, then stored as eight column pieces.
		var rows [8][]uint8
		for r := range rows {
			y := row0 + min(y0+r, inH-1)
			rows[r] = pix[y*stride+col0 : y*stride+col1]
		}
		x0 := 0
		for ; x0+16 <= inW; x0 += 8 {
			c0, c1, c2, c3, c4, c5, c6, c7 := transpose8(widen8(rows[0][x0:]), widen8(rows[1][x0:]), widen8(rows[2][x0:]), widen8(rows[3][x0:]),
				widen8(rows[4][x0:]), widen8(rows[5][x0:]), widen8(rows[6][x0:]), widen8(rows[7][x0:]))
			c0.Store((*[8]int32)(t[(x0+0)*inH8+y0:]))
			c1.Store((*[8]int32)(t[(x0+1)*inH8+y0:]))
			c2.Store((*[8]int32)(t[(x0+2)*inH8+y0:]))
			c3.Store((*[8]int32)(t[(x0+3)*inH8+y0:]))
			c4.Store((*[8]int32)(t[(x0+4)*inH8+y0:]))
			c5.Store((*[8]int32)(t[(x0+5)*inH8+y0:]))
			c6.Store((*[8]int32)(t[(x0+6)*inH8+y0:]))
			c7.Store((*[8]int32)(t[(x0+7)*inH8+y0:]))
		}
		for x := x0; x < inW; x++ {
			c := t[x*inH8+y0 : x*inH8+y0+8]
			c[0], c[1], c[2], c[3] = int32(rows[0][x]), int32(rows[1][x]), int32(rows[2][x]), int32(rows[3][x])
			c[4], c[5], c[6], c[7] = int32(rows[4][x]), int32(rows[5][x]), int32(rows[6][x]), int32(rows[7][x])
		}
	}
	half := archsimd.BroadcastInt32x8(1 << (precisionBits - 1))
	lo, hi := archsimd.BroadcastInt32x8(0), archsimd.BroadcastInt32x8(255)
	var lanes [16]int32

	// The horizontal pass, clipped to bytes as Pillow's, into midT[x*inH8+y].
	s.midT = grow(s.midT, outW8*inH8)
	midT := s.midT
	for x := range outW {
		k := hk[x*hor.ksize : x*hor.ksize+hor.count[x]]
		col := t[hor.first[x]*inH8:]
		out := midT[x*inH8 : (x+1)*inH8]
		y0 := 0
		for ; y0+16 <= inH8; y0 += 16 {
			// Two blocks of eight rows share each tap's broadcast.
			a0, a1 := half, half
			for j, kj := range k {
				kv := archsimd.BroadcastInt32x8(int32(kj))
				c := col[j*inH8+y0 : j*inH8+y0+16]
				a0 = a0.Add(archsimd.LoadInt32x8((*[8]int32)(c[:8])).Mul(kv))
				a1 = a1.Add(archsimd.LoadInt32x8((*[8]int32)(c[8:])).Mul(kv))
			}
			a0.ShiftAllRight(precisionBits).Max(lo).Min(hi).Store((*[8]int32)(out[y0 : y0+8]))
			a1.ShiftAllRight(precisionBits).Max(lo).Min(hi).Store((*[8]int32)(out[y0+8 : y0+16]))
		}
		if y0 < inH8 {
			acc := half
			for j, kj := range k {
				c := col[j*inH8+y0 : j*inH8+y0+8]
				acc = acc.Add(archsimd.LoadInt32x8((*[8]int32)(c)).Mul(archsimd.BroadcastInt32x8(int32(kj))))
			}
			acc.ShiftAllRight(precisionBits).Max(lo).Min(hi).Store((*[8]int32)(out[y0 : y0+8]))
		}
	}
	// Back to rows, mid[y*outW8+x], eight columns at a time.
	s.mid = grow(s.mid, inH*outW8)
	mid := s.mid
	for x0 := 0; x0 < outW8; x0 += 8 {
		// midT's rows past outW (to outW8) hold stale values; they land
		// in mid's padding columns, which no output reads.
		col := func(i, y0 int) archsimd.Int32x8 {
			return archsimd.LoadInt32x8((*[8]int32)(midT[(x0+i)*inH8+y0:]))
		}
		for y0 := 0; y0 < inH; y0 += 8 {
			r0, r1, r2, r3, r4, r5, r6, r7 := transpose8(col(0, y0), col(1, y0), col(2, y0), col(3, y0), col(4, y0), col(5, y0), col(6, y0), col(7, y0))
			for j, r := range [8]archsimd.Int32x8{r0, r1, r2, r3, r4, r5, r6, r7} {
				if y0+j < inH {
					r.Store((*[8]int32)(mid[(y0+j)*outW8+x0:]))
				}
			}
		}
	}

	for yy := range outH {
		k := vk[yy*vert.ksize : yy*vert.ksize+vert.count[yy]]
		rows := mid[(vert.first[yy]-row0)*outW8:]
		out := dst[yy*outW : (yy+1)*outW]
		x0 := 0
		for ; x0+16 <= outW8; x0 += 16 {
			a0, a1 := half, half
			for j, kj := range k {
				kv := archsimd.BroadcastInt32x8(kj)
				r := rows[j*outW8+x0 : j*outW8+x0+16]
				a0 = a0.Add(archsimd.LoadInt32x8((*[8]int32)(r[:8])).Mul(kv))
				a1 = a1.Add(archsimd.LoadInt32x8((*[8]int32)(r[8:])).Mul(kv))
			}
			a0.ShiftAllRight(precisionBits).Max(lo).Min(hi).Store((*[8]int32)(lanes[:8]))
			a1.ShiftAllRight(precisionBits).Max(lo).Min(hi).Store((*[8]int32)(lanes[8:]))
			for i, v := range lanes[:min(16, outW-x0)] {
				out[x0+i] = uint8(v)
			}
		}
		if x0 < outW8 {
			acc := half
			for j, kj := range k {
				r := rows[j*outW8+x0 : j*outW8+x0+8]
				acc = acc.Add(archsimd.LoadInt32x8((*[8]int32)(r)).Mul(archsimd.BroadcastInt32x8(kj)))
			}
			acc.ShiftAllRight(precisionBits).Max(lo).Min(hi).Store((*[8]int32)(lanes[:8]))
			for i, v := range lanes[:min(8, outW-x0)] {
				out[x0+i] = uint8(v)
			}
		}
	}
	return true
}

// widen8 loads the first eight bytes of b (which has at least 16) as int32.
func widen8(b []uint8) archsimd.Int32x8 {
	return archsimd.LoadUint8x16Slice(b).ExtendLo8ToUint32().AsInt32x8()
}

// transpose8 transposes the 8×8 block whose rows are r0…r7, with AVX2's
// 32-bit and 64-bit interleaves within 128-bit halves, then a swap of
// halves: ci holds element i of every row.
func transpose8(r0, r1, r2, r3, r4, r5, r6, r7 archsimd.Int32x8) (c0, c1, c2, c3, c4, c5, c6, c7 archsimd.Int32x8) {
	t0, t1 := r0.InterleaveLoGrouped(r1).AsInt64x4(), r0.InterleaveHiGrouped(r1).AsInt64x4()
	t2, t3 := r2.InterleaveLoGrouped(r3).AsInt64x4(), r2.InterleaveHiGrouped(r3).AsInt64x4()
	t4, t5 := r4.InterleaveLoGrouped(r5).AsInt64x4(), r4.InterleaveHiGrouped(r5).AsInt64x4()
	t6, t7 := r6.InterleaveLoGrouped(r7).AsInt64x4(), r6.InterleaveHiGrouped(r7).AsInt64x4()
	u0, u1 := t0.InterleaveLoGrouped(t2).AsInt32x8(), t0.InterleaveHiGrouped(t2).AsInt32x8()
	u2, u3 := t1.InterleaveLoGrouped(t3).AsInt32x8(), t1.InterleaveHiGrouped(t3).AsInt32x8()
	u4, u5 := t4.InterleaveLoGrouped(t6).AsInt32x8(), t4.InterleaveHiGrouped(t6).AsInt32x8()
	u6, u7 := t5.InterleaveLoGrouped(t7).AsInt32x8(), t5.InterleaveHiGrouped(t7).AsInt32x8()
	c0, c4 = u0.Select128FromPair(0, 2, u4), u0.Select128FromPair(1, 3, u4)
	c1, c5 = u1.Select128FromPair(0, 2, u5), u1.Select128FromPair(1, 3, u5)
	c2, c6 = u2.Select128FromPair(0, 2, u6), u2.Select128FromPair(1, 3, u6)
	c3, c7 = u3.Select128FromPair(0, 2, u7), u3.Select128FromPair(1, 3, u7)
	return c0, c1, c2, c3, c4, c5, c6, c7
}

// vectorScratch holds resampleVector's buffers for reuse: the crop box
// transposed, the horizontal pass's output, and that back in rows.
type vectorScratch struct {
	transposed, midT, mid []int32
}

// hasVectorResample says whether resamplePlane takes resampleVector here.
func hasVectorResample() bool { return archsimd.X86.AVX2() }
