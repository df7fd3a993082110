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
	// Float32 runs everything in float32; it matches OpenCLIP's fp32
	// reference outputs to about 1e-6.
	Float32 Precision = iota
	// BFloat16Mixed is OpenCLIP's --precision amp_bf16: the operands of every
	// linear layer, of the patch embedding, of the projections and of both
	// attention products are rounded to bfloat16 and the products accumulate
	// in float32. It halves the memory traffic of the products, runs them on
	// a GPU's bf16 tensor cores and lets attention take the backend's fused
	// (flash) kernel.
	BFloat16Mixed
)

// ParsePrecision reads the configuration spelling: "f32" or "bf16".
func ParsePrecision(s string) (Precision, error) {
	switch s {
	case "f32", "":
		return Float32, nil
	case "bf16":
		return BFloat16Mixed, nil
	}
	return Float32, fmt.Errorf("precision %q is not one of f32, bf16", s)
}

// String is the configuration spelling.
func (p Precision) String() string {
	if p == BFloat16Mixed {
		return "bf16"
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

// result brings a product back to float32 for the element-wise work that
// follows, which autocast also keeps in float32 (layer norm, softmax) or
// which is cheap next to the product (bias, GELU, residual add).
func result(x *Node) *Node {
	if x.DType() != x32 {
		return ConvertDType(x, x32)
	}
	return x
}
