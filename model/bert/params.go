package bert

import (
	"fmt"

	"github.com/bmca/bmca/model/transformer"
)

// InitStd is BertConfig's initializer_range: every matrix and embedding
// table is drawn from N(0, 0.02²), biases are zero and LayerNorm gains one.
const InitStd = 0.02

// Params lists the state-dict entries of a BertModel under prefix (OpenCLIP
// puts it at "text.transformer"), with transformers' names, shapes and
// initialisation, in registration order. withPooler adds BertPooler's
// dense layer, which OpenCLIP builds only for the cls_pooler.
func Params(prefix string, c Config, withPooler bool) []transformer.ParamSpec {
	h, inter := c.HiddenSize, c.IntermediateSize
	matrix := func(name string, rows, cols int) transformer.ParamSpec {
		return transformer.ParamSpec{Name: prefix + "." + name, Shape: []int{rows, cols}, Init: transformer.InitNormal, Std: InitStd}
	}
	bias := func(name string, n int) transformer.ParamSpec {
		return transformer.ParamSpec{Name: prefix + "." + name, Shape: []int{n}, Init: transformer.InitZeros}
	}
	linear := func(name string, out, in int) []transformer.ParamSpec {
		return []transformer.ParamSpec{matrix(name+".weight", out, in), bias(name+".bias", out)}
	}
	out := []transformer.ParamSpec{
		matrix("embeddings.word_embeddings.weight", c.VocabSize, h),
		matrix("embeddings.position_embeddings.weight", c.MaxPositionEmbeddings, h),
		matrix("embeddings.token_type_embeddings.weight", c.TypeVocabSize, h),
	}
	out = append(out, transformer.LayerNormParams(prefix+".embeddings.LayerNorm", h)...)
	for i := range c.NumHiddenLayers {
		l := fmt.Sprintf("encoder.layer.%d.", i)
		out = append(out, linear(l+"attention.self.query", h, h)...)
		out = append(out, linear(l+"attention.self.key", h, h)...)
		out = append(out, linear(l+"attention.self.value", h, h)...)
		out = append(out, linear(l+"attention.output.dense", h, h)...)
		out = append(out, transformer.LayerNormParams(prefix+"."+l+"attention.output.LayerNorm", h)...)
		out = append(out, linear(l+"intermediate.dense", inter, h)...)
		out = append(out, linear(l+"output.dense", h, inter)...)
		out = append(out, transformer.LayerNormParams(prefix+"."+l+"output.LayerNorm", h)...)
	}
	if withPooler {
		out = append(out, linear("pooler.dense", h, h)...)
	}
	return out
}
