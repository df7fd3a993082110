package jpeg

// This file ports libjpeg-turbo's accurate integer inverse DCT
// (jidctint.c, jpeg_idct_islow, the JDCT_ISLOW method Pillow uses) and its
// reduced-size variants (jidctred.c: jpeg_idct_4x4, _2x2, _1x1) for 8-bit
// samples. Intermediate values are 64-bit, as libjpeg's JLONG is on the
// LP64 systems the references come from; the workspace between the passes
// is 32-bit, as libjpeg's int is. The zero-column and zero-row shortcuts are
// kept: they give the same values as the full computation and save time.

import "math"

const (
	constBits = 13
	pass1Bits = 2

	fix0_211164243 = 1730
	fix0_298631336 = 2446
	fix0_390180644 = 3196
	fix0_509795579 = 4176
	fix0_541196100 = 4433
	fix0_601344887 = 4926
	fix0_720959822 = 5906
	fix0_765366865 = 6270
	fix0_850430095 = 6967
	fix0_899976223 = 7373
	fix1_061594337 = 8697
	fix1_175875602 = 9633
	fix1_272758580 = 10426
	fix1_451774981 = 11893
	fix1_501321110 = 12299
	fix1_847759065 = 15137
	fix1_961570560 = 16069
	fix2_053119869 = 16819
	fix2_172734803 = 17799
	fix2_562915447 = 20995
	fix3_072711026 = 25172
	fix3_624509785 = 29692
)

// initRangeLimit builds libjpeg's post-IDCT range-limit table
// (prepare_range_limit_table, indexed through IDCT_range_limit and
// RANGE_MASK): it adds CENTERJSAMPLE and clamps to 0..255 for inputs in
// [-512, 511] and wraps around outside, as libjpeg does for corrupt data.
func initRangeLimit(t *[1024]uint8) {
	for i := range 1024 {
		switch {
		case i < 128:
			t[i] = uint8(i + 128)
		case i < 512:
			t[i] = 255
		case i < 896:
			t[i] = 0
		default:
			t[i] = uint8(i - 896)
		}
	}
}

// descale is libjpeg's DESCALE: a right shift rounding half up.
func descale(x int, n uint) int { return (x + 1<<(n-1)) >> n }

// limit maps a descaled IDCT output to a sample.
func limit(t *[1024]uint8, x int) uint8 { return t[int32(x)&1023] }

// idctIslow is jpeg_idct_islow: dequantise, inverse DCT and write an 8×8
// block at out with the given stride.
func idctIslow(in *block, q *block, out []byte, stride int, rl *[1024]uint8) {
	var ws [64]int32
	for col := range 8 {
		if in[8+col] == 0 && in[16+col] == 0 && in[24+col] == 0 && in[32+col] == 0 &&
			in[40+col] == 0 && in[48+col] == 0 && in[56+col] == 0 {
			dc := int32(in[col]*q[col]) << pass1Bits
			for r := range 8 {
				ws[8*r+col] = dc
			}
			continue
		}
		// Even part.
		z2 := int(in[16+col] * q[16+col])
		z3 := int(in[48+col] * q[48+col])
		z1 := (z2 + z3) * fix0_541196100
		tmp2 := z1 + z3*-fix1_847759065
		tmp3 := z1 + z2*fix0_765366865
		z2 = int(in[col] * q[col])
		z3 = int(in[32+col] * q[32+col])
		tmp0 := (z2 + z3) << constBits
		tmp1 := (z2 - z3) << constBits
		tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
		tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2

		// Odd part.
		tmp0 = int(in[56+col] * q[56+col])
		tmp1 = int(in[40+col] * q[40+col])
		tmp2 = int(in[24+col] * q[24+col])
		tmp3 = int(in[8+col] * q[8+col])
		z1 = tmp0 + tmp3
		z2 = tmp1 + tmp2
		z3 = tmp0 + tmp2
		z4 := tmp1 + tmp3
		z5 := (z3 + z4) * fix1_175875602
		tmp0 *= fix0_298631336
		tmp1 *= fix2_053119869
		tmp2 *= fix3_072711026
		tmp3 *= fix1_501321110
		z1 *= -fix0_899976223
		z2 *= -fix2_562915447
		z3 *= -fix1_961570560
		z4 *= -fix0_390180644
		z3 += z5
		z4 += z5
		tmp0 += z1 + z3
		tmp1 += z2 + z4
		tmp2 += z2 + z3
		tmp3 += z1 + z4

		const n = constBits - pass1Bits
		ws[col] = int32(descale(tmp10+tmp3, n))
		ws[56+col] = int32(descale(tmp10-tmp3, n))
		ws[8+col] = int32(descale(tmp11+tmp2, n))
		ws[48+col] = int32(descale(tmp11-tmp2, n))
		ws[16+col] = int32(descale(tmp12+tmp1, n))
		ws[40+col] = int32(descale(tmp12-tmp1, n))
		ws[24+col] = int32(descale(tmp13+tmp0, n))
		ws[32+col] = int32(descale(tmp13-tmp0, n))
	}

	for row := range 8 {
		w := ws[8*row : 8*row+8 : 8*row+8]
		o := out[row*stride : row*stride+8 : row*stride+8]
		if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
			v := limit(rl, descale(int(w[0]), pass1Bits+3))
			o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7] = v, v, v, v, v, v, v, v
			continue
		}
		z2 := int(w[2])
		z3 := int(w[6])
		z1 := (z2 + z3) * fix0_541196100
		tmp2 := z1 + z3*-fix1_847759065
		tmp3 := z1 + z2*fix0_765366865
		tmp0 := (int(w[0]) + int(w[4])) << constBits
		tmp1 := (int(w[0]) - int(w[4])) << constBits
		tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
		tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2

		tmp0 = int(w[7])
		tmp1 = int(w[5])
		tmp2 = int(w[3])
		tmp3 = int(w[1])
		z1 = tmp0 + tmp3
		z2 = tmp1 + tmp2
		z3 = tmp0 + tmp2
		z4 := tmp1 + tmp3
		z5 := (z3 + z4) * fix1_175875602
		tmp0 *= fix0_298631336
		tmp1 *= fix2_053119869
		tmp2 *= fix3_072711026
		tmp3 *= fix1_501321110
		z1 *= -fix0_899976223
		z2 *= -fix2_562915447
		z3 *= -fix1_961570560
		z4 *= -fix0_390180644
		z3 += z5
		z4 += z5
		tmp0 += z1 + z3
		tmp1 += z2 + z4
		tmp2 += z2 + z3
		tmp3 += z1 + z4

		const n = constBits + pass1Bits + 3
		o[0] = limit(rl, descale(tmp10+tmp3, n))
		o[7] = limit(rl, descale(tmp10-tmp3, n))
		o[1] = limit(rl, descale(tmp11+tmp2, n))
		o[6] = limit(rl, descale(tmp11-tmp2, n))
		o[2] = limit(rl, descale(tmp12+tmp1, n))
		o[5] = limit(rl, descale(tmp12-tmp1, n))
		o[3] = limit(rl, descale(tmp13+tmp0, n))
		o[4] = limit(rl, descale(tmp13-tmp0, n))
	}
}

// idct4x4 is jpeg_idct_4x4: a 4×4 output block (scale 1/2).
func idct4x4(in *block, q *block, out []byte, stride int, rl *[1024]uint8) {
	var ws [8 * 4]int32
	for col := range 8 {
		if col == 4 { // the second pass does not use column 4
			continue
		}
		if in[8+col] == 0 && in[16+col] == 0 && in[24+col] == 0 &&
			in[40+col] == 0 && in[48+col] == 0 && in[56+col] == 0 {
			dc := int32(in[col]*q[col]) << pass1Bits
			ws[col], ws[8+col], ws[16+col], ws[24+col] = dc, dc, dc, dc
			continue
		}
		tmp0 := int(in[col]*q[col]) << (constBits + 1)
		z2 := int(in[16+col] * q[16+col])
		z3 := int(in[48+col] * q[48+col])
		tmp2 := z2*fix1_847759065 + z3*-fix0_765366865
		tmp10, tmp12 := tmp0+tmp2, tmp0-tmp2

		z1 := int(in[56+col] * q[56+col])
		z2 = int(in[40+col] * q[40+col])
		z3 = int(in[24+col] * q[24+col])
		z4 := int(in[8+col] * q[8+col])
		tmp0 = z1*-fix0_211164243 + z2*fix1_451774981 + z3*-fix2_172734803 + z4*fix1_061594337
		tmp2 = z1*-fix0_509795579 + z2*-fix0_601344887 + z3*fix0_899976223 + z4*fix2_562915447

		const n = constBits - pass1Bits + 1
		ws[col] = int32(descale(tmp10+tmp2, n))
		ws[24+col] = int32(descale(tmp10-tmp2, n))
		ws[8+col] = int32(descale(tmp12+tmp0, n))
		ws[16+col] = int32(descale(tmp12-tmp0, n))
	}
	for row := range 4 {
		w := ws[8*row : 8*row+8 : 8*row+8]
		o := out[row*stride : row*stride+4 : row*stride+4]
		if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
			v := limit(rl, descale(int(w[0]), pass1Bits+3))
			o[0], o[1], o[2], o[3] = v, v, v, v
			continue
		}
		tmp0 := int(w[0]) << (constBits + 1)
		tmp2 := int(w[2])*fix1_847759065 + int(w[6])*-fix0_765366865
		tmp10, tmp12 := tmp0+tmp2, tmp0-tmp2
		z1, z2, z3, z4 := int(w[7]), int(w[5]), int(w[3]), int(w[1])
		tmp0 = z1*-fix0_211164243 + z2*fix1_451774981 + z3*-fix2_172734803 + z4*fix1_061594337
		tmp2 = z1*-fix0_509795579 + z2*-fix0_601344887 + z3*fix0_899976223 + z4*fix2_562915447

		const n = constBits + pass1Bits + 3 + 1
		o[0] = limit(rl, descale(tmp10+tmp2, n))
		o[3] = limit(rl, descale(tmp10-tmp2, n))
		o[1] = limit(rl, descale(tmp12+tmp0, n))
		o[2] = limit(rl, descale(tmp12-tmp0, n))
	}
}

// idct2x2 is jpeg_idct_2x2: a 2×2 output block (scale 1/4).
func idct2x2(in *block, q *block, out []byte, stride int, rl *[1024]uint8) {
	var ws [8 * 2]int32
	for col := range 8 {
		if col == 2 || col == 4 || col == 6 {
			continue
		}
		if in[8+col] == 0 && in[24+col] == 0 && in[40+col] == 0 && in[56+col] == 0 {
			dc := int32(in[col]*q[col]) << pass1Bits
			ws[col], ws[8+col] = dc, dc
			continue
		}
		tmp10 := int(in[col]*q[col]) << (constBits + 2)
		tmp0 := int(in[56+col]*q[56+col]) * -fix0_720959822
		tmp0 += int(in[40+col]*q[40+col]) * fix0_850430095
		tmp0 += int(in[24+col]*q[24+col]) * -fix1_272758580
		tmp0 += int(in[8+col]*q[8+col]) * fix3_624509785

		const n = constBits - pass1Bits + 2
		ws[col] = int32(descale(tmp10+tmp0, n))
		ws[8+col] = int32(descale(tmp10-tmp0, n))
	}
	for row := range 2 {
		w := ws[8*row : 8*row+8 : 8*row+8]
		o := out[row*stride : row*stride+2 : row*stride+2]
		if w[1] == 0 && w[3] == 0 && w[5] == 0 && w[7] == 0 {
			v := limit(rl, descale(int(w[0]), pass1Bits+3))
			o[0], o[1] = v, v
			continue
		}
		tmp10 := int(w[0]) << (constBits + 2)
		tmp0 := int(w[7])*-fix0_720959822 + int(w[5])*fix0_850430095 +
			int(w[3])*-fix1_272758580 + int(w[1])*fix3_624509785

		const n = constBits + pass1Bits + 3 + 2
		o[0] = limit(rl, descale(tmp10+tmp0, n))
		o[1] = limit(rl, descale(tmp10-tmp0, n))
	}
}

// idct1x1 is jpeg_idct_1x1: the block's average (scale 1/8).
func idct1x1(in *block, q *block, out []byte, rl *[1024]uint8) {
	dc := int32(in[0] * q[0])
	out[0] = limit(rl, descale(int(dc), 3))
}

// idctNxN reconstructs an n×n block (n from 2 to 7) from the block's n×n
// lowest-frequency coefficients: the inverse DCT of JPEG's definition,
// f(x, y) = ¼ Σu Σv C(u) C(v) F(u, v) cos((2x+1)uπ/2n) cos((2y+1)vπ/2n),
// which samples the block's band-limited content at the centres of an n×n
// grid. The DC term is the block's mean, F/8, added exactly (not through
// the rounded cosines), as in every other IDCT here and in a DC-only
// block's fill. Most blocks that reach n of 4 to 7 hold few non-zero
// coefficients in that corner: each then adds its basis image (idctBasis),
// n² multiplications per coefficient; busier blocks take the separable
// product, 2n³. Sizes 2 and 3, the most used, have unrolled forms.
func idctNxN(in *block, q *block, out []byte, stride, n int, rl *[1024]uint8) {
	switch n {
	case 2:
		idct2Trunc(in, q, out, stride, rl)
		return
	case 3:
		idct3Trunc(in, q, out, stride, rl)
		return
	}
	var f [64]int // dequantised, the n×n corner at v·8+u, but the DC
	var nz [64]uint8
	k := 0
	for v := range n {
		for u := range n {
			i := v*8 + u
			if c := in[i]; c != 0 && i != 0 {
				f[i] = int(c * q[i])
				nz[k] = uint8(i)
				k++
			}
		}
	}
	var acc [64]int // the output at y·n+x, 26-bit fixed point
	a := acc[:n*n]
	// The DC term is the block's mean, f/8, exactly as in every other
	// IDCT (and in a DC-only block's fill): it is added apart, not through
	// the rounded cosines.
	dc := int(in[0]*q[0]) << (2*constBits - 3)
	for i := range a {
		a[i] = dc
	}
	if k <= 2*n {
		basis := &idctBasis[n]
		for _, i := range nz[:k] {
			fi := f[i]
			for j, w := range basis[i][:len(a)] {
				a[j] += fi * int(w)
			}
		}
	} else {
		t := &idctCos[n]
		var ws [8][8]int // pass 1, columns: ws[y][u] = Σv F(v, u)·t[y][v]
		for y := range n {
			ty := &t[y]
			for u := range n {
				s := 0
				for v := range n {
					s += f[v*8+u] * int(ty[v])
				}
				ws[y][u] = s
			}
		}
		for y := range n { // pass 2, rows: Σu ws[y][u]·t[x][u]
			w := ws[y][:n]
			for x := range n {
				tx := &t[x]
				s := 0
				for u, wu := range w {
					s += wu * int(tx[u])
				}
				a[y*n+x] += s
			}
		}
	}
	for y := range n {
		o := out[y*stride : y*stride+n]
		for x := range o {
			o[x] = limit(rl, descale(a[y*n+x], 2*constBits))
		}
	}
}

// idctBasis holds, for each n and frequency (v, u) at v·8+u, the n×n basis
// image t[y][v]·t[x][u] of idctNxN (t: idctCos) at y·n+x, in 26-bit fixed
// point; frequencies outside the n×n corner have none.
var idctBasis = func() (b [9][64][]int32) {
	for n := 1; n <= 8; n++ {
		t := &idctCos[n]
		for v := range n {
			for u := range n {
				img := make([]int32, n*n)
				for y := range n {
					for x := range n {
						img[y*n+x] = t[y][v] * t[x][u]
					}
				}
				b[n][v*8+u] = img
			}
		}
	}
	return b
}()

// idct2Trunc is idctNxN for n = 2, where the cosines are ±1/√2 and every
// output is a signed sum of the four coefficients over 8, computed exactly.
func idct2Trunc(in *block, q *block, out []byte, stride int, rl *[1024]uint8) {
	f00, f01 := int(in[0]*q[0]), int(in[1]*q[1])
	f10, f11 := int(in[8]*q[8]), int(in[9]*q[9])
	s0, d0 := f00+f10, f00-f10 // rows 0 and 1 before the horizontal step
	s1, d1 := f01+f11, f01-f11
	o := out[:stride+2]
	o[0] = limit(rl, descale(s0+s1, 3))
	o[1] = limit(rl, descale(s0-s1, 3))
	o[stride] = limit(rl, descale(d0+d1, 3))
	o[stride+1] = limit(rl, descale(d0-d1, 3))
}

// idct3Trunc is idctNxN for n = 3, the separable product unrolled over the
// 3×3 corner, where the chroma of a large 4:2:0 figure lands.
func idct3Trunc(in *block, q *block, out []byte, stride int, rl *[1024]uint8) {
	t := &idctCos[3]
	var f [3][3]int
	for v := range 3 {
		for u := range 3 {
			f[v][u] = int(in[v*8+u] * q[v*8+u])
		}
	}
	dc := f[0][0] << (2*constBits - 3) // the mean, exactly (see idctNxN)
	f[0][0] = 0
	var ws [3][3]int // ws[y][u] = Σv F(v, u)·t[y][v]
	for y := range 3 {
		ty := &t[y]
		t0, t1, t2 := int(ty[0]), int(ty[1]), int(ty[2])
		for u := range 3 {
			ws[y][u] = f[0][u]*t0 + f[1][u]*t1 + f[2][u]*t2
		}
	}
	for y := range 3 {
		w := &ws[y]
		o := out[y*stride : y*stride+3]
		for x := range 3 {
			tx := &t[x]
			o[x] = limit(rl, descale(dc+w[0]*int(tx[0])+w[1]*int(tx[1])+w[2]*int(tx[2]), 2*constBits))
		}
	}
}

// idctCos holds, for each n, t[x][u] = C(u)/2·cos((2x+1)uπ/2n) in 13-bit
// fixed point (C(0) = 1/√2, else 1): idctNxN's matrix.
var idctCos = func() (t [9][8][8]int32) {
	for n := 1; n <= 8; n++ {
		for x := range n {
			for u := range n {
				c := 0.5
				if u == 0 {
					c = 0.5 / math.Sqrt2
				}
				t[n][x][u] = int32(math.Round(c * math.Cos(float64(2*x+1)*float64(u)*math.Pi/float64(2*n)) * (1 << constBits)))
			}
		}
	}
	return t
}()
