package weights

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// f32 returns the float32 with the given bits.
func f32(bits uint32) float32 { return math.Float32frombits(bits) }

func TestF32ToBF16Table(t *testing.T) {
	tests := []struct {
		name string
		in   uint32
		want uint16
	}{
		{"1.0", 0x3f800000, 0x3f80},
		{"-2.5", 0xc0200000, 0xc020},
		{"+0", 0x00000000, 0x0000},
		{"-0", 0x80000000, 0x8000},
		{"largest bf16", 0x7f7f0000, 0x7f7f},
		{"max float32 rounds to inf", 0x7f7fffff, 0x7f80},
		{"just below the inf tie", 0x7f7f7fff, 0x7f7f},
		{"+inf", 0x7f800000, 0x7f80},
		{"-inf", 0xff800000, 0xff80},
		{"tie rounds down to even", 0x3f808000, 0x3f80},
		{"tie rounds up to even", 0x3f818000, 0x3f82},
		{"above tie rounds up", 0x3f808001, 0x3f81},
		{"below tie rounds down", 0x3f807fff, 0x3f80},
		{"negative tie", 0xbf818000, 0xbf82},
		{"min float32 subnormal", 0x00000001, 0x0000},
		{"min bf16 subnormal", 0x00010000, 0x0001},
		{"subnormal tie to even 0", 0x00008000, 0x0000},
		{"subnormal tie to even 2", 0x00018000, 0x0002},
		{"max subnormal rounds to min normal", 0x007fffff, 0x0080},
		{"quiet NaN", 0x7fc00000, 0x7fc0},
		{"negative NaN", 0xffc00001, 0x7fc0},
		{"signalling NaN", 0x7f800001, 0x7fc0},
		{"NaN that would round to inf", 0x7f807fff, 0x7fc0},
	}
	for _, tc := range tests {
		if got := f32ToBF16(f32(tc.in)); got != tc.want {
			t.Errorf("%s: f32ToBF16(%#08x) = %#04x, want %#04x", tc.name, tc.in, got, tc.want)
		}
	}
}

func TestF32ToF16Table(t *testing.T) {
	tests := []struct {
		name string
		in   float32
		want uint16
	}{
		{"1.0", 1, 0x3c00},
		{"-2.5", -2.5, 0xc100},
		{"0.1", 0.1, 0x2e66},
		{"1/3", 1.0 / 3, 0x3555},
		{"+0", 0, 0x0000},
		{"-0", f32(0x80000000), 0x8000},
		{"max", 65504, 0x7bff},
		{"below the overflow tie", 65519.996, 0x7bff},
		{"overflow tie rounds to inf", 65520, 0x7c00},
		{"overflow", 1e6, 0x7c00},
		{"negative overflow", -1e6, 0xfc00},
		{"max float32", math.MaxFloat32, 0x7c00},
		{"+inf", float32(math.Inf(1)), 0x7c00},
		{"-inf", float32(math.Inf(-1)), 0xfc00},
		{"min normal", 0x1p-14, 0x0400},
		{"max subnormal", 1023 * 0x1p-24, 0x03ff},
		{"min subnormal", 0x1p-24, 0x0001},
		{"-min subnormal", -0x1p-24, 0x8001},
		{"half min subnormal ties to 0", 0x1p-25, 0x0000},
		{"above half min subnormal", f32(math.Float32bits(0x1p-25) + 1), 0x0001},
		{"subnormal tie to even 2", 3 * 0x1p-25, 0x0002},
		{"subnormal tie to even 2 (from 5/2)", 5 * 0x1p-25, 0x0002},
		{"subnormal rounds into min normal", 1023.5 * 0x1p-24, 0x0400},
		{"underflow", 1e-8, 0x0000},
		{"float32 subnormal", f32(1), 0x0000},
		{"tie rounds down to even", 1 + 0x1p-11, 0x3c00},
		{"tie rounds up to even", 1 + 3*0x1p-11, 0x3c02},
		{"above tie rounds up", 1 + 0x1p-11 + 0x1p-20, 0x3c01},
		{"rounding carries into the exponent", 2 - 0x1p-12, 0x4000},
		{"quiet NaN", float32(math.NaN()), 0x7e00},
		{"negative NaN", f32(0xffc00001), 0xfe00},
		{"signalling NaN", f32(0x7f800001), 0x7e00},
	}
	for _, tc := range tests {
		if got := f32ToF16(tc.in); got != tc.want {
			t.Errorf("%s: f32ToF16(%g = %#08x) = %#04x, want %#04x", tc.name, tc.in, math.Float32bits(tc.in), got, tc.want)
		}
	}
}

func TestF16ToF32Table(t *testing.T) {
	tests := []struct {
		in   uint16
		want float32
	}{
		{0x3c00, 1},
		{0xc100, -2.5},
		{0x7bff, 65504},
		{0x0400, 0x1p-14},
		{0x0001, 0x1p-24},
		{0x8001, -0x1p-24},
		{0x03ff, 1023 * 0x1p-24},
		{0x0200, 0x1p-15},
		{0x3555, 0.333251953125},
		{0x7c00, float32(math.Inf(1))},
		{0xfc00, float32(math.Inf(-1))},
		{0x8000, f32(0x80000000)},
	}
	for _, tc := range tests {
		if got := f16ToF32(tc.in); math.Float32bits(got) != math.Float32bits(tc.want) {
			t.Errorf("f16ToF32(%#04x) = %g, want %g", tc.in, got, tc.want)
		}
	}
	for _, h := range []uint16{0x7e00, 0x7c01, 0xfe00, 0x7fff} {
		got := f16ToF32(h)
		if !math.IsNaN(float64(got)) {
			t.Errorf("f16ToF32(%#04x) = %g, want NaN", h, got)
		}
		if math.Float32bits(got)>>31 != uint32(h>>15) {
			t.Errorf("f16ToF32(%#04x) lost the sign of the NaN", h)
		}
	}
}

// Every 16-bit value survives widening and narrowing back, for both formats.
func TestHalfRoundTripExhaustive(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		if f := f16ToF32(h); math.IsNaN(float64(f)) {
			if back := f32ToF16(f); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("F16 NaN %#04x came back as non-NaN %#04x", h, back)
			}
		} else if back := f32ToF16(f); back != h {
			t.Fatalf("F16 %#04x → %g → %#04x", h, f, back)
		}
		if f := bf16ToF32(h); math.IsNaN(float64(f)) {
			if back := f32ToBF16(f); back != 0x7fc0 {
				t.Fatalf("BF16 NaN %#04x → %#04x, want 0x7fc0", h, back)
			}
		} else if back := f32ToBF16(f); back != h {
			t.Fatalf("BF16 %#04x → %g → %#04x", h, f, back)
		}
	}
}

// refNarrow rounds a finite float32 to a binary format with mantBits stored
// mantissa bits and the given exponent bias, ties to even, with plain
// float64 arithmetic (exact here): an independent model of f32ToF16 and
// f32ToBF16.
func refNarrow(x float32, mantBits, expBits, bias int) uint16 {
	sign := uint16(0)
	if math.Signbit(float64(x)) {
		sign = 1 << (mantBits + expBits)
	}
	a := math.Abs(float64(x))
	minNormalExp := 1 - bias
	inf := uint16(1<<expBits-1) << mantBits
	if a < math.Ldexp(1, minNormalExp) {
		m := math.RoundToEven(a / math.Ldexp(1, minNormalExp-mantBits))
		return sign | uint16(m) // m may be 1<<mantBits: the smallest normal
	}
	_, e := math.Frexp(a) // a = f × 2^e, f in [0.5, 1)
	e--
	m := math.RoundToEven(a / math.Ldexp(1, e-mantBits))
	if m == math.Ldexp(1, mantBits+1) {
		m /= 2
		e++
	}
	biased := e + bias
	if biased >= 1<<expBits-1 {
		return sign | inf
	}
	return sign | uint16(biased)<<mantBits | uint16(m-math.Ldexp(1, mantBits))
}

func TestNarrowMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(bits uint32) {
		x := f32(bits)
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return
		}
		if got, want := f32ToF16(x), refNarrow(x, 10, 5, 15); got != want {
			t.Fatalf("f32ToF16(%#08x) = %#04x, reference %#04x", bits, got, want)
		}
		if got, want := f32ToBF16(x), refNarrow(x, 7, 8, 127); got != want {
			t.Fatalf("f32ToBF16(%#08x) = %#04x, reference %#04x", bits, got, want)
		}
	}
	for range 1_000_000 {
		check(rng.Uint32())
	}
	// Values near ties and near the F16 range limits, where rounding is hard.
	for range 200_000 {
		bits := rng.Uint32()
		check(bits&^0x1fff | 0x1000)                          // F16 mantissa tie
		check(bits&^0xffff | 0x8000)                          // BF16 mantissa tie
		check(bits&0x807fffff | uint32(100+rng.IntN(20))<<23) // F16 subnormal/normal boundary
		check(bits&0x807fffff | uint32(140+rng.IntN(4))<<23)  // F16 overflow boundary
	}
}

func TestTensorConversions(t *testing.T) {
	v := []float32{1, -2.5, 0.1, 65504, 1e-8, float32(math.Inf(-1))}
	src := FromFloat32s([]int{2, 3}, v)
	if src.DType != F32 || !slices.Equal(src.Shape, []int{2, 3}) || len(src.Data) != 24 || src.NumElements() != 6 {
		t.Fatalf("FromFloat32s gave %v %v %d bytes", src.DType, src.Shape, len(src.Data))
	}
	got, err := src.Float32s()
	if err != nil || !slices.Equal(got, v) {
		t.Fatalf("Float32s = %v, %v; want %v", got, err, v)
	}
	for _, dt := range []DType{F16, BF16, F64} {
		conv, err := src.To(dt)
		if err != nil {
			t.Fatalf("To(%s): %v", dt, err)
		}
		if conv.DType != dt || len(conv.Data) != 6*dt.Size() {
			t.Fatalf("To(%s) gave %s with %d bytes", dt, conv.DType, len(conv.Data))
		}
		back, err := conv.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range v {
			want := x
			switch dt {
			case F16:
				want = f16ToF32(f32ToF16(x))
			case BF16:
				want = bf16ToF32(f32ToBF16(x))
			}
			if back[i] != want {
				t.Errorf("%s: element %d = %g, want %g", dt, i, back[i], want)
			}
		}
		again, err := conv.To(F32)
		if err != nil {
			t.Fatal(err)
		}
		if again2, _ := again.Float32s(); !slices.Equal(again2, back) {
			t.Errorf("%s → F32 via To differs from Float32s", dt)
		}
	}
	if same, err := src.To(F32); err != nil || &same.Data[0] != &src.Data[0] {
		t.Errorf("To(own dtype) should return the tensor itself")
	}
	// F64 → BF16 goes through float32 first, as PyTorch does: 1+2^-8+2^-30
	// rounds to the float32 tie 1+2^-8 and then down to even, 1.
	f64 := Tensor{DType: F64, Shape: []int{1}, Data: make([]byte, 8)}
	putF64(f64.Data, 1+0x1p-8+0x1p-30)
	bf, err := f64.To(BF16)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := bf.Float32s(); got[0] != 1 {
		t.Errorf("F64 → BF16 of 1+2^-8+2^-30 = %g, want 1 (double rounding as in PyTorch)", got[0])
	}
	if _, err := FromInt64s([]int{1}, []int64{3}).To(F32); err == nil {
		t.Error("I64 → F32 should be refused")
	}
	if _, err := FromInt64s([]int{1}, []int64{3}).Float32s(); err == nil {
		t.Error("Float32s of I64 should be refused")
	}
	if _, err := src.Int64s(); err == nil {
		t.Error("Int64s of F32 should be refused")
	}
	bad := Tensor{DType: F32, Shape: []int{2}, Data: make([]byte, 4)}
	if _, err := bad.Float32s(); err == nil {
		t.Error("Float32s of a tensor with too little data should fail")
	}
}

func putF64(b []byte, x float64) {
	u := math.Float64bits(x)
	for i := range 8 {
		b[i] = byte(u >> (8 * i))
	}
}

func TestInt64s(t *testing.T) {
	tests := []struct {
		t    Tensor
		want []int64
	}{
		{FromInt64s([]int{2, 2}, []int64{0, -1, math.MaxInt64, math.MinInt64}), []int64{0, -1, math.MaxInt64, math.MinInt64}},
		{Tensor{DType: I32, Shape: []int{2}, Data: []byte{0xff, 0xff, 0xff, 0xff, 7, 0, 0, 0}}, []int64{-1, 7}},
		{Tensor{DType: U8, Shape: []int{3}, Data: []byte{0, 200, 255}}, []int64{0, 200, 255}},
		{Tensor{DType: I8, Shape: []int{3}, Data: []byte{0, 200, 255}}, []int64{0, -56, -1}},
		{Tensor{DType: BOOL, Shape: []int{2}, Data: []byte{1, 0}}, []int64{1, 0}},
		{Tensor{DType: I64, Shape: []int{0, 5}, Data: nil}, []int64{}},
	}
	for _, tc := range tests {
		got, err := tc.t.Int64s()
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s %v: Int64s = %v, %v; want %v", tc.t.DType, tc.t.Shape, got, err, tc.want)
		}
	}
}

func TestFromPanicsOnShapeMismatch(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("FromFloat32s with 3 values for shape [2,2] did not panic")
		}
	}()
	FromFloat32s([]int{2, 2}, []float32{1, 2, 3})
}

func TestScalarAndEmpty(t *testing.T) {
	s := FromFloat32s(nil, []float32{2.5})
	if s.NumElements() != 1 || len(s.Data) != 4 {
		t.Errorf("0-d tensor: %d elements, %d bytes", s.NumElements(), len(s.Data))
	}
	e := FromFloat32s([]int{3, 0}, nil)
	if e.NumElements() != 0 || len(e.Data) != 0 {
		t.Errorf("empty tensor: %d elements, %d bytes", e.NumElements(), len(e.Data))
	}
}
