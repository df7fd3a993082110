package transformer

import (
	"math"
	"slices"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/nn"
	"github.com/gomlx/gomlx/support/exceptions"
)

// LayerNormEpsilon is torch.nn.LayerNorm's default, which CLIP uses.
const LayerNormEpsilon = 1e-5

// Param returns the value of the existing variable name in scope, checking
// its shape. It panics (GoMLX's convention inside graph building) when the
// variable is missing or mis-shaped, naming the OpenCLIP parameter.
func Param(scope *model.Scope, g *Graph, name string, shape ...int) *Node {
	v := scope.GetVariable(name)
	if v == nil {
		exceptions.Panicf("model parameter %s is missing from the store", OpenCLIPName(scope.Scope(), name))
	}
	if got := v.Shape().Dimensions; !slices.Equal(got, shape) {
		exceptions.Panicf("model parameter %s has shape %v, the configuration needs %v", OpenCLIPName(scope.Scope(), name), got, shape)
	}
	return v.NodeValue(g)
}

// LayerNorm normalises over the last axis with torch semantics (biased
// variance, eps inside the square root) and applies weight and bias.
func LayerNorm(scope *model.Scope, x *Node) *Node {
	return LayerNormEps(scope, x, LayerNormEpsilon)
}

// LayerNormEps is LayerNorm with another epsilon, for the towers that do not
// use torch's default: timm's ViTs (1e-6) and BERT (layer_norm_eps, 1e-12).
//
// The arithmetic is GoMLX's nn.LayerNorm, given OpenCLIP's weight and bias.
// GoMLX's layer, norm.LayerNorm, cannot serve: it creates its own variables
// (layer_normalization/gain and /offset, where checkpoints hold weight and
// bias) and takes its epsilon from a scope parameter (default 1e-3). On
// XLA, which has no fused layer norm, and in every gradient, nn.LayerNorm
// is the plain graph (mean, biased variance, divide by the square root),
// bit for bit. On the pure-Go backend its forward pass is one fused
// kernel, which rounds differently (by up to 1e-6 on OpenCLIP's reference
// activations, as close to torch's output as the graph) and makes CPU
// inference about 6% faster. TestGoMLXLayersOnOpenCLIPActivations checks
// the numbers.
func LayerNormEps(scope *model.Scope, x *Node, eps float64) *Node {
	width := x.Shape().Dim(-1)
	weight := Param(scope, x.Graph(), "weight", width)
	bias := Param(scope, x.Graph(), "bias", width)
	return nn.LayerNorm(x, []int{x.Rank() - 1}, eps, weight, bias, nil)
}

// AddTrailing adds v to x, broadcasting v over x's leading axes (GoMLX,
// unlike torch, only broadcasts between operands of equal rank).
func AddTrailing(x, v *Node) *Node { return Add(x, ExpandLeftToRank(v, x.Rank())) }

// MulTrailing multiplies x by v, broadcasting v over x's leading axes.
func MulTrailing(x, v *Node) *Node { return Mul(x, ExpandLeftToRank(v, x.Rank())) }

// Linear computes x @ weightᵀ + bias for a torch.nn.Linear stored as
// weight [out, in] and bias [out], over any leading axes of x. The product
// runs in precision p; the result is float32.
//
// It is not GoMLX's nn.Dense, which in float32 computes the same numbers
// but knows nothing of Precision: given bfloat16 operands it returns a
// bfloat16 result, bias added in bfloat16 (further from OpenCLIP's float32
// output than this float32 accumulation), asks for the float32 gradient
// products that Product avoids, and on the pure-Go backend fails when the
// graph runs (its fused kernel has no bfloat16).
// TestGoMLXLayersOnOpenCLIPActivations shows the float32 equality, the
// bfloat16 result and the failure.
func Linear(scope *model.Scope, x *Node, outDim int, p Precision) *Node {
	g := x.Graph()
	inDim := x.Shape().Dim(-1)
	weight := Param(scope, g, "weight", outDim, inDim)
	bias := Param(scope, g, "bias", outDim)
	return AddTrailing(Project(x, weight, p), bias)
}

// Project multiplies the last axis of x by weightᵀ (weight is [out, in]) in
// precision p; the result is float32.
func Project(x, weight *Node, p Precision) *Node {
	dims := x.Shape().Dimensions
	flat := Reshape(p.operand(x), -1, dims[len(dims)-1])
	y := result(Product(flat, p.operand(weight)).General([]int{1}, nil, []int{1}, nil))
	outDims := append(append([]int{}, dims[:len(dims)-1]...), weight.Shape().Dim(0))
	return Reshape(y, outDims...)
}

// MatMulRight computes x @ m for m stored as [in, out] (OpenCLIP's proj and
// text_projection), over any leading axes of x, in precision p.
func MatMulRight(x, m *Node, p Precision) *Node {
	dims := x.Shape().Dimensions
	flat := Reshape(p.operand(x), -1, dims[len(dims)-1])
	y := result(Product(flat, p.operand(m)).General([]int{1}, nil, []int{0}, nil))
	outDims := append(append([]int{}, dims[:len(dims)-1]...), m.Shape().Dim(1))
	return Reshape(y, outDims...)
}

// GELU is the exact erf form torch.nn.GELU uses by default. GoMLX's
// activation.Gelu computes the same numbers bit for bit, on both backends
// (tested), but on the pure-Go backend it adds a fused forward kernel next
// to the graph its gradient needs, so a training step costs about 4% more
// CPU there and inference no less; hence this one line.
func GELU(x *Node) *Node {
	return Mul(MulScalar(x, 0.5), OnePlus(Erf(MulScalar(x, 1/math.Sqrt2))))
}

// QuickGELU is OpenAI's approximation x * sigmoid(1.702 x), which GoMLX
// does not have.
func QuickGELU(x *Node) *Node {
	return Mul(x, Sigmoid(MulScalar(x, 1.702)))
}
