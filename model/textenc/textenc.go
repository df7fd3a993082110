// Package textenc is OpenCLIP's text tower (TextTransformer as CLIP embeds
// it): token embedding plus learned positional embedding, causal pre-norm
// residual blocks, ln_final, pooling at the position of the largest token id
// (end-of-text is the largest id, so this is the first EOT), and the
// text_projection matrix.
//
// CLIP copies the text modules onto itself, so these variables sit at the
// root of the state dict: token_embedding.weight [V,w], positional_embedding
// [ctx,w], transformer.resblocks.N.*, ln_final.*, text_projection [w,E].
//
//	features := textenc.Encode(scope, cfg, embedDim, quickGELU, transformer.Runtime{}, tokens) // tokens [B,ctx] int32 → [B,E]
package textenc

import (
	"fmt"
	"math"

	"github.com/bmca/bmca/model/transformer"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

// Config mirrors OpenCLIP's text_cfg (CLIPTextCfg) for the classic CLIP text tower.
type Config struct {
	// ContextLength is the number of token positions (77 for CLIP).
	ContextLength int `json:"context_length,omitempty" yaml:"context_length,omitempty"`
	// VocabSize is the embedding table size; the EOT id must be VocabSize-1's or below and the largest id used.
	VocabSize int `json:"vocab_size,omitempty" yaml:"vocab_size,omitempty"`
	// Width is the transformer width.
	Width int `json:"width,omitempty" yaml:"width,omitempty"`
	// Heads is the number of attention heads.
	Heads int `json:"heads,omitempty" yaml:"heads,omitempty"`
	// Layers is the number of residual attention blocks.
	Layers int `json:"layers,omitempty" yaml:"layers,omitempty"`
	// MLPRatio scales the MLP hidden size (OpenCLIP default 4.0).
	MLPRatio float64 `json:"mlp_ratio,omitempty" yaml:"mlp_ratio,omitempty"`
}

// WithDefaults fills OpenCLIP's defaults for omitted optional fields.
func (c Config) WithDefaults() Config {
	if c.MLPRatio == 0 {
		c.MLPRatio = 4
	}
	return c
}

// Validate reports a configuration that cannot build the tower.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.ContextLength < 2:
		return fmt.Errorf("context_length must be at least 2, got %d", c.ContextLength)
	case c.VocabSize < 3:
		return fmt.Errorf("vocab_size must be at least 3, got %d", c.VocabSize)
	}
	return c.Transformer(false).Validate()
}

// Transformer is the shape of the tower's residual stack.
func (c Config) Transformer(quickGELU bool) transformer.Config {
	c = c.WithDefaults()
	return transformer.Config{Width: c.Width, Heads: c.Heads, Layers: c.Layers, MLPRatio: c.MLPRatio, QuickGELU: quickGELU}
}

// Params lists the tower's state-dict entries with OpenCLIP's
// CLIP.init_parameters initialisation.
func Params(c Config, embedDim int) []transformer.ParamSpec {
	c = c.WithDefaults()
	tc := c.Transformer(false)
	out := []transformer.ParamSpec{
		{Name: "positional_embedding", Shape: []int{c.ContextLength, c.Width}, Init: transformer.InitNormal, Std: 0.01},
		{Name: "text_projection", Shape: []int{c.Width, embedDim}, Init: transformer.InitNormal, Std: math.Pow(float64(c.Width), -0.5)},
	}
	out = append(out, transformer.Params("transformer", tc, transformer.DefaultStd(tc))...)
	out = append(out, transformer.ParamSpec{Name: "token_embedding.weight", Shape: []int{c.VocabSize, c.Width}, Init: transformer.InitNormal, Std: 0.02})
	out = append(out, transformer.LayerNormParams("ln_final", c.Width)...)
	return out
}

// Encode maps token ids [B,ctx] (int32) to features [B,embedDim].
func Encode(scope *model.Scope, c Config, embedDim int, quickGELU bool, rt transformer.Runtime, tokens *Node) *Node {
	c = c.WithDefaults()
	g := tokens.Graph()
	seq := tokens.Shape().Dim(1)
	if seq != c.ContextLength {
		exceptions.Panicf("textenc: tokens have %d positions, context_length is %d", seq, c.ContextLength)
	}
	table := transformer.Param(scope.In("token_embedding"), g, "weight", c.VocabSize, c.Width)
	x := Gather(table, ExpandAxes(tokens, -1)) // [B, L, w]
	x = transformer.AddTrailing(x, transformer.Param(scope, g, "positional_embedding", c.ContextLength, c.Width))
	tc := c.Transformer(quickGELU)
	tc.Runtime = rt
	x = transformer.Apply(scope.In("transformer"), x, tc, true)
	x = transformer.LayerNorm(scope.In("ln_final"), x)
	// One-hot selection instead of a gather keeps the gradient a plain matmul;
	// multiplying by exact 0/1 leaves the selected row bit-identical.
	selector := OneHot(PoolIndex(tokens), seq, dtypes.Float32)
	pooled := Einsum("bl,blw->bw", selector, x)
	return transformer.MatMulRight(pooled, transformer.Param(scope, g, "text_projection", c.Width, embedDim), rt.Precision)
}

// PoolIndex is tokens.argmax(-1): the first position holding the largest id.
func PoolIndex(tokens *Node) *Node {
	return ArgMax(tokens, -1, dtypes.Int32)
}
