package transformer

import (
	"math"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// Attention is torch.nn.MultiheadAttention's self-attention with packed
// projections: one in_proj matmul gives q, k and v (in that order along the
// output axis), scaled dot-product per head with an optional additive mask
// [L, L], heads concatenated, then out_proj. x is [B, L, W].
func Attention(scope *model.Scope, x *Node, heads int, mask *Node) *Node {
	g := x.Graph()
	batch, seq, width := x.Shape().Dim(0), x.Shape().Dim(1), x.Shape().Dim(2)
	headDim := width / heads
	inWeight := Param(scope, g, "in_proj_weight", 3*width, width)
	inBias := Param(scope, g, "in_proj_bias", 3*width)
	qkv := AddTrailing(project(x, inWeight), inBias) // [B, L, 3W]
	// Lay q, k and v out as [3, B, H, L, D] with one transpose, so both
	// attention products are plain batched matmuls over (B, H).
	qkv = Reshape(qkv, batch, seq, 3, heads, headDim) // q,k,v then heads, as torch's chunk+view
	qkv = TransposeAllDims(qkv, 2, 0, 3, 1, 4)
	q := Reshape(SliceAxis(qkv, 0, AxisElem(0)), batch, heads, seq, headDim)
	k := Reshape(SliceAxis(qkv, 0, AxisElem(1)), batch, heads, seq, headDim)
	v := Reshape(SliceAxis(qkv, 0, AxisElem(2)), batch, heads, seq, headDim)

	q = MulScalar(q, 1/math.Sqrt(float64(headDim)))
	scores := Dot(q, k).General([]int{3}, []int{0, 1}, []int{3}, []int{0, 1}) // [B, H, Lq, Lk]
	if mask != nil {
		scores = AddTrailing(scores, mask)
	}
	weights := Softmax(scores, -1)
	out := Dot(weights, v).General([]int{3}, []int{0, 1}, []int{2}, []int{0, 1}) // [B, H, Lq, D]
	out = TransposeAllDims(out, 0, 2, 1, 3)
	out = Reshape(out, batch, seq, width)
	return Linear(scope.In("out_proj"), out, width)
}

// MLP is Sequential(c_fc, GELU or QuickGELU, c_proj).
func MLP(scope *model.Scope, x *Node, c Config) *Node {
	h := Linear(scope.In("c_fc"), x, c.MLPWidth())
	if c.QuickGELU {
		h = QuickGELU(h)
	} else {
		h = GELU(h)
	}
	return Linear(scope.In("c_proj"), h, c.Width)
}

// ResidualBlock is OpenCLIP's pre-norm ResidualAttentionBlock without
// LayerScale: x + attn(ln_1(x)), then + mlp(ln_2(x)).
func ResidualBlock(scope *model.Scope, x *Node, c Config, mask *Node) *Node {
	x = Add(x, Attention(scope.In("attn"), LayerNorm(scope.In("ln_1"), x), c.Heads, mask))
	return Add(x, MLP(scope.In("mlp"), LayerNorm(scope.In("ln_2"), x), c))
}

// Apply runs the whole stack: c.Layers residual blocks found under scope/resblocks/<i>.
func Apply(scope *model.Scope, x *Node, c Config, mask *Node) *Node {
	blocks := scope.In("resblocks")
	for i := 0; i < c.Layers; i++ {
		x = ResidualBlock(blocks.In("%d", i), x, c, mask)
	}
	return x
}

// CausalMask is the additive [L, L] mask OpenCLIP builds for the text tower:
// 0 on and below the diagonal, -inf above it.
func CausalMask(g *Graph, seq int) *Node {
	negInf := Scalar(g, x32, math.Inf(-1))
	zero := ScalarZero(g, x32)
	return Where(LowerTriangular(g, seq), BroadcastToDims(zero, seq, seq), BroadcastToDims(negInf, seq, seq))
}
