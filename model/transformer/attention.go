package transformer

import (
	"math"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

// Attention is torch.nn.MultiheadAttention's self-attention with packed
// projections: one in_proj matmul gives q, k and v (in that order along the
// output axis), scaled dot-product per head, causal for the text tower,
// heads concatenated, then out_proj. x is [B, L, W].
func Attention(scope *model.Scope, x *Node, c Config, causal bool) *Node {
	g := x.Graph()
	width := x.Shape().Dim(2)
	inWeight := Param(scope, g, "in_proj_weight", 3*width, width)
	inBias := Param(scope, g, "in_proj_bias", 3*width)
	qkv := AddTrailing(Project(x, inWeight, c.Precision), inBias) // [B, L, 3W]
	out := PackedAttention(qkv, c.Heads, causal, c.Precision)
	return Linear(scope.In("out_proj"), out, width, c.Precision)
}

// PackedAttention is multi-head attention over packed projections qkv
// [B, L, 3W]: q, k and v one after the other along the last axis, each
// split into heads (torch's in_proj chunk+view, and timm's
// qkv.reshape(B, N, 3, H, D)). It returns the heads concatenated, [B, L, W],
// before the output projection.
func PackedAttention(qkv *Node, heads int, causal bool, p Precision) *Node {
	batch, seq, width := qkv.Shape().Dim(0), qkv.Shape().Dim(1), qkv.Shape().Dim(2)/3
	headDim := width / heads
	// Lay q, k and v out as [3, B, H, L, D] with one transpose, so both
	// attention products are plain batched matmuls over (B, H).
	qkv = Reshape(qkv, batch, seq, 3, heads, headDim) // q,k,v then heads, as torch's chunk+view
	qkv = TransposeAllDims(qkv, 2, 0, 3, 1, 4)
	q := Reshape(SliceAxis(qkv, 0, AxisElem(0)), batch, heads, seq, headDim)
	k := Reshape(SliceAxis(qkv, 0, AxisElem(1)), batch, heads, seq, headDim)
	v := Reshape(SliceAxis(qkv, 0, AxisElem(2)), batch, heads, seq, headDim)
	out := ScaledDotProductAttention(q, k, v, causal, p) // [B, H, L, D]
	out = TransposeAllDims(out, 0, 2, 1, 3)
	return Reshape(out, batch, seq, width)
}

// ScaledDotProductAttention is softmax(q kᵀ/√D + mask) v for q, k, v laid
// out [B, H, L, D], the mask being CausalMask when causal. The result is
// float32.
//
// When the backend has a fused kernel for these operands it is used, with
// its own backward pass: XLA on CUDA runs cuDNN's flash attention for
// bfloat16 operands, so the [B, H, L, L] scores are never stored. Every
// other case, float32 everywhere included, runs the decomposed form, which
// keeps the softmax in float32 as autocast does; float32 training therefore
// stays exact on every backend.
func ScaledDotProductAttention(q, k, v *Node, causal bool, p Precision) *Node {
	out, _ := scaledDotProductAttention(q, k, v, causal, p)
	return out
}

// scaledDotProductAttention is ScaledDotProductAttention, also reporting
// whether the backend's fused kernel took it.
func scaledDotProductAttention(q, k, v *Node, causal bool, p Precision) (*Node, bool) {
	g := q.Graph()
	seq, headDim := q.Shape().Dim(2), q.Shape().Dim(3)
	scale := 1 / math.Sqrt(float64(headDim))
	k, v = p.operand(k), p.operand(v)
	decomposed := func() *Node {
		scores := Product(p.operand(MulScalar(q, scale)), k).General([]int{3}, []int{0, 1}, []int{3}, []int{0, 1}) // [B, H, Lq, Lk]
		scores = result(scores)
		if causal {
			scores = AddTrailing(scores, CausalMask(g, seq))
		}
		weights := p.operand(Softmax(scores, -1))
		return Product(weights, v).General([]int{3}, []int{0, 1}, []int{2}, []int{0, 1}) // [B, H, Lq, D]
	}
	ops := g.Backend().Capabilities().Operations
	if !ops[compute.OpTypeFusedScaledDotProductAttention] {
		return result(decomposed()), false
	}
	fused := func() *Node {
		out, _ := BackendFusedScaledDotProductAttention(p.operand(q), k, v,
			compute.AttentionAxesLayoutBHSD, &compute.ScaledDotProductAttentionConfig{Scale: scale, Causal: causal})
		return out
	}
	// A backend with the fused forward but no fused backward differentiates
	// through the decomposed form instead.
	out, isFused := InternalFusedOpCaller(fused, decomposed, !ops[compute.OpTypeFusedScaledDotProductAttentionVJP])
	return result(out), isFused
}

// UsesFusedAttention reports whether backend runs attention over heads ×
// seq × headDim through its fused kernel under precision p, by building
// (not compiling) one attention graph. Benchmarks report it, since a
// missing flash kernel shows only as lost speed and memory.
func UsesFusedAttention(backend compute.Backend, p Precision, heads, seq, headDim int, causal bool) (fused bool, err error) {
	err = exceptions.TryCatch[error](func() {
		g := NewGraph(backend, "fused-attention-probe")
		defer g.Finalize()
		shape := shapes.Make(x32, 1, heads, seq, headDim)
		q, k, v := Parameter(g, "q", shape), Parameter(g, "k", shape), Parameter(g, "v", shape)
		_, fused = scaledDotProductAttention(q, k, v, causal, p)
	})
	return fused, err
}

// CausalMask is the additive [L, L] mask OpenCLIP builds for the text tower:
// 0 on and below the diagonal, -inf above it.
func CausalMask(g *Graph, seq int) *Node {
	negInf := Scalar(g, x32, math.Inf(-1))
	zero := ScalarZero(g, x32)
	return Where(LowerTriangular(g, seq), BroadcastToDims(zero, seq, seq), BroadcastToDims(negInf, seq, seq))
}
