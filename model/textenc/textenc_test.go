package textenc_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/internal/reftest"
	"github.com/bmca/bmca/model/textenc"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/weights"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

const sot, eot = 49406, 49407

func TestPoolIndex(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tokens []int32
		want   int32
	}{
		{"first of two EOTs", []int32{sot, 5, eot, 0, eot}, 2},
		{"EOT right after SOT", []int32{sot, eot, 0, 0, 0}, 1},
		{"EOT last", []int32{sot, 7, 8, 9, eot}, 4},
		{"all padding", []int32{0, 0, 0, 0, 0}, 0},
		{"no EOT: largest id", []int32{3, 9, 1, 9, 2}, 1},
	} {
		out := graphtest.Run(t, nil, func(_ *model.Scope, tokens *Node) *Node {
			return textenc.PoolIndex(tokens)
		}, [][]int32{tc.tokens})
		got := tensors.MustCopyFlatData[int32](out[0])
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s: PoolIndex(%v) = %v, want [%d]", tc.name, tc.tokens, got, tc.want)
		}
	}
}

// reference is one OpenCLIP reference model with its recorded tensors.
type reference struct {
	embedDim  int
	quickGELU bool
	cfg       textenc.Config
	store     *model.Store
	cases     weights.StateDict
	inter     weights.StateDict
}

func loadReference(t *testing.T, name string) reference {
	t.Helper()
	ref := reftest.Load(t, name)
	var cfg struct {
		EmbedDim  int            `json:"embed_dim"`
		QuickGELU bool           `json:"quick_gelu"`
		TextCfg   textenc.Config `json:"text_cfg"`
	}
	if err := json.Unmarshal(ref.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	return reference{cfg.EmbedDim, cfg.QuickGELU, cfg.TextCfg.WithDefaults(), reftest.Store(t, ref.Weights, textenc.Params(cfg.TextCfg, cfg.EmbedDim)), ref.Cases, ref.Intermediates}
}

var floats = reftest.Floats

var int32s = reftest.Int32s

// TestOpenCLIPIntermediates runs the text tower of tiny-perturbed (whose
// LayerNorm affines and biases are not at their defaults) on the 5 reference
// captions and compares every recorded intermediate with OpenCLIP's, and
// PoolIndex with tokens.argmax(-1) on the captions and the edge texts.
func TestOpenCLIPIntermediates(t *testing.T) {
	ref := loadReference(t, "tiny-perturbed")
	c, w := ref.cfg, ref.cfg.Width
	tc := c.Transformer(ref.quickGELU)
	if tc.Layers != 2 || ref.quickGELU {
		t.Fatalf("this test expects 2 GELU blocks, the reference has %d (quick_gelu %v)", tc.Layers, ref.quickGELU)
	}
	n, seq := ref.cases["tokens"].Shape[0], ref.cases["tokens"].Shape[1]
	tokens := tensors.FromFlatDataAndDimensions(int32s(t, ref.cases, "tokens"), n, seq)

	names := []string{
		"text.transformer.in",
		"text.transformer.resblocks.0.ln_1.out", "text.transformer.resblocks.0.attn.out",
		"text.transformer.resblocks.0.mlp.gelu.out",
		"text.transformer.resblocks.0.out", "text.transformer.resblocks.1.out",
		"text.ln_final.out", "text.out",
	}
	out := graphtest.Run(t, ref.store, func(scope *model.Scope, tokens *Node) []*Node {
		g := tokens.Graph()
		table := transformer.Param(scope.In("token_embedding"), g, "weight", c.VocabSize, w)
		x := Add(Gather(table, InsertAxes(tokens, -1)),
			InsertAxes(transformer.Param(scope, g, "positional_embedding", c.ContextLength, w), 0))

		// Inside block 0, by hand from the exported pieces.
		b0 := scope.At("transformer").At("resblocks").At("0")
		ln1 := transformer.LayerNorm(b0.In("ln_1"), x)
		attn := transformer.Attention(b0.In("attn"), ln1, tc, true)
		ln2 := transformer.LayerNorm(b0.In("ln_2"), Add(x, attn))
		act := transformer.GELU(transformer.Linear(b0.In("mlp").In("c_fc"), ln2, tc.MLPWidth(), transformer.Float32))

		blocks := scope.In("transformer").In("resblocks")
		res0 := transformer.ResidualBlock(blocks.In("0"), x, tc, true)
		res1 := transformer.ResidualBlock(blocks.In("1"), res0, tc, true)
		lnFinal := transformer.LayerNorm(scope.In("ln_final"), res1)
		// The whole tower, as CLIP calls it.
		features := textenc.Encode(scope.ResetVisited(), c, ref.embedDim, ref.quickGELU, transformer.Runtime{}, tokens)
		return []*Node{x, ln1, attn, act, res0, res1, lnFinal, features, textenc.PoolIndex(tokens)}
	}, tokens)

	for i, name := range names {
		if got, want := out[i].Shape().Dimensions, ref.inter[name].Shape; !slices.Equal(got, want) {
			t.Errorf("%s: shape %v, OpenCLIP %v", name, got, want)
			continue
		}
		graphtest.CheckClose(t, name, graphtest.Float32s(t, out[i]), floats(t, ref.inter, name), 1e-4)
	}

	// text.pooled is ln_final.out at tokens.argmax(-1).
	index := tensors.MustCopyFlatData[int32](out[len(names)])
	checkIndex(t, "tokens", index, int32s(t, ref.cases, "text_pool_index"))
	lnFinal := graphtest.Float32s(t, out[len(names)-2])
	pooled := make([]float32, 0, n*w)
	for b, l := range index {
		pooled = append(pooled, lnFinal[(b*seq+int(l))*w:(b*seq+int(l)+1)*w]...)
	}
	graphtest.CheckClose(t, "text.pooled", pooled, floats(t, ref.inter, "text.pooled"), 1e-4)

	edge := graphtest.Run(t, nil, func(_ *model.Scope, tokens *Node) *Node { return textenc.PoolIndex(tokens) },
		tensors.FromFlatDataAndDimensions(int32s(t, ref.cases, "tokens_edge"), ref.cases["tokens_edge"].Shape...))
	checkIndex(t, "tokens_edge", tensors.MustCopyFlatData[int32](edge[0]), int32s(t, ref.cases, "text_pool_index_edge"))
}

func checkIndex(t *testing.T, what string, got, want []int32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d pool indices, OpenCLIP has %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s row %d: pool index %d, OpenCLIP %d", what, i, got[i], want[i])
		}
	}
}
