// Package hftext is OpenCLIP's HFTextEncoder (hf_model.py, open_clip
// 2.32.0) for the BERT family: token ids → BertModel (package bert) with
// the attention mask built from the padding id → pooler → projection head.
//
// OpenCLIP's CustomTextCLIP keeps the tower at "text": the encoder's
// variables are text.transformer.* (transformers' names), the head is
// text.proj.weight (linear) or text.proj.0.weight and text.proj.2.weight
// (mlp). Config is the hf_* part of OpenCLIP's text_cfg; Tower is the
// resolved shape the graph is built from.
//
//	tower, err := cfg.Tower(contextLength, embedDim)
//	features := hftext.Encode(scope.In("text"), tower, rt, ids) // ids [B, L] int32 → [B, embed_dim]
package hftext

import (
	"math"

	"github.com/bmca/bmca/model/bert"
	"github.com/bmca/bmca/model/transformer"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

// Encode is HFTextEncoder.forward: features [B, embed_dim] for token ids
// [B, context_length] (int32), not normalised.
func Encode(scope *model.Scope, t Tower, rt transformer.Runtime, ids *Node) *Node {
	if seq := ids.Shape().Dim(1); seq != t.ContextLength {
		exceptions.Panicf("hftext: tokens have %d positions, context_length is %d", seq, t.ContextLength)
	}
	mask := bert.PaddingMask(ids, t.Model.PadTokenID)
	transformerScope := scope.In("transformer")
	hidden := bert.Encode(transformerScope, t.Model, rt, ids, mask)
	pooled := Pool(transformerScope, t, rt.Precision, hidden, mask)
	return Project(scope.In("proj"), t, rt.Precision, pooled)
}

// Pool applies the tower's pooler to the last hidden state [B, L, H]:
// cls_pooler runs BertPooler (under scope/pooler), the cls last-hidden-state
// pooler takes position 0, mean_pooler averages the positions mask keeps.
func Pool(scope *model.Scope, t Tower, p transformer.Precision, hidden, mask *Node) *Node {
	switch t.Pooler {
	case ClsPooler:
		return bert.Pool(scope.In("pooler"), t.Model, p, hidden)
	case MeanPooler:
		kept := ReduceSum(Mul(hidden, ExpandAxes(mask, -1)), 1) // [B, H]
		return Div(kept, ReduceAndKeep(mask, ReduceSum, -1))    // sum over the mask [B, 1]
	default:
		return bert.First(hidden)
	}
}

// Project is OpenCLIP's head on pooled features [B, H]: nothing, a
// bias-free Linear, or Linear → GELU → Linear, both bias-free.
func Project(scope *model.Scope, t Tower, p transformer.Precision, pooled *Node) *Node {
	g, h := pooled.Graph(), t.Model.HiddenSize
	switch t.Proj {
	case ProjLinear:
		return transformer.Project(pooled, transformer.Param(scope, g, "weight", t.EmbedDim, h), p)
	case ProjMLP:
		x := transformer.Project(pooled, transformer.Param(scope.In("0"), g, "weight", t.MLPHidden(), h), p)
		return transformer.Project(transformer.GELU(x), transformer.Param(scope.In("2"), g, "weight", t.EmbedDim, t.MLPHidden()), p)
	}
	return pooled
}

// Params lists the tower's state-dict entries under prefix ("text"): the
// BertModel (with its pooler only for cls_pooler, as OpenCLIP builds it)
// and the head, initialised as transformers and torch.nn.Linear would
// (Linear's kaiming-uniform as the normal of equal variance).
func Params(prefix string, t Tower) []transformer.ParamSpec {
	out := bert.Params(prefix+".transformer", t.Model, t.Pooler == ClsPooler)
	h := t.Model.HiddenSize
	linear := func(name string, rows, cols int) transformer.ParamSpec {
		return transformer.ParamSpec{Name: prefix + "." + name, Shape: []int{rows, cols}, Init: transformer.InitNormal, Std: fanIn(cols)}
	}
	switch t.Proj {
	case ProjLinear:
		out = append(out, linear("proj.weight", t.EmbedDim, h))
	case ProjMLP:
		out = append(out, linear("proj.0.weight", t.MLPHidden(), h), linear("proj.2.weight", t.EmbedDim, t.MLPHidden()))
	}
	return out
}

// fanIn is the standard deviation of torch.nn.Linear's default
// initialisation, uniform(±1/√in), which is 1/√(3·in).
func fanIn(in int) float64 { return 1 / math.Sqrt(3*float64(in)) }
