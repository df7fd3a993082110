package graphtest_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

func TestRunWithVariables(t *testing.T) {
	store := graphtest.Store(t, map[string]*tensors.Tensor{
		"/layer/scale": tensors.FromValue([]float32{2, -1}),
	})
	out := graphtest.Run(t, store, func(scope *model.Scope, x, y *Node) (*Node, *Node) {
		scale := scope.In("layer").GetVariable("scale").NodeValue(x.Graph())
		return Mul(x, scale), Add(x, y)
	}, []float32{3, 4}, []float32{0.5, 0.25})
	graphtest.CheckClose(t, "x*scale", graphtest.Float32s(t, out[0]), []float32{6, -4}, 0)
	graphtest.CheckClose(t, "x+y", graphtest.Float32s(t, out[1]), []float64{3.5, 4.25}, 0)
}

// TestTryReturnsPanics checks that both kinds of panic while building a
// graph come back as errors, and that a plain panic("...") does not hang
// (GoMLX's Exec.Finalize waits forever after one).
func TestTryReturnsPanics(t *testing.T) {
	for _, tc := range []struct {
		name  string
		panic any
	}{
		{"error", errors.New("bad shape")},
		{"string", "bad shape"},
	} {
		_, err := graphtest.Try(t, nil, func(_ *model.Scope, x *Node) *Node { panic(tc.panic) }, []float32{1})
		if err == nil || !strings.Contains(err.Error(), "bad shape") {
			t.Errorf("%s panic: error %v, want one containing %q", tc.name, err, "bad shape")
		}
	}
}

func TestMaxAbsDiff(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, tc := range []struct {
		name      string
		got, want []float32
		diff      float64
		at        int
	}{
		{"equal", []float32{1, 2}, []float32{1, 2}, 0, 0},
		{"largest wins", []float32{1, 2, 3}, []float32{1.5, 2, 1}, 2, 2},
		{"lengths differ", []float32{1}, []float32{1, 2}, math.Inf(1), -1},
		{"NaN", []float32{1, nan}, []float32{1, 1}, math.Inf(1), 1},
		{"NaN both sides", []float32{nan}, []float32{nan}, math.Inf(1), 0},
		{"equal infinities", []float32{-inf, inf}, []float32{-inf, inf}, 0, 0},
		{"opposite infinities", []float32{inf}, []float32{-inf}, math.Inf(1), 0},
	} {
		diff, at := graphtest.MaxAbsDiff(tc.got, tc.want)
		if diff != tc.diff || at != tc.at {
			t.Errorf("%s: MaxAbsDiff = %v at %d, want %v at %d", tc.name, diff, at, tc.diff, tc.at)
		}
	}
}
