package train

import (
	"math"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/weights"
)

// TestBFloat16MixedTrainsLikeFloat32 trains the tiny model from the same
// start on the same batch in f32 and in bf16-mixed. bf16 must memorise the
// batch as f32 does, follow f32's loss curve within bf16's rounding, keep
// float32 master weights and optimiser state, and yet not be f32 in
// disguise (the weights must differ).
func TestBFloat16MixedTrainsLikeFloat32(t *testing.T) {
	be := graphtest.Backend(t)
	cfg := tinyConfig()
	pixels, tokens := randomBatch(7, cfg, 8)
	const steps = 30
	run := func(p transformer.Precision, accum int) ([]float64, weights.StateDict, weights.StateDict) {
		cfg := cfg
		cfg.Precision = p
		s, err := NewStepper(be, cfg, clip.Init(cfg, 1), Recipe{AdamW: testAdamW, AccumFreq: accum}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Finalize()
		batch := []MicroBatch{{pixels, tokens, 8}}
		if accum == 2 {
			batch = inHalves(pixels, tokens, 8)
		}
		var losses []float64
		for range steps {
			st, err := s.TrainStep(batch, 2e-3)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			losses = append(losses, st.Loss)
		}
		sd, err := s.StateDict()
		if err != nil {
			t.Fatal(err)
		}
		opt, err := s.OptimizerState()
		if err != nil {
			t.Fatal(err)
		}
		return losses, sd, opt
	}
	f32Loss, f32Weights, _ := run(transformer.Float32, 1)
	bf16Loss, bf16Weights, bf16Opt := run(transformer.BFloat16Mixed, 1)
	// OpenCLIP's accumulation (features cached, each micro-batch
	// re-encoded) runs in bf16 too and gives the same first loss.
	if accLoss, _, _ := run(transformer.BFloat16Mixed, 2); math.Abs(accLoss[0]-bf16Loss[0]) > 1e-2 {
		t.Errorf("bf16 with accum_freq 2: first loss %.5f, one batch of 8 gives %.5f", accLoss[0], bf16Loss[0])
	}

	worstLoss := 0.0
	for i := range steps {
		if math.IsNaN(bf16Loss[i]) || math.IsInf(bf16Loss[i], 0) {
			t.Fatalf("bf16 step %d: loss %g", i, bf16Loss[i])
		}
		worstLoss = max(worstLoss, math.Abs(bf16Loss[i]-f32Loss[i]))
	}
	t.Logf("loss f32 %.4f → %.4f, bf16 %.4f → %.4f, largest gap %.4f", f32Loss[0], f32Loss[steps-1], bf16Loss[0], bf16Loss[steps-1], worstLoss)
	if first, last := bf16Loss[0], bf16Loss[steps-1]; last > first/4 {
		t.Errorf("bf16 loss %.3f → %.3f: it should memorise one batch of 8 as f32 does", first, last)
	}
	if math.Abs(bf16Loss[0]-f32Loss[0]) > 1e-2 {
		t.Errorf("initial loss bf16 %.5f vs f32 %.5f: the same weights should agree to bf16 rounding", bf16Loss[0], f32Loss[0])
	}
	if worstLoss > 0.1*f32Loss[0] {
		t.Errorf("bf16 and f32 loss curves part by %.3f (initial loss %.3f)", worstLoss, f32Loss[0])
	}

	moved := 0.0
	for name, w := range bf16Weights {
		if w.DType != weights.F32 {
			t.Errorf("%s saved as %s: master weights must stay float32", name, w.DType)
		}
		a, _ := w.Float32s()
		b, _ := f32Weights[name].Float32s()
		d, _ := graphtest.MaxAbsDiff(a, b)
		moved = max(moved, d)
	}
	for name, w := range bf16Opt {
		if w.DType != weights.F32 {
			t.Errorf("optimizer state %s is %s, want float32", name, w.DType)
		}
	}
	if moved == 0 {
		t.Error("bf16 and f32 runs gave identical weights: the products did not run in bf16")
	}
}
