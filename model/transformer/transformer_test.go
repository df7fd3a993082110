package transformer_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/transformer"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// uniform returns n deterministic values in [-scale, scale).
func uniform(seed uint64, n int, scale float32) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	v := make([]float32, n)
	for i := range v {
		v[i] = scale * (2*r.Float32() - 1)
	}
	return v
}

func t32(v []float32, dims ...int) *tensors.Tensor {
	return tensors.FromFlatDataAndDimensions(v, dims...)
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// The *Ref functions are plain float64 Go versions of the graph code, on
// row-major data whose last axis is the feature axis.

func layerNormRef(x []float64, width int, weight, bias []float32) []float64 {
	out := make([]float64, len(x))
	for r := 0; r < len(x)/width; r++ {
		row := x[r*width : (r+1)*width]
		mean, variance := 0.0, 0.0
		for _, v := range row {
			mean += v
		}
		mean /= float64(width)
		for _, v := range row {
			variance += (v - mean) * (v - mean)
		}
		variance /= float64(width) // biased, as torch
		for i, v := range row {
			out[r*width+i] = (v-mean)/math.Sqrt(variance+1e-5)*float64(weight[i]) + float64(bias[i])
		}
	}
	return out
}

// linearRef is x @ weightᵀ + bias with weight [out, in].
func linearRef(x []float64, in int, weight, bias []float32) []float64 {
	outDim := len(weight) / in
	rows := len(x) / in
	y := make([]float64, rows*outDim)
	for r := 0; r < rows; r++ {
		for o := 0; o < outDim; o++ {
			s := float64(bias[o])
			for i := 0; i < in; i++ {
				s += x[r*in+i] * float64(weight[o*in+i])
			}
			y[r*outDim+o] = s
		}
	}
	return y
}

func geluRef(x float64) float64      { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }
func quickGELURef(x float64) float64 { return x / (1 + math.Exp(-1.702*x)) }

// attentionParams are torch.nn.MultiheadAttention's packed weights.
type attentionParams struct {
	inW, inB, outW, outB []float32
}

func newAttentionParams(seed uint64, width int) attentionParams {
	return attentionParams{
		inW:  uniform(seed, 3*width*width, 1),
		inB:  uniform(seed+1, 3*width, 0.5),
		outW: uniform(seed+2, width*width, 0.7),
		outB: uniform(seed+3, width, 0.5),
	}
}

func (p attentionParams) vars(scope string) map[string]*tensors.Tensor {
	w := len(p.outB)
	return map[string]*tensors.Tensor{
		scope + "/in_proj_weight":  t32(p.inW, 3*w, w),
		scope + "/in_proj_bias":    t32(p.inB, 3*w),
		scope + "/out_proj/weight": t32(p.outW, w, w),
		scope + "/out_proj/bias":   t32(p.outB, w),
	}
}

// attentionRef is softmax(q kᵀ/√d + mask) v per head, heads concatenated,
// then out_proj; q, k, v are the three row blocks of in_proj.
func attentionRef(x []float64, batch, seq, width, heads int, p attentionParams, causal bool) []float64 {
	d := width / heads
	qkv := linearRef(x, width, p.inW, p.inB) // [B, L, 3W]
	at := func(b, l, part, h, c int) float64 { return qkv[(b*seq+l)*3*width+part*width+h*d+c] }
	concat := make([]float64, batch*seq*width)
	for b := 0; b < batch; b++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < seq; i++ {
				scores := make([]float64, seq)
				maxScore := math.Inf(-1)
				for j := 0; j < seq; j++ {
					if causal && j > i {
						scores[j] = math.Inf(-1)
						continue
					}
					for c := 0; c < d; c++ {
						scores[j] += at(b, i, 0, h, c) * at(b, j, 1, h, c)
					}
					scores[j] /= math.Sqrt(float64(d))
					maxScore = max(maxScore, scores[j])
				}
				sum := 0.0
				for j := range scores {
					scores[j] = math.Exp(scores[j] - maxScore)
					sum += scores[j]
				}
				for c := 0; c < d; c++ {
					v := 0.0
					for j := range scores {
						v += scores[j] / sum * at(b, j, 2, h, c)
					}
					concat[(b*seq+i)*width+h*d+c] = v
				}
			}
		}
	}
	return linearRef(concat, width, p.outW, p.outB)
}

func TestLayerNorm(t *testing.T) {
	const width = 4
	x := []float32{
		// batch 0
		1, 2, 3, 4,
		-1.5, 0.25, 2, 7,
		5, 5, 5, 5, // constant row: output is exactly the bias
		// batch 1
		0.001, -0.002, 0.003, 0, // variance 3.25e-6, comparable to eps: a wrong eps or an unbiased variance shows
		100, 101, 103, 96, // large offset
		-3, 0, 0, 3,
	}
	weight := []float32{0.5, -1, 2, 1.5}
	bias := []float32{0.1, 0.2, -0.3, 1}
	store := graphtest.Store(t, map[string]*tensors.Tensor{
		"/ln/weight": t32(weight, width),
		"/ln/bias":   t32(bias, width),
	})
	out := graphtest.Run(t, store, func(scope *model.Scope, x *Node) *Node {
		return transformer.LayerNorm(scope.In("ln"), x)
	}, t32(x, 2, 3, width))
	if got := out[0].Shape().Dimensions; !slices.Equal(got, []int{2, 3, width}) {
		t.Fatalf("shape %v, want [2 3 4]", got)
	}
	got := graphtest.Float32s(t, out[0])
	graphtest.CheckClose(t, "LayerNorm", got, layerNormRef(f64(x), width, weight, bias), 1e-5)
	for i := range width {
		if got[2*width+i] != bias[i] {
			t.Errorf("constant row, element %d: %v, want the bias %v", i, got[2*width+i], bias[i])
		}
	}
}

func TestActivations(t *testing.T) {
	x := []float32{-8, -4, -3, -2, -1, -0.5, -0.1, 0, 0.1, 0.5, 1, 1.5, 2, 3, 4, 8}
	for _, tc := range []struct {
		name string
		fn   func(*Node) *Node
		ref  func(float64) float64
	}{
		{"GELU", transformer.GELU, geluRef},
		{"QuickGELU", transformer.QuickGELU, quickGELURef},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := graphtest.Run(t, nil, func(_ *model.Scope, x *Node) *Node { return tc.fn(x) }, x)
			want := make([]float64, len(x))
			for i, v := range x {
				want[i] = tc.ref(float64(v))
			}
			// The two differ by up to 0.02 (at |x|≈2), and the tanh
			// approximation of GELU by up to 5e-4, so 1e-5 tells them apart.
			graphtest.CheckClose(t, tc.name, graphtest.Float32s(t, out[0]), want, 1e-5)
		})
	}
}

func TestCausalMask(t *testing.T) {
	inf := float32(math.Inf(-1))
	for _, tc := range []struct {
		seq  int
		want []float32
	}{
		{1, []float32{0}},
		{4, []float32{
			0, inf, inf, inf,
			0, 0, inf, inf,
			0, 0, 0, inf,
			0, 0, 0, 0,
		}},
	} {
		out := graphtest.Run(t, nil, func(_ *model.Scope, g *Graph) *Node { return transformer.CausalMask(g, tc.seq) })
		if got := out[0].Shape().Dimensions; !slices.Equal(got, []int{tc.seq, tc.seq}) {
			t.Fatalf("L=%d: shape %v", tc.seq, got)
		}
		got := graphtest.Float32s(t, out[0])
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("L=%d: mask[%d][%d] = %v, want %v", tc.seq, i/tc.seq, i%tc.seq, got[i], tc.want[i])
			}
		}
	}
}

func TestLinearAndMatMulRight(t *testing.T) {
	x := []float32{1, 2, 3, 4, 5, 6} // [1, 2, 3]: a leading axis to flatten
	store := graphtest.Store(t, map[string]*tensors.Tensor{
		"/fc/weight": t32([]float32{1, 0, -1, 0.5, 1, 2}, 2, 3), // [out, in]
		"/fc/bias":   t32([]float32{10, -1}, 2),
	})
	m := t32([]float32{1, 0.5, 0, 1, 2, -1}, 3, 2) // [in, out]
	out := graphtest.Run(t, store, func(scope *model.Scope, x, m *Node) (*Node, *Node) {
		return transformer.Linear(scope.In("fc"), x, 2, transformer.Float32), transformer.MatMulRight(x, m, transformer.Float32)
	}, t32(x, 1, 2, 3), m)
	for i, tc := range []struct {
		name string
		want []float32
	}{
		// [1,2,3]·[1,0,-1]+10 = 8, [1,2,3]·[0.5,1,2]-1 = 7.5; [4,5,6] → 8, 18
		{"Linear", []float32{8, 7.5, 8, 18}},
		// [1,2,3]·[1,0,2] = 7, [1,2,3]·[0.5,1,-1] = -0.5; [4,5,6] → 16, 1
		{"MatMulRight", []float32{7, -0.5, 16, 1}},
	} {
		if got := out[i].Shape().Dimensions; !slices.Equal(got, []int{1, 2, 2}) {
			t.Errorf("%s: shape %v, want [1 2 2]", tc.name, got)
		}
		graphtest.CheckClose(t, tc.name, graphtest.Float32s(t, out[i]), tc.want, 1e-6)
	}
}

func TestAttention(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		batch, seq, width, heads int
		causal                   bool
	}{
		{"1 head", 2, 3, 2, 1, false},
		{"1 head causal", 2, 3, 2, 1, true},
		{"2 heads", 2, 3, 4, 2, false},
		{"2 heads causal", 1, 4, 4, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newAttentionParams(7, tc.width)
			x := uniform(3, tc.batch*tc.seq*tc.width, 1.5)
			out := graphtest.Run(t, graphtest.Store(t, p.vars("/attn")), func(scope *model.Scope, x *Node) *Node {
				return transformer.Attention(scope.In("attn"), x, transformer.Config{Width: tc.width, Heads: tc.heads}, tc.causal)
			}, t32(x, tc.batch, tc.seq, tc.width))
			want := attentionRef(f64(x), tc.batch, tc.seq, tc.width, tc.heads, p, tc.causal)
			graphtest.CheckClose(t, "Attention", graphtest.Float32s(t, out[0]), want, 1e-5)
		})
	}
}

func TestMLPAndResidualBlock(t *testing.T) {
	const batch, seq, width, heads = 2, 3, 4, 2
	for _, quick := range []bool{false, true} {
		c := transformer.Config{Width: width, Heads: heads, Layers: 1, MLPRatio: 2, QuickGELU: quick}
		hidden := c.MLPWidth()
		p := newAttentionParams(11, width)
		ln1w, ln1b := uniform(20, width, 1), uniform(21, width, 0.5)
		ln2w, ln2b := uniform(22, width, 1), uniform(23, width, 0.5)
		fcW, fcB := uniform(24, hidden*width, 1), uniform(25, hidden, 0.5)
		projW, projB := uniform(26, width*hidden, 1), uniform(27, width, 0.5)
		vars := p.vars("/blk/attn")
		for path, v := range map[string]*tensors.Tensor{
			"/blk/ln_1/weight":       t32(ln1w, width),
			"/blk/ln_1/bias":         t32(ln1b, width),
			"/blk/ln_2/weight":       t32(ln2w, width),
			"/blk/ln_2/bias":         t32(ln2b, width),
			"/blk/mlp/c_fc/weight":   t32(fcW, hidden, width),
			"/blk/mlp/c_fc/bias":     t32(fcB, hidden),
			"/blk/mlp/c_proj/weight": t32(projW, width, hidden),
			"/blk/mlp/c_proj/bias":   t32(projB, width),
		} {
			vars[path] = v
		}
		x := uniform(5, batch*seq*width, 2)
		out := graphtest.Run(t, graphtest.Store(t, vars), func(scope *model.Scope, x *Node) (*Node, *Node) {
			mlp := transformer.MLP(scope.At("blk").In("mlp"), x, c)
			block := transformer.ResidualBlock(scope.In("blk"), x, c, true)
			return mlp, block
		}, t32(x, batch, seq, width))

		act := geluRef
		if quick {
			act = quickGELURef
		}
		mlpRef := func(x []float64) []float64 {
			h := linearRef(x, width, fcW, fcB)
			for i := range h {
				h[i] = act(h[i])
			}
			return linearRef(h, hidden, projW, projB)
		}
		add := func(a, b []float64) []float64 {
			out := make([]float64, len(a))
			for i := range a {
				out[i] = a[i] + b[i]
			}
			return out
		}
		x64 := f64(x)
		h := add(x64, attentionRef(layerNormRef(x64, width, ln1w, ln1b), batch, seq, width, heads, p, true))
		block := add(h, mlpRef(layerNormRef(h, width, ln2w, ln2b)))
		name := map[bool]string{false: "GELU", true: "QuickGELU"}[quick]
		graphtest.CheckClose(t, "MLP "+name, graphtest.Float32s(t, out[0]), mlpRef(x64), 1e-5)
		graphtest.CheckClose(t, "ResidualBlock "+name, graphtest.Float32s(t, out[1]), block, 1e-5)
	}
}

func TestParamErrors(t *testing.T) {
	x := t32(uniform(1, 4, 1), 1, 4)
	layerNorm := func(scope *model.Scope, x *Node) *Node {
		return transformer.LayerNorm(scope.In("visual").In("ln_pre"), x)
	}
	for _, tc := range []struct {
		name string
		vars map[string]*tensors.Tensor
		want string
	}{
		{"missing", map[string]*tensors.Tensor{"/visual/ln_pre/bias": t32(make([]float32, 4), 4)},
			"model parameter visual.ln_pre.weight is missing"},
		{"mis-shaped", map[string]*tensors.Tensor{
			"/visual/ln_pre/weight": t32(make([]float32, 3), 3),
			"/visual/ln_pre/bias":   t32(make([]float32, 4), 4),
		}, "model parameter visual.ln_pre.weight has shape [3], the configuration needs [4]"},
	} {
		_, err := graphtest.Try(t, graphtest.Store(t, tc.vars), layerNorm, x)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		scope, name, openCLIP string
	}{
		{"/visual/conv1", "weight", "visual.conv1.weight"},
		{"/visual/transformer/resblocks/3/attn", "in_proj_weight", "visual.transformer.resblocks.3.attn.in_proj_weight"},
		{"/transformer/resblocks/0/mlp/c_fc", "bias", "transformer.resblocks.0.mlp.c_fc.bias"},
		{"/", "logit_scale", "logit_scale"},
		{"", "text_projection", "text_projection"},
		{"token_embedding/", "weight", "token_embedding.weight"},
	} {
		if got := transformer.OpenCLIPName(tc.scope, tc.name); got != tc.openCLIP {
			t.Errorf("OpenCLIPName(%q, %q) = %q, want %q", tc.scope, tc.name, got, tc.openCLIP)
		}
		path := transformer.VariablePath(tc.openCLIP)
		wantPath := strings.TrimSuffix("/"+strings.Trim(tc.scope, "/"), "/") + "/" + tc.name
		if path != wantPath {
			t.Errorf("VariablePath(%q) = %q, want %q", tc.openCLIP, path, wantPath)
		}
		// Round trip through the variable's scope and name.
		cut := strings.LastIndex(path, "/")
		if back := transformer.OpenCLIPName(path[:cut], path[cut+1:]); back != tc.openCLIP {
			t.Errorf("round trip of %q via %q gave %q", tc.openCLIP, path, back)
		}
	}
	// Every state-dict entry of a stack maps to a distinct variable path.
	seen := map[string]string{}
	for _, p := range transformer.Params("visual.transformer", transformer.Config{Width: 8, Heads: 2, Layers: 2, MLPRatio: 4}, transformer.Std{}) {
		path := transformer.VariablePath(p.Name)
		if prev, ok := seen[path]; ok {
			t.Errorf("%s and %s share the variable path %s", prev, p.Name, path)
		}
		seen[path] = p.Name
	}
	if len(seen) != 24 {
		t.Errorf("2 resblocks gave %d variable paths, want 24", len(seen))
	}
}
