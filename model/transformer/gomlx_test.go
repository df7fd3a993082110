package transformer_test

import (
	"math"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/internal/reftest"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/weights"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers/activation"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/nn"
)

// fusion sets GoMLX's switch for fused ops, read when a graph is built:
// on the pure-Go backend "0" builds the decomposed graphs that XLA, which
// has no fused layer norm, GELU or dense, always gets.
func fusion(t *testing.T, on bool) {
	if on {
		t.Setenv("GOMLX_FUSION", "1")
	} else {
		t.Setenv("GOMLX_FUSION", "0")
	}
}

// torchLayerNorm is torch.nn.LayerNorm written out as a graph: the
// decomposed form LayerNorm must reproduce bit for bit.
func torchLayerNorm(x, weight, bias *Node, eps float64) *Node {
	last := x.Rank() - 1
	mean := ReduceAndKeep(x, ReduceMean, last)
	centred := Sub(x, mean)
	variance := ReduceAndKeep(Square(centred), ReduceMean, last)
	normed := Div(centred, Sqrt(AddScalar(variance, eps)))
	return transformer.AddTrailing(transformer.MulTrailing(normed, weight), bias)
}

func bitsEqual(a, b []float32) int {
	n := 0
	for i := range a {
		if a[i] == b[i] {
			n++
		}
	}
	return n
}

func meanAbsDiff(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		s += math.Abs(float64(a[i]) - float64(b[i]))
	}
	return s / float64(len(a))
}

func refTensor(t *testing.T, sd weights.StateDict, name string) *tensors.Tensor {
	t.Helper()
	return tensors.FromFlatDataAndDimensions(reftest.Floats(t, sd, name), sd[name].Shape...)
}

// TestGoMLXLayersOnOpenCLIPActivations is the evidence for which of
// GoMLX's layers the towers use, on the activations OpenCLIP itself
// computed for the b16-shape reference model (ln_pre, the first block's
// c_fc and its GELU): LayerNorm is GoMLX's nn.LayerNorm; GELU equals
// GoMLX's activation.Gelu bit for bit; Linear is ours because nn.Dense
// cannot do bf16-mixed.
func TestGoMLXLayersOnOpenCLIPActivations(t *testing.T) {
	ref := reftest.Load(t, "b16-shape")
	act, w := ref.Intermediates, ref.Weights
	const mlp = "visual.transformer.resblocks.0.mlp"

	t.Run("LayerNorm", func(t *testing.T) {
		store := graphtest.Store(t, map[string]*tensors.Tensor{
			"/ln_pre/weight": refTensor(t, w, "visual.ln_pre.weight"),
			"/ln_pre/bias":   refTensor(t, w, "visual.ln_pre.bias"),
		})
		want := reftest.Floats(t, act, "visual.ln_pre.out")
		for _, fused := range []bool{false, true} {
			fusion(t, fused)
			out := graphtest.Run(t, store, func(scope *model.Scope, x *Node) []*Node {
				s := scope.In("ln_pre")
				width := x.Shape().Dim(-1)
				weight, bias := transformer.Param(s, x.Graph(), "weight", width), transformer.Param(s, x.Graph(), "bias", width)
				return []*Node{transformer.LayerNorm(s, x), torchLayerNorm(x, weight, bias, transformer.LayerNormEpsilon)}
			}, refTensor(t, act, "visual.ln_pre.in"))
			got, graph := graphtest.Float32s(t, out[0]), graphtest.Float32s(t, out[1])
			graphtest.CheckClose(t, "LayerNorm vs OpenCLIP", got, want, 2e-6)
			graphtest.CheckClose(t, "written-out graph vs OpenCLIP", graph, want, 2e-6)
			same := bitsEqual(got, graph)
			switch {
			case !fused && same != len(got):
				t.Errorf("decomposed (XLA's) LayerNorm: %d of %d values differ from the written-out graph, want none", len(got)-same, len(got))
			case fused && same == len(got):
				t.Errorf("the pure-Go backend's fused LayerNorm now equals the graph bit for bit: update LayerNormEps's comment")
			}
		}
	})

	t.Run("GELU", func(t *testing.T) {
		want := reftest.Floats(t, act, mlp+".gelu.out")
		for _, fused := range []bool{false, true} {
			fusion(t, fused)
			out := graphtest.Run(t, nil, func(_ *model.Scope, x *Node) []*Node {
				return []*Node{transformer.GELU(x), activation.Gelu(x)}
			}, refTensor(t, act, mlp+".c_fc.out"))
			ours, theirs := graphtest.Float32s(t, out[0]), graphtest.Float32s(t, out[1])
			graphtest.CheckClose(t, "GELU vs OpenCLIP", ours, want, 1e-6)
			if same := bitsEqual(ours, theirs); same != len(ours) {
				t.Errorf("fused=%v: activation.Gelu differs from GELU in %d of %d values: reconsider using it", fused, len(ours)-same, len(ours))
			}
		}
	})

	t.Run("Linear", func(t *testing.T) {
		weight := refTensor(t, w, mlp+".c_fc.weight")
		out, in := weight.Shape().Dim(0), weight.Shape().Dim(1)
		store := graphtest.Store(t, map[string]*tensors.Tensor{"/c_fc/weight": weight, "/c_fc/bias": refTensor(t, w, mlp+".c_fc.bias")})
		want := reftest.Floats(t, act, mlp+".c_fc.out")
		x := refTensor(t, act, "visual.transformer.resblocks.0.ln_2.out")
		// run returns Linear's and nn.Dense's outputs as float32, and
		// nn.Dense's own dtype.
		run := func(p transformer.Precision) ([]float32, []float32, dtypes.DType, error) {
			outs, err := graphtest.Try(t, store, func(scope *model.Scope, x *Node) []*Node {
				s := scope.In("c_fc")
				w, b := transformer.Param(s, x.Graph(), "weight", out, in), transformer.Param(s, x.Graph(), "bias", out)
				if dt := p.ProductDType(); dt != dtypes.Float32 {
					x, w, b = ConvertDType(x, dt), ConvertDType(w, dt), ConvertDType(b, dt)
				}
				dense := nn.Dense(x, w, b, compute.DenseLayoutOutputsInput)
				return []*Node{transformer.Linear(s, x, out, p), dense, ConvertDType(dense, dtypes.Float32)}
			}, x)
			if err != nil {
				return nil, nil, dtypes.InvalidDType, err
			}
			return graphtest.Float32s(t, outs[0]), graphtest.Float32s(t, outs[2]), outs[1].DType(), nil
		}
		for _, fused := range []bool{false, true} {
			fusion(t, fused)
			ours, dense, _, err := run(transformer.Float32)
			if err != nil {
				t.Fatal(err)
			}
			graphtest.CheckClose(t, "float32 Linear vs OpenCLIP", ours, want, 1e-5)
			if same := bitsEqual(ours, dense); same != len(ours) {
				t.Errorf("fused=%v: float32 nn.Dense differs from Linear in %d of %d values", fused, len(ours)-same, len(ours))
			}
		}
		// bf16-mixed: nn.Dense's fused kernel on the Go backend has no
		// bfloat16, and fails only when the graph runs.
		fusion(t, true)
		if _, _, _, err := run(transformer.BFloat16Mixed); err == nil || !strings.Contains(err.Error(), "FusedDense") {
			t.Errorf("bf16 nn.Dense on the pure-Go backend: error %v, want FusedDense's missing bfloat16: if GoMLX has one now, reconsider nn.Dense", err)
		}
		// Decomposed (XLA's form) it runs, but rounds its result, bias
		// included, to bfloat16, where Linear returns the float32
		// accumulation (Precision's contract: only operands are rounded).
		fusion(t, false)
		ours, dense, dt, err := run(transformer.BFloat16Mixed)
		if err != nil {
			t.Fatal(err)
		}
		if dt != dtypes.BFloat16 {
			t.Errorf("bf16 nn.Dense returns %s, want BFloat16: if it accumulates into float32 now, reconsider it", dt)
		}
		oursErr, denseErr := meanAbsDiff(ours, want), meanAbsDiff(dense, want)
		t.Logf("bf16-mixed c_fc, mean difference from OpenCLIP's float32 output: Linear %.3g, nn.Dense %.3g", oursErr, denseErr)
		if !(denseErr > oursErr) {
			t.Errorf("bf16 nn.Dense is %.3g from OpenCLIP's float32 output, Linear %.3g: want Linear closer", denseErr, oursErr)
		}
	})
}
