// Package bert is Hugging Face's BertModel as OpenCLIP's HF text tower runs
// it: word + position + token-type embeddings and a LayerNorm, post-norm
// encoder layers (self-attention over the non-padding positions, then a
// GELU feed-forward block, each followed by residual add and LayerNorm with
// BERT's eps), and the optional BertPooler (tanh of a dense layer on the
// first token).
//
// Its variables live under the scope it is given (OpenCLIP's
// HFTextEncoder keeps the model at text.transformer), named as
// transformers' state dict: embeddings.word_embeddings.weight,
// encoder.layer.N.attention.self.query.weight, …, pooler.dense.weight.
// The configuration is the model's config.json (Config).
//
//	mask := bert.PaddingMask(ids, cfg.PadTokenID)                 // OpenCLIP: ids != pad_token_id
//	hidden := bert.Encode(scope.In("transformer"), cfg, rt, ids, mask) // [B, L, hidden_size]
package bert

import (
	"math"

	"github.com/bmca/bmca/model/transformer"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

// PaddingMask is OpenCLIP's attention mask for token ids [B, L]: 1 where the
// id is not padId, 0 where it is, as float32. Token type ids are all zero
// (OpenCLIP passes none, so BertModel takes its zero buffer).
func PaddingMask(ids *Node, padID int) *Node {
	return ConvertDType(NotEqual(ids, Scalar(ids.Graph(), ids.DType(), padID)), dtypes.Float32)
}

// Encode is BertModel's last_hidden_state for token ids [B, L] (int32) and
// attention mask [B, L] (1 = attend, 0 = padding): [B, L, hidden_size].
func Encode(scope *model.Scope, c Config, rt transformer.Runtime, ids, mask *Node) *Node {
	x := Embeddings(scope.In("embeddings"), c, ids)
	bias := KeyBias(mask)
	layers := scope.In("encoder").In("layer")
	for i := range c.NumHiddenLayers {
		if rt.GradCheckpointing {
			x = x.Checkpoint() // the layer input is kept, the rest recomputed
		}
		x = Layer(layers.In("%d", i), c, rt.Precision, x, bias)
	}
	if rt.GradCheckpointing && c.NumHiddenLayers > 0 {
		x = x.StopCheckpoint()
	}
	return x
}

// Embeddings is BertEmbeddings: word embedding + position embedding of
// positions 0…L-1 + the embedding of token type 0, then LayerNorm.
func Embeddings(scope *model.Scope, c Config, ids *Node) *Node {
	g := ids.Graph()
	seq, h := ids.Shape().Dim(1), c.HiddenSize
	if seq > c.MaxPositionEmbeddings {
		exceptions.Panicf("bert: %d token positions, but the model has max_position_embeddings %d", seq, c.MaxPositionEmbeddings)
	}
	words := Gather(transformer.Param(scope.In("word_embeddings"), g, "weight", c.VocabSize, h), ExpandAxes(ids, -1)) // [B, L, H]
	positions := SliceAxis(transformer.Param(scope.In("position_embeddings"), g, "weight", c.MaxPositionEmbeddings, h), 0, AxisRange(0, seq))
	tokenType := Reshape(SliceAxis(transformer.Param(scope.In("token_type_embeddings"), g, "weight", c.TypeVocabSize, h), 0, AxisElem(0)), h)
	x := transformer.AddTrailing(transformer.AddTrailing(words, tokenType), positions)
	return transformer.LayerNormEps(scope.In("LayerNorm"), x, c.LayerNormEps)
}

// Layer is one post-norm BertLayer over x [B, L, H]: x = LN(x + attention(x)),
// then LN(x + W₂·GELU(W₁·x)). keyBias is KeyBias of the attention mask.
func Layer(scope *model.Scope, c Config, p transformer.Precision, x, keyBias *Node) *Node {
	h := c.HiddenSize
	attention := scope.In("attention")
	a := SelfAttention(attention.In("self"), c, p, x, keyBias)
	out := attention.In("output")
	x = transformer.LayerNormEps(out.In("LayerNorm"), Add(x, transformer.Linear(out.In("dense"), a, h, p)), c.LayerNormEps)
	inner := transformer.GELU(transformer.Linear(scope.In("intermediate").In("dense"), x, c.IntermediateSize, p))
	out = scope.In("output")
	return transformer.LayerNormEps(out.In("LayerNorm"), Add(x, transformer.Linear(out.In("dense"), inner, h, p)), c.LayerNormEps)
}

// SelfAttention is BertSelfAttention: separate query, key and value
// projections, softmax(q·kᵀ/√d + keyBias)·v per head, heads concatenated
// [B, L, H] (the output projection belongs to the caller's BertSelfOutput).
func SelfAttention(scope *model.Scope, c Config, p transformer.Precision, x, keyBias *Node) *Node {
	h := c.HiddenSize
	q := splitHeads(transformer.Linear(scope.In("query"), x, h, p), c.NumAttentionHeads)
	k := splitHeads(transformer.Linear(scope.In("key"), x, h, p), c.NumAttentionHeads)
	v := splitHeads(transformer.Linear(scope.In("value"), x, h, p), c.NumAttentionHeads)
	product := p.ProductDType()
	scale := 1 / math.Sqrt(float64(c.HeadDim()))
	scores := transformer.Product(ConvertDType(MulScalar(q, scale), product), ConvertDType(k, product)).
		General([]int{3}, []int{0, 1}, []int{3}, []int{0, 1}) // [B, heads, Lq, Lk]
	weights := Softmax(Add(ConvertDType(scores, dtypes.Float32), keyBias), -1)
	out := transformer.Product(ConvertDType(weights, product), ConvertDType(v, product)).
		General([]int{3}, []int{0, 1}, []int{2}, []int{0, 1}) // [B, heads, Lq, D]
	out = TransposeAllDims(ConvertDType(out, dtypes.Float32), 0, 2, 1, 3)
	return Reshape(out, x.Shape().Dim(0), x.Shape().Dim(1), h)
}

// splitHeads reshapes [B, L, H] into [B, heads, L, H/heads].
func splitHeads(x *Node, heads int) *Node {
	b, l, h := x.Shape().Dim(0), x.Shape().Dim(1), x.Shape().Dim(2)
	return TransposeAllDims(Reshape(x, b, l, heads, h/heads), 0, 2, 1, 3)
}

// KeyBias turns an attention mask [B, L] into the additive bias
// transformers applies to the scores, [B, 1, 1, L]: 0 where the key is
// attended, the most negative float32 where it is padding. Unlike -inf,
// it leaves a row of only padding a uniform average instead of NaN.
func KeyBias(mask *Node) *Node {
	b, l := mask.Shape().Dim(0), mask.Shape().Dim(1)
	bias := MulScalar(OneMinus(mask), -math.MaxFloat32)
	return Reshape(bias, b, 1, 1, l)
}

// Pool is BertPooler: tanh(dense(hidden[:, 0])), [B, H].
func Pool(scope *model.Scope, c Config, p transformer.Precision, hidden *Node) *Node {
	return Tanh(transformer.Linear(scope.In("dense"), First(hidden), c.HiddenSize, p))
}

// First is hidden[:, 0], the [CLS] position: [B, L, H] → [B, H].
func First(hidden *Node) *Node {
	b, h := hidden.Shape().Dim(0), hidden.Shape().Dim(2)
	return Reshape(SliceAxis(hidden, 1, AxisElem(0)), b, h)
}
