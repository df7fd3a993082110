package graphstats

import (
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
)

func TestSummarizeCountsWhatTheOutputsNeed(t *testing.T) {
	g := NewGraph(graphtest.Backend(t), "summary")
	defer g.Finalize()
	x := Parameter(g, "x", shapes.Make(dtypes.Float32, 2, 5, 3))
	w := Parameter(g, "w", shapes.Make(dtypes.Float32, 4, 3))
	w16 := ConvertDType(w, dtypes.BFloat16)
	// [2,5,3]·[4,3]ᵀ over the last axis: 2·5·4 outputs of 3 multiply-adds.
	y := Dot(ConvertDType(x, dtypes.BFloat16), w16).General([]int{2}, nil, []int{1}, nil)
	y = TransposeAllDims(ConvertDType(y, dtypes.Float32), 0, 2, 1)
	y = TransposeAllDims(y, 0, 1, 2) // moves nothing
	// A second product in float32 with the same weight converted again.
	z := Dot(Reshape(x, 10, 3), ConvertDType(ConvertDType(w, dtypes.BFloat16), dtypes.Float32)).General([]int{1}, nil, []int{1}, nil)
	// Dead: nothing returned depends on it.
	_ = Dot(Reshape(x, 10, 3), w).General([]int{1}, nil, []int{1}, nil)

	s, err := Summarize([]*Node{y, z})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Products) != 2 {
		t.Fatalf("%d products, want the 2 live ones", len(s.Products))
	}
	p := s.Products[0]
	if p.Kind() != "BFloat16×BFloat16→BFloat16" || p.FLOPs != 2*2*5*4*3 || !p.ParamOperand {
		t.Errorf("first product %s, %g FLOPs, weight %v; want bf16, 240 FLOPs, a weight product", p.Kind(), p.FLOPs, p.ParamOperand)
	}
	if p.Accumulator != dtypes.Float32 {
		t.Errorf("GoMLX asks bf16 products for a float32 accumulator; read %s", p.Accumulator)
	}
	byKind := s.ProductsByKind()
	if byKind["Float32×Float32→Float32"].Count != 1 || s.TotalFLOPs() != 2*240 {
		t.Errorf("by kind %v, total %g", byKind, s.TotalFLOPs())
	}
	if s.Converts["Float32→BFloat16"] != 3 || s.Converts["BFloat16→Float32"] != 2 {
		t.Errorf("converts %v", s.Converts)
	}
	if s.ParamConverts["w"] != 2 || s.ParamConverts["x"] != 1 {
		t.Errorf("parameter converts %v: w is converted twice, x once", s.ParamConverts)
	}
	if s.Transposes != 1 || s.TransposeBytes != 2*4*5*4 || s.IdentityTransposes != 1 {
		t.Errorf("%d transposes, %d bytes, %d identities; want 1, 160, 1", s.Transposes, s.TransposeBytes, s.IdentityTransposes)
	}
	if table := s.Table(); !strings.Contains(table, "(1 more than once)") {
		t.Errorf("table does not report the repeated conversion:\n%s", table)
	}
}
