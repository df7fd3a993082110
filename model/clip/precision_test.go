package clip

import (
	"math"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/transformer"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// TestBFloat16MixedAgainstOpenCLIP runs the reference models with every
// product in bfloat16 and compares the unit-norm features with OpenCLIP's
// float32 ones. bf16 keeps 8 significant bits, so each product is off by
// up to 2⁻⁹ relative; through a few layers the features must stay within
// a few 1e-3 of float32 (cosine above 0.9995), yet differ from float32 by
// far more than float32 rounding does, which shows the products really
// ran in bf16.
func TestBFloat16MixedAgainstOpenCLIP(t *testing.T) {
	for _, name := range []string{"tiny", "tiny-perturbed", "b16-shape"} {
		t.Run(name, func(t *testing.T) {
			cfg, ref := loadReference(t, name)
			cases := ref.Cases
			store, err := NewStore(cfg, ref.Weights)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Precision = transformer.BFloat16Mixed
			outs := graphtest.Run(t, store, func(scope *model.Scope, pixels, tokens *Node) []*Node {
				return []*Node{Normalize(EncodeImage(scope, cfg, pixels)), Normalize(EncodeText(scope, cfg, tokens))}
			}, tensorOf(t, cases["pixels"]), tensorOf(t, cases["tokens"]))
			for i, ref := range []string{"image_features_normalized", "text_features_normalized"} {
				if dt := outs[i].DType(); dt != dtypes.Float32 {
					t.Errorf("%s: dtype %s, the towers must return float32 under every precision", ref, dt)
				}
				got, want := graphtest.Float32s(t, outs[i]), floats(t, cases, ref)
				diff := maxAbsDiff(got, want)
				cos := minRowCosine(got, want, cfg.EmbedDim)
				t.Logf("%s %s: max abs diff %.3g, min cosine %.6f", name, ref, diff, cos)
				if diff > 1e-2 || cos < 0.9995 {
					t.Errorf("%s: bf16 features too far from OpenCLIP's float32 ones (max abs diff %.3g, min cosine %.6f)", ref, diff, cos)
				}
				if diff < 1e-4 {
					t.Errorf("%s: max abs diff %.3g is float32 rounding: the products did not run in bf16", ref, diff)
				}
			}
		})
	}
}

// minRowCosine is the smallest cosine similarity between matching rows.
func minRowCosine(a, b []float32, dim int) float64 {
	worst := 1.0
	for r := 0; r+dim <= len(a); r += dim {
		var dot, na, nb float64
		for i := r; i < r+dim; i++ {
			dot += float64(a[i]) * float64(b[i])
			na += float64(a[i]) * float64(a[i])
			nb += float64(b[i]) * float64(b[i])
		}
		worst = min(worst, dot/math.Sqrt(na*nb))
	}
	return worst
}
