// Package reftest loads the reference models that the real OpenCLIP code
// produced (shared/reference/openclip/<name>: config.json,
// weights.safetensors, cases.safetensors, intermediates.safetensors) for
// parity tests, and reads their tensors as Go slices. Like testshared, it
// skips the test when the shared material is absent.
//
//	ref := reftest.Load(t, "tiny-perturbed")
//	pixels := reftest.Floats(t, ref.Cases, "pixels")
package reftest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/internal/testshared"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/weights"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// Model is one reference model's files.
type Model struct {
	// Dir is the model's folder in the shared material.
	Dir string
	// Config is config.json, an OpenCLIP model config.
	Config []byte
	// Weights, Cases and Intermediates are the three safetensors files.
	Weights, Cases, Intermediates weights.StateDict
}

// Load reads reference model name, failing the test on unreadable files.
func Load(t testing.TB, name string) Model {
	t.Helper()
	dir := testshared.Path(t, filepath.Join("reference/openclip", name))
	config, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	read := func(file string) weights.StateDict {
		sd, _, err := weights.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return sd
	}
	return Model{Dir: dir, Config: config, Weights: read("weights.safetensors"),
		Cases: read("cases.safetensors"), Intermediates: read("intermediates.safetensors")}
}

// Floats returns tensor name of sd as float32, failing the test when it is
// missing or not a float tensor.
func Floats(t testing.TB, sd weights.StateDict, name string) []float32 {
	t.Helper()
	tensor, ok := sd[name]
	if !ok {
		t.Fatalf("reference has no tensor %s", name)
	}
	v, err := tensor.Float32s()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// Int32s returns integer tensor name of sd (token ids, pool indices) as int32.
func Int32s(t testing.TB, sd weights.StateDict, name string) []int32 {
	t.Helper()
	tensor, ok := sd[name]
	if !ok {
		t.Fatalf("reference has no tensor %s", name)
	}
	v, err := tensor.Int64s()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// Store holds the tensors of sd that specs name, at their GoMLX variable
// paths, failing the test when OpenCLIP lacks one or shapes it otherwise:
// our parameter list must name OpenCLIP's tensors with their shapes.
func Store(t testing.TB, sd weights.StateDict, specs []transformer.ParamSpec) *model.Store {
	t.Helper()
	vars := map[string]*tensors.Tensor{}
	for _, p := range specs {
		tensor, ok := sd[p.Name]
		if !ok || !slices.Equal(tensor.Shape, p.Shape) {
			t.Fatalf("%s: OpenCLIP has %v (present %v), we expect %v", p.Name, tensor.Shape, ok, p.Shape)
		}
		vars[transformer.VariablePath(p.Name)] = tensors.FromFlatDataAndDimensions(Floats(t, sd, p.Name), p.Shape...)
	}
	return graphtest.Store(t, vars)
}
