package transformer

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
)

// Precision is the arithmetic the towers' matrix products run in. Weights,
// gradients, optimiser state, layer norms, GELU, softmax, the residual
// stream and the loss stay float32 under every precision, as under
// torch.autocast: only the inputs of products are rounded.
type Precision int

const (
	// Float32 runs everything in float32, matrix products included (on XLA
	// every float32 product asks for precision HIGHEST, so a GPU does not
	// silently use TF32); it matches OpenCLIP's fp32 reference outputs to
	// about 1e-6 on the CPU.
	Float32 Precision = iota
	// BFloat16Mixed is OpenCLIP's --precision amp_bf16: the operands of every
	// linear layer, of the patch embedding, of the projections and of both
	// attention products are rounded to bfloat16 and the products accumulate
	// in float32. It halves the memory traffic of the products, runs them on
	// a GPU's bf16 tensor cores and lets attention take the backend's fused
	// (flash) kernel.
	BFloat16Mixed
	// TensorFloat32 is the float32 graph of Float32 with the backend allowed
	// to run its matrix products on TF32 tensor cores (operands rounded to a
	// 10-bit mantissa, float32 accumulation), as OpenCLIP's trainer allows
	// with torch.backends.cuda.matmul.allow_tf32. Only CUDA GPUs have TF32:
	// on the CPU backends it computes exactly as Float32.
	TensorFloat32
)

// ParsePrecision reads a precision as a run config or a --precision flag
// spells it: "f32", "tf32" or "bf16", or OpenCLIP's --precision spellings
// of the same arithmetic, "fp32" (f32) and "amp_bf16" or "amp_bfloat16"
// (bf16). OpenCLIP's other modes are refused with the reason, since
// silently running another arithmetic would give other numbers: "amp"
// and the fp16 modes need loss scaling, which bmca does not implement;
// OpenCLIP's "bf16" and "pure_bf16" keep the weights themselves in
// bfloat16, where bmca's bf16 (amp_bf16) keeps them in float32.
func ParsePrecision(s string) (Precision, error) {
	switch s {
	case "f32", "fp32", "":
		return Float32, nil
	case "bf16", "amp_bf16", "amp_bfloat16":
		return BFloat16Mixed, nil
	case "tf32":
		return TensorFloat32, nil
	case "amp", "fp16", "pure_fp16":
		return Float32, fmt.Errorf("precision %q (OpenCLIP's float16 mode) is not offered: float16 training needs loss scaling, which bmca does not implement; use one of %s (bf16 is OpenCLIP's amp_bf16)", s, precisionNames)
	case "pure_bf16":
		return Float32, fmt.Errorf("precision %q (OpenCLIP's bfloat16 weights) is not offered: bmca keeps weights and optimiser state in float32; use bf16 (OpenCLIP's amp_bf16) or another of %s", s, precisionNames)
	}
	return Float32, fmt.Errorf("precision %q is not one of %s (or OpenCLIP's fp32, amp_bf16)", s, precisionNames)
}

// precisionNames lists the spellings String gives, for errors.
const precisionNames = "f32, tf32, bf16"

// String is the configuration spelling.
func (p Precision) String() string {
	switch p {
	case BFloat16Mixed:
		return "bf16"
	case TensorFloat32:
		return "tf32"
	}
	return "f32"
}

// Set parses s, so that a Precision serves as a command-line flag.
func (p *Precision) Set(s string) error {
	v, err := ParsePrecision(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// UnmarshalText parses a precision (ParsePrecision), so that a run config
// holds the parsed value and its spelling is checked where it is read.
func (p *Precision) UnmarshalText(text []byte) error { return p.Set(string(text)) }

// MarshalText writes the configuration spelling (String).
func (p Precision) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// ProductDType is the dtype the operands of matrix products are rounded to.
func (p Precision) ProductDType() dtypes.DType {
	if p == BFloat16Mixed {
		return dtypes.BFloat16
	}
	return dtypes.Float32
}

// operand rounds x to the product dtype (a no-op in float32).
func (p Precision) operand(x *Node) *Node {
	if dt := p.ProductDType(); x.DType() != dt {
		return ConvertDType(x, dt)
	}
	return x
}

// Product starts a matrix product of operands already in the product dtype
// (Precision.ProductDType); every tower builds its products with it.
//
// For bfloat16 operands GoMLX's Dot asks for a float32 accumulator, and its
// gradient then computes both backward products in that dtype: it converts
// the bfloat16 operands and the incoming gradient up to float32, so two
// thirds of a training step's product FLOPs leave the bf16 tensor cores
// (TF32 or full float32 on a GPU) and every saved activation and weight is
// converted again in the backward pass. autocast's backward products take
// bfloat16 operands. Leaving the accumulator to the operands' dtype keeps
// the forward arithmetic, since every backend accumulates bfloat16 products
// in float32 anyway (the Go backend by construction, XLA's GPU gemms with a
// float32 compute type), and GoMLX's gradient then multiplies the bfloat16
// gradient by the bfloat16 operand with a float32 accumulator, as autocast
// does. In float32 nothing changes.
func Product(lhs, rhs *Node) *DotBuilder {
	b := Dot(lhs, rhs)
	if lhs.DType().IsHalfPrecision() {
		b = b.WithAccumulatorDType(dtypes.InvalidDType)
	}
	return b
}

// result brings a product back to float32 for the element-wise work that
// follows, which autocast also keeps in float32 (layer norm, softmax) or
// which is cheap next to the product (bias, GELU, residual add).
func result(x *Node) *Node {
	if x.DType() != x32 {
		return ConvertDType(x, x32)
	}
	return x
}
