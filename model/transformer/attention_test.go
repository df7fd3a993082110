package transformer_test

import (
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/transformer"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// fusedAttentionAdvertised is a backend that claims the fused attention op
// and its backward, as XLA does, while its builder still declines them, as
// XLA does for float32 operands or a non-CUDA plugin.
type fusedAttentionAdvertised struct{ compute.Backend }

func (b fusedAttentionAdvertised) Capabilities() compute.Capabilities {
	c := b.Backend.Capabilities().Clone()
	c.Operations[compute.OpTypeFusedScaledDotProductAttention] = true
	c.Operations[compute.OpTypeFusedScaledDotProductAttentionVJP] = true
	return c
}

// TestAttentionFallsBackFromADecliningFusedKernel builds attention on a
// backend that advertises the fused kernel but declines the operands: the
// output and the gradients must be those of the decomposed form, in f32
// bit for bit, on both precisions and with and without the causal mask.
func TestAttentionFallsBackFromADecliningFusedKernel(t *testing.T) {
	const batch, heads, seq, dim = 2, 2, 5, 8
	n := batch * heads * seq * dim
	q, k, v := uniform(1, n, 1), uniform(2, n, 1), uniform(3, n, 1)
	attend := func(causal bool, p transformer.Precision) func(q, k, v *Node) []*Node {
		return func(q, k, v *Node) []*Node {
			out := transformer.ScaledDotProductAttention(q, k, v, causal, p)
			// A loss that weighs every output differently, so each gradient is distinct.
			weights := Iota(q.Graph(), out.Shape(), 3)
			loss := ReduceAllSum(Mul(out, weights))
			return append([]*Node{out}, Gradient(loss, q, k, v)...)
		}
	}
	run := func(be compute.Backend, fn func(q, k, v *Node) []*Node) []*tensors.Tensor {
		exec, err := model.NewExec(be, model.NewStore(), func(_ *model.Scope, q, k, v *Node) []*Node { return fn(q, k, v) })
		if err != nil {
			t.Fatal(err)
		}
		defer exec.Finalize()
		outs, err := exec.Call(t32(q, batch, heads, seq, dim), t32(k, batch, heads, seq, dim), t32(v, batch, heads, seq, dim))
		if err != nil {
			t.Fatal(err)
		}
		return outs
	}
	plain := graphtest.Backend(t)
	advertised := fusedAttentionAdvertised{plain}
	if !advertised.Capabilities().Operations[compute.OpTypeFusedScaledDotProductAttention] ||
		plain.Capabilities().Operations[compute.OpTypeFusedScaledDotProductAttention] {
		t.Fatal("the test backend must advertise fused attention and the Go backend must not")
	}
	for _, p := range []transformer.Precision{transformer.Float32, transformer.BFloat16Mixed} {
		for _, causal := range []bool{false, true} {
			for _, be := range []compute.Backend{plain, advertised} {
				if fused, err := transformer.UsesFusedAttention(be, p, heads, seq, dim, causal); err != nil || fused {
					t.Errorf("UsesFusedAttention(%s, %s, causal=%v) = %v, %v; the Go backend has no fused kernel", be.Name(), p, causal, fused, err)
				}
			}
			want := run(plain, attend(causal, p))
			got := run(advertised, attend(causal, p))
			for i, name := range []string{"output", "dq", "dk", "dv"} {
				if got[i].DType() != dtypes.Float32 {
					t.Errorf("%s causal=%v %s: dtype %s, want float32", p, causal, name, got[i].DType())
				}
				a, b := graphtest.Float32s(t, got[i]), graphtest.Float32s(t, want[i])
				if d, at := graphtest.MaxAbsDiff(a, b); d != 0 {
					t.Errorf("%s causal=%v %s: differs from the decomposed form by %g at %d", p, causal, name, d, at)
				}
			}
		}
	}
}
