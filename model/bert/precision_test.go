package bert_test

import (
	"testing"

	"github.com/bmca/bmca/internal/graphstats"
	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/bert"
	"github.com/bmca/bmca/model/transformer"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Under bf16-mixed, BERT's self-attention multiplies in bfloat16 forward
// and backward, as the OpenCLIP towers do (train's TestBFloat16StepProgram).
func TestSelfAttentionBF16ProductsForwardAndBackward(t *testing.T) {
	const width, seq, batch = 8, 5, 2
	c := bert.Config{HiddenSize: width, NumAttentionHeads: 2}
	vars := map[string]*tensors.Tensor{}
	for i, name := range []string{"query", "key", "value"} {
		w := make([]float32, width*width)
		for j := range w {
			w[j] = float32((j*7+i*3)%11-5) / 20
		}
		vars["/self/"+name+"/weight"] = tensors.FromFlatDataAndDimensions(w, width, width)
		vars["/self/"+name+"/bias"] = tensors.FromFlatDataAndDimensions(make([]float32, width), width)
	}
	var roots []*Node
	exec, err := model.NewExec(graphtest.Backend(t), graphtest.Store(t, vars), func(scope *model.Scope, x *Node) *Node {
		keyBias := Zeros(x.Graph(), shapes.Make(dtypes.Float32, batch, 1, 1, seq))
		y := bert.SelfAttention(scope.In("self"), c, transformer.BFloat16Mixed, x, keyBias)
		roots = Gradient(ReduceAllSum(Square(y)), x)
		return roots[0]
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	if _, err := exec.Compile(shapes.Make(dtypes.Float32, batch, seq, width)); err != nil {
		t.Fatal(err)
	}
	s, err := graphstats.Summarize(roots)
	if err != nil {
		t.Fatal(err)
	}
	// 3 projections and 2 attention products forward; the input gradient
	// needs both operands' gradients of the attention products and the
	// projections' input gradients.
	if len(s.Products) < 5+4+3 {
		t.Fatalf("%d products, want at least 12:\n%s", len(s.Products), s.Table())
	}
	for _, p := range s.Products {
		if p.Kind() != "BFloat16×BFloat16→BFloat16" {
			t.Errorf("a %s product (%v × %v)", p.Kind(), p.LHS, p.RHS)
		}
	}
}
