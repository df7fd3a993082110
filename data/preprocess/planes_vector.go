//go:build goexperiment.simd && amd64

package preprocess

import "simd/archsimd"

// vectorResample says whether this CPU runs resampleVector (AVX2).
var vectorResample = archsimd.X86.AVX2()

// resampleVector is resamplePlane's two passes on AVX2, eight samples per
// instruction where the scalar kernel packs two into an int64: the same
// int32 fixed-point sums in the same order, so the bytes are identical
// (TestResampleVectorMatchesScalar). The horizontal pass runs down eight
// rows at once over the crop box transposed; the vertical pass along eight
// output columns at once. It returns false where the CPU lacks AVX2.
func resampleVector(dst, pix []uint8, stride, col0, col1, row0, row1, outW, outH int, hor, vert *coeffs, hk []int64, vk []int32, s *vectorScratch) bool {
	if !vectorResample {
		return false
	}
	inW, inH := col1-col0, row1-row0
	inH8, outW8 := (inH+7)&^7, (outW+7)&^7
	// t[x*inH8+y] is the box's sample (x, y); the padding rows repeat the
	// last row, and their results are never used.
	s.transposed = grow(s.transposed, inW*inH8)
	t := s.transposed
	for y0 := 0; y0 < inH; y0 += 8 {
		// Eight rows at a time, so that each column's eight samples are
		// written together.
		var rows [8][]uint8
		for r := range rows {
			y := row0 + min(y0+r, inH-1)
			rows[r] = pix[y*stride+col0 : y*stride+col1]
		}
		for x := range inW {
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
		var cols [8][]int32
		for i := range cols {
			cols[i] = midT[min(x0+i, outW-1)*inH8:][:inH]
		}
		for y := range inH {
			c := mid[y*outW8+x0 : y*outW8+x0+8]
			c[0], c[1], c[2], c[3] = cols[0][y], cols[1][y], cols[2][y], cols[3][y]
			c[4], c[5], c[6], c[7] = cols[4][y], cols[5][y], cols[6][y], cols[7][y]
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

// vectorScratch holds resampleVector's buffers for reuse: the crop box
// transposed, the horizontal pass's output, and that back in rows.
type vectorScratch struct {
	transposed, midT, mid []int32
}

// hasVectorResample says whether resamplePlane takes resampleVector here.
func hasVectorResample() bool { return vectorResample }
