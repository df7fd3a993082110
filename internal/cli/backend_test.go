package cli

import (
	"strings"
	"testing"

	"github.com/bmca/bmca/backend"
	"github.com/bmca/bmca/model/transformer"
)

// Every spelling train.precision and --precision accept reaches the backend
// as the float32-product rule it stands for.
func TestPrecisionSpellingsReachTheBackend(t *testing.T) {
	for _, c := range []struct {
		spelling, canonical string
		want                backend.Float32Products
	}{
		{"", "f32", backend.ExactFloat32},
		{"f32", "f32", backend.ExactFloat32},
		{"fp32", "f32", backend.ExactFloat32}, // OpenCLIP's spelling
		{"tf32", "tf32", backend.AllowTF32},
		{"bf16", "bf16", backend.BackendChoice},
		{"amp_bf16", "bf16", backend.BackendChoice}, // OpenCLIP's
		{"amp_bfloat16", "bf16", backend.BackendChoice},
	} {
		var p transformer.Precision
		if err := p.Set(c.spelling); err != nil {
			t.Fatalf("%q: %v", c.spelling, err)
		}
		if got := Float32Products(p); got != c.want {
			t.Errorf("%q: %d, want %d", c.spelling, got, c.want)
		}
		if p.String() != c.canonical {
			t.Errorf("%q prints as %q, want %q", c.spelling, p, c.canonical)
		}
	}
	// OpenCLIP's other modes compute differently: refused, with the reason.
	for spelling, reason := range map[string]string{"amp": "loss scaling", "fp16": "loss scaling", "pure_fp16": "loss scaling",
		"pure_bf16": "float32", "half": "f32, tf32, bf16"} {
		var p transformer.Precision
		if err := p.Set(spelling); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("%q: %v, want a refusal mentioning %q", spelling, err, reason)
		}
	}
}
