package train

import (
	"bytes"
	"strings"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/weights"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/textenc"
	"github.com/bmca/bmca/model/vit"
)

func tinyConfig() clip.Config {
	return clip.Config{
		EmbedDim:  16,
		VisionCfg: clip.VisionConfig{Config: vit.Config{ImageSize: 16, PatchSize: 8, Width: 32, Layers: 1, HeadWidth: 16}},
		TextCfg:   clip.TextConfig{Config: textenc.Config{ContextLength: 8, VocabSize: 40, Width: 32, Heads: 2, Layers: 1}},
	}
}

// randomBatch gives batch distinct images and captions (EOT = 39 last).
func randomBatch(seed uint64, cfg clip.Config, batch int) ([]float32, []int32) {
	rng := rand.New(rand.NewPCG(seed, 1))
	s, l := cfg.VisionCfg.ImageSize, cfg.TextCfg.ContextLength
	pixels := make([]float32, batch*3*s*s)
	for i := range pixels {
		pixels[i] = float32(rng.NormFloat64())
	}
	tokens := make([]int32, batch*l)
	for b := 0; b < batch; b++ {
		tokens[b*l] = 38
		for j := 1; j < l-1; j++ {
			tokens[b*l+j] = int32(1 + rng.IntN(36))
		}
		tokens[b*l+l-1] = 39
	}
	return pixels, tokens
}

// inHalves splits a batch of size pairs into two micro-batches.
func inHalves(pixels []float32, tokens []int32, size int) []MicroBatch {
	p, t := len(pixels)/2, len(tokens)/2
	return []MicroBatch{{pixels[:p], tokens[:t], size / 2}, {pixels[p:], tokens[t:], size / 2}}
}

func TestStepperLearnsAFixedBatch(t *testing.T) {
	be := graphtest.Backend(t)
	cfg := tinyConfig()
	s, err := NewStepper(be, cfg, clip.Init(cfg, 1), Recipe{AdamW: testAdamW}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Finalize()
	pixels, tokens := randomBatch(7, cfg, 8)
	first, last := 0.0, 0.0
	for i := 0; i < 40; i++ {
		st, err := s.TrainStep([]MicroBatch{{pixels, tokens, 8}}, 2e-3)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = st.Loss
			if math.IsNaN(first) || first <= 0 {
				t.Fatalf("initial loss %g", first)
			}
		}
		last = st.Loss
		if st.LogitScale < 1 || st.LogitScale > 100+1e-3 {
			t.Fatalf("logit scale %g outside [1, 100] after the clamp", st.LogitScale)
		}
	}
	if last > first/4 {
		t.Errorf("loss %.3f → %.3f: a model should memorise one batch of 8", first, last)
	}
	if s.Step != 40 {
		t.Errorf("step counter %d, want 40", s.Step)
	}
}

var testAdamW = AdamW{Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.2, ClipNorm: 1}

// TestAccumulationMatchesOneLargeBatch checks OpenCLIP's accumulation: two
// micro-batches of 4 with cached features give the same update as one
// batch of 8 (the contrastive negatives span the accumulated batch).
func TestAccumulationMatchesOneLargeBatch(t *testing.T) {
	be := graphtest.Backend(t)
	cfg := tinyConfig()
	pixels, tokens := randomBatch(11, cfg, 8)
	run := func(accum int, micro []MicroBatch) (weights.StateDict, StepStats) {
		s, err := NewStepper(be, cfg, clip.Init(cfg, 2), Recipe{AdamW: testAdamW, AccumFreq: accum}, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Finalize()
		var st StepStats
		for i := 0; i < 3; i++ {
			if st, err = s.TrainStep(micro, 1e-3); err != nil {
				t.Fatal(err)
			}
		}
		sd, err := s.StateDict()
		if err != nil {
			t.Fatal(err)
		}
		return sd, st
	}
	whole, wholeStats := run(1, []MicroBatch{{pixels, tokens, 8}})
	split, splitStats := run(2, inHalves(pixels, tokens, 8))
	if math.Abs(wholeStats.Loss-splitStats.Loss) > 1e-4 || math.Abs(wholeStats.GradNorm-splitStats.GradNorm) > 1e-3*wholeStats.GradNorm {
		t.Errorf("loss/grad norm: one batch %.6f/%.6f, accumulated %.6f/%.6f", wholeStats.Loss, wholeStats.GradNorm, splitStats.Loss, splitStats.GradNorm)
	}
	worst := 0.0
	for name, w := range whole {
		a, _ := w.Float32s()
		b, _ := split[name].Float32s()
		for i := range a {
			worst = max(worst, math.Abs(float64(a[i]-b[i])))
		}
	}
	if worst > 1e-5 {
		t.Errorf("weights after 3 steps differ by up to %g between one batch of 8 and 2×4 accumulated", worst)
	}
	if worst == 0 && wholeStats.Loss == 0 {
		t.Error("degenerate comparison")
	}
}

// TestLockImageFreezesTheImageTower trains with the image tower locked:
// visual.* must not move, the text tower must.
func TestLockImageFreezesTheImageTower(t *testing.T) {
	be := graphtest.Backend(t)
	cfg := tinyConfig()
	init := clip.Init(cfg, 4)
	s, err := NewStepper(be, cfg, init, Recipe{AdamW: testAdamW, LockImage: true}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Finalize()
	pixels, tokens := randomBatch(5, cfg, 6)
	for i := 0; i < 2; i++ {
		if _, err := s.TrainStep([]MicroBatch{{pixels, tokens, 6}}, 1e-2); err != nil {
			t.Fatal(err)
		}
	}
	after, err := s.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range after {
		moved := !bytes.Equal(w.Data, init[name].Data)
		if strings.HasPrefix(name, "visual.") && moved {
			t.Errorf("%s changed with the image tower locked", name)
		}
		if name == "text_projection" && !moved {
			t.Errorf("%s did not train", name)
		}
	}
	opt, _ := s.OptimizerState()
	if _, ok := opt["exp_avg.visual.proj"]; ok {
		t.Error("a locked image tower should have no optimizer state")
	}
}

func TestScheduleMatchesOpenCLIP(t *testing.T) {
	cos := Schedule{Kind: "cosine", PeakLR: 1, Warmup: 10, Total: 110}
	cases := []struct {
		s    Schedule
		step int
		want float64
	}{
		{cos, 0, 0.1}, {cos, 9, 1}, {cos, 10, 1}, {cos, 60, 0.5}, {cos, 110, 0},
		{Schedule{Kind: "const", PeakLR: 2, Warmup: 4, Total: 10}, 1, 1},
		{Schedule{Kind: "const", PeakLR: 2, Warmup: 4, Total: 10}, 9, 2},
		{Schedule{Kind: "const-cooldown", PeakLR: 1, Warmup: 0, Total: 100, CooldownSteps: 20, CooldownPower: 1, CooldownEnd: 0}, 79, 1},
		{Schedule{Kind: "const-cooldown", PeakLR: 1, Warmup: 0, Total: 100, CooldownSteps: 20, CooldownPower: 1, CooldownEnd: 0}, 90, 0.5},
	}
	for _, c := range cases {
		if got := c.s.LR(c.step); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s step %d: lr %g, want %g", c.s.Kind, c.step, got, c.want)
		}
	}
}

// TestGradCheckpointingTakesTheSameSteps trains 3 steps with and without
// gradient checkpointing, plain and with accumulation: the weights must end
// bit-identical, since only what is stored for the backward pass changes.
func TestGradCheckpointingTakesTheSameSteps(t *testing.T) {
	be := graphtest.Backend(t)
	cfg := tinyConfig()
	cfg.VisionCfg.Layers, cfg.TextCfg.Layers = 2, 2
	pixels, tokens := randomBatch(13, cfg, 8)
	for _, accum := range []int{1, 2} {
		micro := []MicroBatch{{pixels, tokens, 8}}
		if accum == 2 {
			micro = inHalves(pixels, tokens, 8)
		}
		run := func(checkpointing bool) weights.StateDict {
			cfg := cfg
			cfg.GradCheckpointing = checkpointing
			s, err := NewStepper(be, cfg, clip.Init(cfg, 3), Recipe{AdamW: testAdamW, AccumFreq: accum}, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Finalize()
			if s.modelCfg.GradCheckpointing != checkpointing {
				t.Fatalf("the model's gradient checkpointing (%v) did not reach the step graphs", checkpointing)
			}
			for range 3 {
				if _, err := s.TrainStep(micro, 1e-3); err != nil {
					t.Fatal(err)
				}
			}
			sd, err := s.StateDict()
			if err != nil {
				t.Fatal(err)
			}
			return sd
		}
		plain, checkpointed := run(false), run(true)
		for name, w := range plain {
			if !bytes.Equal(w.Data, checkpointed[name].Data) {
				t.Errorf("accum %d: %s differs with gradient checkpointing", accum, name)
			}
		}
	}
}
