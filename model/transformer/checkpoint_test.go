package transformer_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/transformer"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// stackVars gives every parameter of a stack of resblocks under /tr.
func stackVars(c transformer.Config) map[string]*tensors.Tensor {
	vars := map[string]*tensors.Tensor{}
	for i, spec := range transformer.Params("tr", c, transformer.DefaultStd(c)) {
		values := uniform(uint64(100+i), spec.NumElements(), 0.5)
		if spec.Init == transformer.InitOnes {
			for j := range values {
				values[j] += 1
			}
		}
		vars[transformer.VariablePath(spec.Name)] = t32(values, spec.Shape...)
	}
	return vars
}

// TestGradCheckpointingRecomputesTheSameGradients differentiates a 3-layer
// causal stack with and without gradient checkpointing: the gradients of
// the input and of every weight must be bit-identical, and the checkpointed
// backward pass must hold the recomputed forward (more matrix products).
func TestGradCheckpointingRecomputesTheSameGradients(t *testing.T) {
	const batch, seq = 2, 5
	base := transformer.Config{Width: 8, Heads: 2, Layers: 3, MLPRatio: 2}
	vars := stackVars(base)
	x := uniform(9, batch*seq*base.Width, 1)
	products := map[bool]int{}
	run := func(checkpointing bool) []*tensors.Tensor {
		c := base
		c.GradCheckpointing = checkpointing
		return graphtest.Run(t, graphtest.Store(t, vars), func(scope *model.Scope, x *Node) []*Node {
			g := x.Graph()
			out := transformer.Apply(scope.In("tr"), x, c, true)
			loss := ReduceAllSum(Mul(out, Iota(g, out.Shape(), 2)))
			wrt := []*Node{x}
			for _, name := range slices.Sorted(maps.Keys(vars)) {
				wrt = append(wrt, scope.Store().GetVariable(name).NodeValue(g))
			}
			grads := Gradient(loss, wrt...)
			products[checkpointing] = countReachable(NodeTypeDotGeneral, grads...)
			return append([]*Node{out}, grads...)
		}, t32(x, batch, seq, base.Width))
	}
	plain, checkpointed := run(false), run(true)
	for i := range plain {
		a, b := graphtest.Float32s(t, checkpointed[i]), graphtest.Float32s(t, plain[i])
		if d, at := graphtest.MaxAbsDiff(a, b); d != 0 {
			t.Errorf("output %d: checkpointed differs by %g at %d", i, d, at)
		}
	}
	// The backward pass needs the in-block products whose outputs it uses
	// (qkv, scores, attention·v, c_fc): checkpointed, it computes them again.
	if products[true] <= products[false] {
		t.Errorf("matrix products in the backward pass: %d checkpointed, %d plain; checkpointing must recompute the forward",
			products[true], products[false])
	}
	t.Logf("matrix products reachable from the gradients: %d plain, %d checkpointed", products[false], products[true])
}

// countReachable counts the nodes of type kind that outputs depend on.
func countReachable(kind NodeType, outputs ...*Node) int {
	seen := map[*Node]bool{}
	count := 0
	var visit func(n *Node)
	visit = func(n *Node) {
		if seen[n] {
			return
		}
		seen[n] = true
		if n.Type() == kind {
			count++
		}
		for _, in := range n.Inputs() {
			visit(in)
		}
	}
	for _, o := range outputs {
		visit(o)
	}
	return count
}
