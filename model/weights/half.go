package weights

import "math"

// Conversions between float32 and the 16-bit float formats. They follow
// PyTorch's scalar code (c10::Half, c10::BFloat16): widening is exact, and
// narrowing rounds to nearest, ties to even.

// f16ToF32 widens an IEEE binary16 value exactly, including subnormals,
// infinities and NaN payloads.
func f16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // inf or NaN: keep the payload in the top mantissa bits
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // ±0
		return math.Float32frombits(sign)
	}
	// Subnormal: mant × 2^-24. Normalise it into a binary32 normal number.
	e := uint32(127 - 15 + 1)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// f32ToF16 narrows to binary16 with round-to-nearest-even; values beyond the
// range become ±inf, values below half the smallest subnormal become ±0, and
// NaN becomes sign|0x7E00 (the quiet NaN c10::Half produces).
func f32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // biased binary16 exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal result (or zero). The significand with its implicit bit
		// is shifted right by 14-e places (13 to drop the extra mantissa
		// bits, 1-e to denormalise).
		if e < -10 {
			return sign // below half the smallest subnormal: rounds to 0
		}
		m := mant | 0x800000
		shift := uint32(14 - e)
		return sign | uint16(roundShift(m, shift))
	}
	// Normal: rounding may carry into the exponent, and from the largest
	// finite value into inf, both of which the addition handles.
	v := uint32(e)<<10 | mant>>13
	rest := mant & 0x1fff
	if rest > 0x1000 || (rest == 0x1000 && v&1 == 1) {
		v++
	}
	return sign | uint16(v)
}

// roundShift returns m >> shift rounded to nearest, ties to even.
func roundShift(m, shift uint32) uint32 {
	if shift >= 32 {
		return 0
	}
	q := m >> shift
	rest := m & (1<<shift - 1)
	half := uint32(1) << (shift - 1)
	if rest > half || (rest == half && q&1 == 1) {
		q++
	}
	return q
}

// bf16ToF32 widens a bfloat16 exactly.
func bf16ToF32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// f32ToBF16 narrows to bfloat16 with round-to-nearest-even, as
// c10::BFloat16 does: NaN becomes 0x7FC0, and rounding past the largest
// finite value gives ±inf.
func f32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return 0x7fc0
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
