// Package timmvit is a timm VisionTransformer (timm 1.0.31) wrapped as
// OpenCLIP's TimmModel (timm_model.py, open_clip 2.32.0) wraps it: the
// image tower of BiomedCLIP and other OpenCLIP configs with
// timm_model_name.
//
// Against OpenCLIP's own VisionTransformer (package vit) a timm ViT has a
// biased patch embedding, no ln_pre, a class token and position embedding
// stored with a leading batch axis, LayerNorm eps 1e-6 instead of 1e-5, a
// final norm (or, with an averaging pool, a norm after pooling), and
// OpenCLIP's head on top instead of a bare proj matrix. The blocks compute
// what OpenCLIP's do, under timm's names (norm1, attn.qkv, attn.proj,
// norm2, mlp.fc1, mlp.fc2).
//
// Variables live under the scope it is given (CLIP's "visual"), named as
// OpenCLIP's state dict: visual.trunk.cls_token [1,1,W],
// visual.trunk.pos_embed [1,1+G²,W], visual.trunk.patch_embed.proj.*,
// visual.trunk.blocks.N.*, visual.trunk.norm.* (or fc_norm.*), and the
// head (visual.head.proj.weight for BiomedCLIP).
//
//	tower, err := cfg.Tower(visionShape, embedDim)
//	features := timmvit.Encode(scope.In("visual"), tower, rt, pixels) // [B,3,S,S] → [B, embed_dim]
package timmvit

import (
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/vit"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

// Encode is TimmModel.forward: trunk, pooling, head. pixels [B,3,S,S]
// (already normalised) → features [B, embed_dim], not normalised.
func Encode(scope *model.Scope, t Tower, rt transformer.Runtime, pixels *Node) *Node {
	trunk := scope.In("trunk")
	x := Embed(trunk, t, rt.Precision, pixels)
	blocks := trunk.In("blocks")
	for i := range t.Depth {
		if rt.GradCheckpointing {
			x = x.Checkpoint() // the block input is kept, the rest recomputed
		}
		x = Block(blocks.In("%d", i), t, rt.Precision, x)
	}
	if rt.GradCheckpointing && t.Depth > 0 {
		x = x.StopCheckpoint()
	}
	return Head(scope.In("head"), t, rt.Precision, Pool(trunk, t, rt.Precision, x))
}

// Embed is timm's patch_embed then _pos_embed: the biased patch
// convolution, the class token prepended, the position embedding added.
// [B,3,S,S] → [B, 1+G², W].
func Embed(trunk *model.Scope, t Tower, p transformer.Precision, pixels *Node) *Node {
	dims := pixels.Shape().Dimensions
	if len(dims) != 4 || dims[1] != 3 || dims[2] != t.ImageSize || dims[3] != t.ImageSize {
		exceptions.Panicf("timmvit: pixels must be [B,3,%d,%d], got %v", t.ImageSize, t.ImageSize, dims)
	}
	g, w, ps := pixels.Graph(), t.Width, t.PatchSize
	conv := trunk.In("patch_embed").In("proj")
	kernel := Reshape(transformer.Param(conv, g, "weight", w, 3, ps, ps), w, 3*ps*ps)
	x := transformer.AddTrailing(transformer.Project(vit.Patches(pixels, ps), kernel, p), transformer.Param(conv, g, "bias", w))
	cls := BroadcastToDims(transformer.Param(trunk, g, "cls_token", 1, 1, w), dims[0], 1, w)
	x = Concatenate([]*Node{cls, x}, 1)
	return Add(x, BroadcastToDims(transformer.Param(trunk, g, "pos_embed", 1, t.Tokens(), w), dims[0], t.Tokens(), w))
}

// Block is timm's pre-norm Block: x + attn(norm1(x)), then + mlp(norm2(x)).
func Block(scope *model.Scope, t Tower, p transformer.Precision, x *Node) *Node {
	x = Add(x, Attention(scope.In("attn"), t, p, transformer.LayerNormEps(scope.In("norm1"), x, LayerNormEpsilon)))
	return Add(x, MLP(scope.In("mlp"), t, p, transformer.LayerNormEps(scope.In("norm2"), x, LayerNormEpsilon)))
}

// Attention is timm's Attention: one qkv Linear (with bias) laid out as
// torch's packed in_proj, non-causal multi-head attention, the proj Linear.
func Attention(scope *model.Scope, t Tower, p transformer.Precision, x *Node) *Node {
	qkv := transformer.Linear(scope.In("qkv"), x, 3*t.Width, p)
	return transformer.Linear(scope.In("proj"), transformer.PackedAttention(qkv, t.Heads, false, p), t.Width, p)
}

// MLP is timm's Mlp: fc1, exact GELU, fc2.
func MLP(scope *model.Scope, t Tower, p transformer.Precision, x *Node) *Node {
	h := transformer.GELU(transformer.Linear(scope.In("fc1"), x, t.MLPWidth(), p))
	return transformer.Linear(scope.In("fc2"), h, t.Width, p)
}

// Pool is the rest of the trunk after the blocks, [B, 1+G², W] → [B, D]:
// the final norm (on every token, or after pooling when FCNorm), the
// pooling, and for HeadTrunk the trunk's own classifier.
func Pool(trunk *model.Scope, t Tower, p transformer.Precision, x *Node) *Node {
	if !t.FCNorm {
		x = transformer.LayerNormEps(trunk.In("norm"), x, LayerNormEpsilon)
	}
	x = poolTokens(x, t.Pool)
	if t.FCNorm {
		x = transformer.LayerNormEps(trunk.In("fc_norm"), x, LayerNormEpsilon)
	}
	if t.Head == HeadTrunk {
		x = transformer.Linear(trunk.In("head"), x, t.EmbedDim, p)
	}
	return x
}

// poolTokens is timm's global_pool_nlc: the class token, or the average,
// maximum or their mean over the patch tokens (the class token excluded).
func poolTokens(x *Node, pool string) *Node {
	b, n, w := x.Shape().Dim(0), x.Shape().Dim(1), x.Shape().Dim(2)
	if pool == PoolToken {
		return Reshape(SliceAxis(x, 1, AxisElem(0)), b, w)
	}
	patches := SliceAxis(x, 1, AxisRange(1, n))
	switch pool {
	case PoolAvg:
		return ReduceMean(patches, 1)
	case PoolMax:
		return ReduceMax(patches, 1)
	default: // PoolAvgMax
		return MulScalar(Add(ReduceMax(patches, 1), ReduceMean(patches, 1)), 0.5)
	}
}

// Head is OpenCLIP's head module after the trunk (scope "head"): the
// linear projection, timm's Mlp, or nothing (HeadTrunk, HeadNone).
func Head(scope *model.Scope, t Tower, p transformer.Precision, pooled *Node) *Node {
	g, w, e := pooled.Graph(), t.Width, t.EmbedDim
	switch t.Head {
	case HeadLinear:
		proj := scope.In("proj")
		y := transformer.Project(pooled, transformer.Param(proj, g, "weight", e, w), p)
		if t.ProjBias {
			y = transformer.AddTrailing(y, transformer.Param(proj, g, "bias", e))
		}
		return y
	case HeadMLP:
		mlp := scope.In("mlp")
		h := transformer.GELU(transformer.Linear(mlp.In("fc1"), pooled, 2*e, p))
		fc2 := mlp.In("fc2")
		y := transformer.Project(h, transformer.Param(fc2, g, "weight", e, 2*e), p)
		if t.ProjBias {
			y = transformer.AddTrailing(y, transformer.Param(fc2, g, "bias", e))
		}
		return y
	}
	return pooled
}
