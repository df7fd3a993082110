package train

import (
	"testing"

	"github.com/bmca/bmca/internal/graphstats"
	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
	"github.com/gomlx/compute/dtypes"
)

func stepProgram(t *testing.T, p transformer.Precision) *graphstats.Summary {
	t.Helper()
	cfg := tinyConfig()
	cfg.Precision = p
	s, err := NewStepper(graphtest.Backend(t), cfg, clip.Init(cfg, 1), Recipe{AdamW: testAdamW}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Finalize()
	summary, err := s.Program(4)
	if err != nil {
		t.Fatal(err)
	}
	return summary
}

// TestBFloat16StepProgram reads the training step that bf16-mixed builds,
// forward and backward: what a GPU would be asked to compute, checked
// without one.
func TestBFloat16StepProgram(t *testing.T) {
	f32, bf16 := stepProgram(t, transformer.Float32), stepProgram(t, transformer.BFloat16Mixed)
	t.Logf("bf16 step:\n%s", bf16.Table())

	// f32 is float32 throughout: no product and no conversion in another
	// dtype (the masks' Bool→Float32 aside).
	for _, p := range f32.Products {
		if p.Kind() != "Float32×Float32→Float32" {
			t.Errorf("f32 step has a %s product", p.Kind())
		}
	}
	for k := range f32.Converts {
		if k != "Bool→Float32" {
			t.Errorf("f32 step converts %s", k)
		}
	}

	// bf16 changes dtypes, not the program: the same products, no extra
	// transposes.
	if len(bf16.Products) != len(f32.Products) || bf16.Transposes != f32.Transposes {
		t.Errorf("bf16 step has %d products and %d transposes, f32 %d and %d", len(bf16.Products), bf16.Transposes, len(f32.Products), f32.Transposes)
	}
	// Every product of the towers, forward and backward (weight and input
	// gradients, both attention products and theirs), multiplies bfloat16
	// by bfloat16. Only four stay float32, as bmca keeps the loss in
	// float32: the logits of normalised features (forward and its two
	// gradients) and the text tower's EOT selection (an exact 0/1
	// selection whose gradient is elementwise).
	var f32Products int
	var f32FLOPs float64
	for _, p := range bf16.Products {
		switch p.Kind() {
		case "BFloat16×BFloat16→BFloat16":
		case "Float32×Float32→Float32":
			f32Products++
			f32FLOPs += p.FLOPs
			if p.ParamOperand {
				t.Errorf("a weight product %v × %v runs in float32", p.LHS, p.RHS)
			}
		default:
			t.Errorf("bf16 step has a %s product (%v × %v)", p.Kind(), p.LHS, p.RHS)
		}
	}
	if f32Products != 4 {
		t.Errorf("%d float32 products in the bf16 step, want the loss's 3 and the EOT selection", f32Products)
	}
	if share := f32FLOPs / bf16.TotalFLOPs(); share > 0.01 {
		t.Errorf("float32 products are %.1f%% of the bf16 step's product FLOPs", 100*share)
	}
	// Each weight is rounded to bfloat16 once per step; the backward pass
	// reuses that copy rather than converting it again.
	for name, n := range bf16.ParamConverts {
		if n != 1 {
			t.Errorf("parameter %s converted %d times per step", name, n)
		}
	}
	// The backward products compute in bf16 with a float32 accumulator, so
	// no activation or weight travels back up to float32 for them: the
	// step converts to float32 only products' results (once each) and
	// the masks.
	forward := 0
	for _, p := range bf16.Products {
		if p.Output.DType == dtypes.BFloat16 && p.Accumulator != dtypes.Float32 {
			forward++
		}
	}
	if up := bf16.Converts["BFloat16→Float32"]; up > len(bf16.Products) {
		t.Errorf("%d bfloat16→float32 conversions for %d products (%d forward)", up, len(bf16.Products), forward)
	}
}
