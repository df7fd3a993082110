package vit_test

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/internal/reftest"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/vit"
	"github.com/bmca/bmca/model/weights"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

func uniform(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	v := make([]float32, n)
	for i := range v {
		v[i] = 2*r.Float32() - 1
	}
	return v
}

// TestPatchEmbed compares PatchEmbed with a stride-P convolution (no bias,
// no padding) written as plain loops, output in OpenCLIP's
// flatten(2).transpose(1,2) order: [B, gy*G+gx, W].
func TestPatchEmbed(t *testing.T) {
	const batch, size, patch, width = 2, 8, 4, 5
	const grid = size / patch
	c := vit.Config{ImageSize: size, PatchSize: patch, Width: width, Layers: 0, HeadWidth: width}
	pixels := uniform(1, batch*3*size*size)
	kernel := uniform(2, width*3*patch*patch)
	store := graphtest.Store(t, map[string]*tensors.Tensor{
		"/conv1/weight": tensors.FromFlatDataAndDimensions(kernel, width, 3, patch, patch),
	})
	out := graphtest.Run(t, store, func(scope *model.Scope, x *Node) *Node {
		return vit.PatchEmbed(scope, c, transformer.Float32, x)
	}, tensors.FromFlatDataAndDimensions(pixels, batch, 3, size, size))
	if got := out[0].Shape().Dimensions; !slices.Equal(got, []int{batch, grid * grid, width}) {
		t.Fatalf("shape %v, want [%d %d %d]", got, batch, grid*grid, width)
	}
	want := make([]float64, batch*grid*grid*width)
	for b := range batch {
		for gy := range grid {
			for gx := range grid {
				for w := range width {
					s := 0.0
					for ch := range 3 {
						for i := range patch {
							for j := range patch {
								pix := pixels[((b*3+ch)*size+gy*patch+i)*size+gx*patch+j]
								s += float64(pix) * float64(kernel[((w*3+ch)*patch+i)*patch+j])
							}
						}
					}
					want[(b*grid*grid+gy*grid+gx)*width+w] = s
				}
			}
		}
	}
	graphtest.CheckClose(t, "PatchEmbed", graphtest.Float32s(t, out[0]), want, 1e-5)

	_, err := graphtest.Try(t, store, func(scope *model.Scope, x *Node) *Node {
		return vit.PatchEmbed(scope, c, transformer.Float32, x)
	}, tensors.FromFlatDataAndDimensions(make([]float32, 3*size*(size+1)), 1, 3, size, size+1))
	if err == nil || !strings.Contains(err.Error(), "pixels must be [B,3,8,8]") {
		t.Errorf("non-square pixels: error %v, want one naming the expected shape", err)
	}
}

// reference is one OpenCLIP reference model with its recorded tensors.
type reference struct {
	embedDim  int
	quickGELU bool
	cfg       vit.Config
	store     *model.Store
	cases     weights.StateDict
	inter     weights.StateDict
}

func loadReference(t *testing.T, name string) reference {
	t.Helper()
	ref := reftest.Load(t, name)
	var cfg struct {
		EmbedDim  int        `json:"embed_dim"`
		QuickGELU bool       `json:"quick_gelu"`
		VisionCfg vit.Config `json:"vision_cfg"`
	}
	if err := json.Unmarshal(ref.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	return reference{cfg.EmbedDim, cfg.QuickGELU, cfg.VisionCfg.WithDefaults(), reftest.Store(t, ref.Weights, vit.Params("visual", cfg.VisionCfg, cfg.EmbedDim)), ref.Cases, ref.Intermediates}
}

var floats = reftest.Floats

// TestOpenCLIPIntermediates runs the vision tower of tiny-perturbed (whose
// LayerNorm affines and biases are not at their defaults) on pixels[0:K] and
// compares every recorded intermediate with OpenCLIP's.
func TestOpenCLIPIntermediates(t *testing.T) {
	ref := loadReference(t, "tiny-perturbed")
	c, w := ref.cfg, ref.cfg.Width
	tc := c.Transformer(ref.quickGELU)
	grid := c.Grid()
	k := ref.inter["visual.out"].Shape[0]
	pixels := floats(t, ref.cases, "pixels")[:k*3*c.ImageSize*c.ImageSize]

	names := []string{
		"visual.conv1.out", "visual.ln_pre.in", "visual.ln_pre.out",
		"visual.transformer.resblocks.0.ln_1.out", "visual.transformer.resblocks.0.attn.out",
		"visual.transformer.resblocks.0.ln_2.out", "visual.transformer.resblocks.0.mlp.c_fc.out",
		"visual.transformer.resblocks.0.mlp.gelu.out", "visual.transformer.resblocks.0.mlp.c_proj.out",
		"visual.transformer.resblocks.0.out", "visual.transformer.resblocks.1.out",
		"visual.ln_post.out", "visual.out",
	}
	out := graphtest.Run(t, ref.store, func(scope *model.Scope, pixels *Node) []*Node {
		g := pixels.Graph()
		s := scope.In("visual")
		conv := vit.PatchEmbed(s, c, transformer.Float32, pixels)
		cls := BroadcastToDims(Reshape(transformer.Param(s, g, "class_embedding", w), 1, 1, w), k, 1, w)
		lnPreIn := Add(Concatenate([]*Node{cls, conv}, 1),
			InsertAxes(transformer.Param(s, g, "positional_embedding", grid*grid+1, w), 0))
		lnPreOut := transformer.LayerNorm(s.In("ln_pre"), lnPreIn)

		// Inside block 0, by hand from the exported pieces.
		b0 := s.At("transformer").At("resblocks").At("0")
		ln1 := transformer.LayerNorm(b0.In("ln_1"), lnPreOut)
		attn := transformer.Attention(b0.In("attn"), ln1, tc, false)
		ln2 := transformer.LayerNorm(b0.In("ln_2"), Add(lnPreOut, attn))
		mlp := b0.In("mlp")
		fc := transformer.Linear(mlp.In("c_fc"), ln2, tc.MLPWidth(), transformer.Float32)
		act := transformer.GELU(fc)
		proj := transformer.Linear(mlp.In("c_proj"), act, w, transformer.Float32)

		blocks := s.In("transformer").In("resblocks")
		res0 := transformer.ResidualBlock(blocks.In("0"), lnPreOut, tc, false)
		res1 := transformer.ResidualBlock(blocks.In("1"), res0, tc, false)
		lnPost := transformer.LayerNorm(s.In("ln_post"), res1)
		// The whole tower, as CLIP calls it.
		features := vit.Encode(scope.ResetVisited().In("visual"), c, ref.embedDim, ref.quickGELU, transformer.Runtime{}, pixels)
		return []*Node{conv, lnPreIn, lnPreOut, ln1, attn, ln2, fc, act, proj, res0, res1, lnPost, features}
	}, tensors.FromFlatDataAndDimensions(pixels, k, 3, c.ImageSize, c.ImageSize))

	if tc.Layers != 2 || ref.quickGELU {
		t.Fatalf("this test expects 2 GELU blocks, the reference has %d (quick_gelu %v)", tc.Layers, ref.quickGELU)
	}
	for i, name := range names {
		want := floats(t, ref.inter, name)
		if name == "visual.conv1.out" { // OpenCLIP [K, W, G, G] → ours [K, G², W]
			want = transposeLast(want, k, w, grid*grid)
		}
		if got, wantDims := out[i].Shape().Dimensions, ref.inter[name].Shape; name != "visual.conv1.out" && !slices.Equal(got, wantDims) {
			t.Errorf("%s: shape %v, OpenCLIP %v", name, got, wantDims)
			continue
		}
		graphtest.CheckClose(t, name, graphtest.Float32s(t, out[i]), want, 1e-4)
	}
}

// transposeLast turns [n, a, b] into [n, b, a].
func transposeLast(v []float32, n, a, b int) []float32 {
	out := make([]float32, len(v))
	for i := range n {
		for x := range a {
			for y := range b {
				out[(i*b+y)*a+x] = v[(i*a+x)*b+y]
			}
		}
	}
	return out
}
