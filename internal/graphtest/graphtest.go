// Package graphtest runs small GoMLX graphs on the pure-Go CPU backend in
// tests and compares their float32 outputs with values computed in plain Go.
//
// The backend is opened once per test binary with backend.DefaultCPU. GoMLX's
// own graphtest helper is not used because it tries to download XLA.
//
//	store := graphtest.Store(t, map[string]*tensors.Tensor{
//		"/ln/weight": tensors.FromValue([]float32{1, 2}),
//		"/ln/bias":   tensors.FromValue([]float32{0, 1}),
//	})
//	out := graphtest.Run(t, store, func(scope *model.Scope, x *graph.Node) *graph.Node {
//		return transformer.LayerNorm(scope.In("ln"), x)
//	}, [][]float32{{1, 3}})
//	graphtest.CheckClose(t, "ln", graphtest.Float32s(t, out[0]), want, 1e-6)
package graphtest

import (
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/bmca/bmca/backend"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

var shared struct {
	once    sync.Once
	backend compute.Backend
	err     error
}

// Backend returns the pure-Go backend shared by every test in the binary,
// failing the test when it cannot be opened.
func Backend(t testing.TB) compute.Backend {
	t.Helper()
	shared.once.Do(func() { shared.backend, shared.err = backend.Open(backend.DefaultCPU) })
	if shared.err != nil {
		t.Fatalf("graphtest: %v", shared.err)
	}
	return shared.backend
}

// Run builds fn with store's variables, runs it once on inputs (tensors or
// Go values such as []float32 or [][]int32, one per *graph.Node parameter of
// fn) and returns every output. fn is any function model.NewExec accepts: a
// *model.Scope first, then *graph.Node inputs (or a *graph.Graph), returning
// one or more *graph.Node. A nil store means an empty one. Building or
// running errors, panics included, fail the test.
func Run[F model.ExecGraphFn](t testing.TB, store *model.Store, fn F, inputs ...any) []*tensors.Tensor {
	t.Helper()
	outputs, err := Try(t, store, fn, inputs...)
	if err != nil {
		t.Fatalf("graphtest: %v", err)
	}
	return outputs
}

// Try is Run returning the error (a panic while building the graph
// included) instead of failing the test, for tests that expect one.
func Try[F model.ExecGraphFn](t testing.TB, store *model.Store, fn F, inputs ...any) ([]*tensors.Tensor, error) {
	t.Helper()
	if store == nil {
		store = model.NewStore()
	}
	exec, err := model.NewExec(Backend(t), store, fn)
	if err != nil {
		return nil, err
	}
	var outputs []*tensors.Tensor
	caught := exceptions.TryCatch[any](func() {
		if outputs, err = exec.Call(inputs...); err != nil {
			panic(err)
		}
	})
	if _, ok := caught.(error); caught == nil || ok {
		// GoMLX converts error panics in fn into errors. A panic with any
		// other value (panic("...")) escapes while the graph is marked as
		// compiling, and Finalize would then wait for it forever, so the
		// Exec is left to the garbage collector in that case.
		exec.Finalize()
	}
	switch e := caught.(type) {
	case nil:
		return outputs, nil
	case error:
		return nil, e
	default:
		return nil, fmt.Errorf("panic: %v", e)
	}
}

// Store returns a store holding one variable per entry of vars, keyed by
// absolute variable path ("/visual/conv1/weight").
func Store(t testing.TB, vars map[string]*tensors.Tensor) *model.Store {
	t.Helper()
	store := model.NewStore()
	for path, value := range vars {
		if _, err := store.CreateVariable(path, value); err != nil {
			t.Fatalf("graphtest: variable %s: %v", path, err)
		}
	}
	return store
}

// Float32s copies a float32 tensor's values out in row-major order.
func Float32s(t testing.TB, x *tensors.Tensor) []float32 {
	t.Helper()
	v, err := tensors.CopyFlatData[float32](x)
	if err != nil {
		t.Fatalf("graphtest: %v", err)
	}
	return v
}

// MaxAbsDiff is the largest |got[i]-want[i]| and its index. It is +Inf
// (index -1) when the lengths differ, and +Inf at the first NaN on either
// side. Equal infinities count as equal.
func MaxAbsDiff[T float32 | float64](got []float32, want []T) (float64, int) {
	if len(got) != len(want) {
		return math.Inf(1), -1
	}
	worst, at := 0.0, 0
	for i := range got {
		g, w := float64(got[i]), float64(want[i])
		d := math.Abs(g - w)
		switch {
		case g == w:
			d = 0 // equal infinities
		case math.IsNaN(d):
			return math.Inf(1), i
		}
		if d > worst {
			worst, at = d, i
		}
	}
	return worst, at
}

// CheckClose reports a test error naming what when got and want differ in
// length or by more than tol anywhere.
func CheckClose[T float32 | float64](t testing.TB, what string, got []float32, want []T, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: got %d values, want %d", what, len(got), len(want))
		return
	}
	if d, i := MaxAbsDiff(got, want); d > tol {
		t.Errorf("%s: max abs diff %.3g > %.3g at flat index %d (got %v, want %v)", what, d, tol, i, got[i], float64(want[i]))
	}
}
