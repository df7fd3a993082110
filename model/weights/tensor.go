package weights

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// Tensor is one named entry of a safetensors file: its element type, its
// shape (row-major; empty for a 0-d scalar) and its raw little-endian bytes.
type Tensor struct {
	DType DType
	Shape []int
	Data  []byte
}

// NumElements returns the product of the shape: 1 for a 0-d tensor, 0 when
// any dimension is 0.
func (t Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// check reports whether t is well-formed: a known dtype, no negative
// dimension, and exactly NumElements × DType.Size() bytes of data.
func (t Tensor) check() error {
	size := t.DType.Size()
	if size == 0 {
		return fmt.Errorf("unknown dtype %q (supported: %v)", t.DType, dtypes)
	}
	n, err := numElements64(t.Shape)
	if err != nil {
		return err
	}
	if want := n * uint64(size); uint64(len(t.Data)) != want {
		return fmt.Errorf("%s shape %v needs %d bytes of data, has %d", t.DType, t.Shape, want, len(t.Data))
	}
	return nil
}

// numElements64 multiplies the dimensions, rejecting negative ones and
// products beyond 2^62 (far more than any file can hold).
func numElements64(shape []int) (uint64, error) {
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension", shape)
		}
	}
	if slices.Contains(shape, 0) {
		return 0, nil
	}
	n := uint64(1)
	for _, d := range shape {
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > 1<<62 {
			return 0, fmt.Errorf("shape %v has too many elements", shape)
		}
		n = lo
	}
	return n, nil
}

// Float32s returns the elements as a new float32 slice. F32, F16 and BF16
// convert exactly (including subnormals, infinities and NaN); F64 rounds to
// the nearest float32. Other dtypes are an error.
func (t Tensor) Float32s() ([]float32, error) {
	if err := t.checkAs(t.DType.isFloat(), "Float32s"); err != nil {
		return nil, err
	}
	out := make([]float32, t.NumElements())
	d := t.Data
	switch t.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = f16ToF32(binary.LittleEndian.Uint16(d[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = bf16ToF32(binary.LittleEndian.Uint16(d[2*i:]))
		}
	case F64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(d[8*i:])))
		}
	}
	return out, nil
}

// Int64s returns the elements as a new int64 slice, from I64, I32, U8, I8 or
// BOOL (0 or 1). Other dtypes are an error.
func (t Tensor) Int64s() ([]int64, error) {
	ok := t.DType == I64 || t.DType == I32 || t.DType == U8 || t.DType == I8 || t.DType == BOOL
	if err := t.checkAs(ok, "Int64s"); err != nil {
		return nil, err
	}
	out := make([]int64, t.NumElements())
	d := t.Data
	switch t.DType {
	case I64:
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(d[8*i:]))
		}
	case I32:
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(d[4*i:])))
		}
	case U8, BOOL:
		for i := range out {
			out[i] = int64(d[i])
		}
	case I8:
		for i := range out {
			out[i] = int64(int8(d[i]))
		}
	}
	return out, nil
}

// checkAs validates t before a conversion named op that accepts its dtype
// when ok.
func (t Tensor) checkAs(ok bool, op string) error {
	if err := t.check(); err != nil {
		return fmt.Errorf("weights: %s: %w", op, err)
	}
	if !ok {
		return fmt.Errorf("weights: %s: unsupported dtype %s", op, t.DType)
	}
	return nil
}

// FromFloat32s returns an F32 tensor holding v with the given shape (copied).
// It panics when len(v) is not the product of shape, a programming error.
func FromFloat32s(shape []int, v []float32) Tensor {
	t := newTensor(F32, shape, len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(t.Data[4*i:], math.Float32bits(x))
	}
	return t
}

// FromInt64s returns an I64 tensor holding v with the given shape (copied).
// It panics when len(v) is not the product of shape, a programming error.
func FromInt64s(shape []int, v []int64) Tensor {
	t := newTensor(I64, shape, len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(t.Data[8*i:], uint64(x))
	}
	return t
}

// newTensor allocates a tensor of n elements, checking n against shape.
func newTensor(dtype DType, shape []int, n int) Tensor {
	want, err := numElements64(shape)
	if err != nil || want != uint64(n) {
		panic(fmt.Sprintf("weights: %d values do not fill shape %v", n, shape))
	}
	return Tensor{DType: dtype, Shape: slices.Clone(shape), Data: make([]byte, n*dtype.Size())}
}

// To converts a floating-point tensor to another floating-point dtype,
// returning a new tensor with its own shape and data. Narrowing to BF16 or
// F16 rounds to nearest, ties to even, as PyTorch's Tensor.to does; F16
// overflows to ±inf. An F64 source is first rounded to float32, as PyTorch
// does for F64 → F16/BF16. When t already has dtype, To returns t itself.
// Integer dtypes are an error.
func (t Tensor) To(dtype DType) (Tensor, error) {
	if err := t.check(); err != nil {
		return Tensor{}, fmt.Errorf("weights: To(%s): %w", dtype, err)
	}
	if t.DType == dtype {
		return t, nil
	}
	if !t.DType.isFloat() || !dtype.isFloat() {
		return Tensor{}, fmt.Errorf("weights: cannot convert %s to %s: only F32, F16, BF16 and F64 convert", t.DType, dtype)
	}
	n := t.NumElements()
	out := Tensor{DType: dtype, Shape: slices.Clone(t.Shape), Data: make([]byte, n*dtype.Size())}
	if t.DType == F64 && dtype == F32 || dtype == F64 {
		// Conversions that involve float64 directly (float64 → float32 rounds
		// once; anything → float64 is exact).
		src, err := t.float64s()
		if err != nil {
			return Tensor{}, err
		}
		for i, x := range src {
			if dtype == F64 {
				binary.LittleEndian.PutUint64(out.Data[8*i:], math.Float64bits(x))
			} else {
				binary.LittleEndian.PutUint32(out.Data[4*i:], math.Float32bits(float32(x)))
			}
		}
		return out, nil
	}
	src, err := t.Float32s()
	if err != nil {
		return Tensor{}, err
	}
	switch dtype {
	case F32:
		for i, x := range src {
			binary.LittleEndian.PutUint32(out.Data[4*i:], math.Float32bits(x))
		}
	case F16:
		for i, x := range src {
			binary.LittleEndian.PutUint16(out.Data[2*i:], f32ToF16(x))
		}
	case BF16:
		for i, x := range src {
			binary.LittleEndian.PutUint16(out.Data[2*i:], f32ToBF16(x))
		}
	}
	return out, nil
}

// float64s widens any floating-point tensor to float64 exactly.
func (t Tensor) float64s() ([]float64, error) {
	if t.DType == F64 {
		out := make([]float64, t.NumElements())
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:]))
		}
		return out, nil
	}
	f, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	out := make([]float64, len(f))
	for i, x := range f {
		out[i] = float64(x)
	}
	return out, nil
}

// StateDict maps OpenCLIP state-dict names to tensors.
type StateDict map[string]Tensor

// Names returns the tensor names in sorted order.
func (sd StateDict) Names() []string {
	names := make([]string, 0, len(sd))
	for name := range sd {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
