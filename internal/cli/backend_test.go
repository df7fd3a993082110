package cli

import (
	"testing"

	"github.com/bmca/bmca/backend"
	"github.com/bmca/bmca/model/transformer"
)

// Every spelling train.precision and --precision accept reaches the backend
// as the float32-product rule it stands for.
func TestPrecisionSpellingsReachTheBackend(t *testing.T) {
	for _, c := range []struct {
		spelling string
		want     backend.Float32Products
	}{
		{"", backend.ExactFloat32},
		{"f32", backend.ExactFloat32},
		{"tf32", backend.AllowTF32},
		{"bf16", backend.BackendChoice},
	} {
		var p transformer.Precision
		if err := p.Set(c.spelling); err != nil {
			t.Fatalf("%q: %v", c.spelling, err)
		}
		if got := Float32Products(p); got != c.want {
			t.Errorf("%q: %d, want %d", c.spelling, got, c.want)
		}
		if c.spelling != "" && p.String() != c.spelling {
			t.Errorf("%q prints as %q", c.spelling, p)
		}
	}
	var p transformer.Precision
	if err := p.Set("fp32"); err == nil {
		t.Error("fp32 accepted: the spellings are f32, tf32, bf16")
	}
}
