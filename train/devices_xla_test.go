//go:build xla

package train

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/bmca/bmca/backend"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/weights"
	"github.com/gomlx/compute"
)

// XLABackendEnv names the XLA backend the multi-device tests run on, e.g.
// "xla:/abs/pjrt_c_api_cpu_plugin.so" (XLA's CPU plugin, which offers
// several host devices; scripts/multidevice-check.sh installs one) or the
// CUDA plugin on a GPU node. Unset, the tests skip.
const XLABackendEnv = "BMCA_TEST_XLA_BACKEND"

var xlaShared struct {
	once    sync.Once
	backend compute.Backend
	err     error
}

// xlaBackend opens the backend named by XLABackendEnv once per test binary
// and skips unless it has at least devices devices.
func xlaBackend(t *testing.T, devices int) compute.Backend {
	t.Helper()
	cfg := os.Getenv(XLABackendEnv)
	if cfg == "" {
		t.Skipf("set %s to an XLA backend (xla:/abs/path/plugin.so) to run the multi-device tests", XLABackendEnv)
	}
	xlaShared.once.Do(func() { xlaShared.backend, xlaShared.err = backend.Open(cfg) })
	if xlaShared.err != nil {
		t.Fatal(xlaShared.err)
	}
	if have := xlaShared.backend.NumDevices(); have < devices {
		t.Skipf("backend %s has %d devices, the test needs %d", cfg, have, devices)
	}
	return xlaShared.backend
}

// trained is what a few steps leave behind.
type trained struct {
	stats     []StepStats
	weights   weights.StateDict
	optimizer weights.StateDict
}

// trainSteps runs steps optimiser steps of the tiny model, from the same
// initialisation and on the same batches of 8 pairs whatever the recipe.
func trainSteps(t *testing.T, be compute.Backend, recipe Recipe, rt transformer.Runtime, steps int) trained {
	t.Helper()
	cfg := tinyConfig()
	cfg.Runtime = rt
	s, err := NewStepper(be, cfg, clip.Init(cfg, 5), recipe, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Finalize()
	var out trained
	for i := range steps {
		pixels, tokens := randomBatch(uint64(20+i), cfg, 8)
		micro := []MicroBatch{{pixels, tokens, 8}}
		if recipe.AccumFreq == 2 {
			micro = inHalves(pixels, tokens, 8)
		}
		st, err := s.TrainStep(micro, 2e-3)
		if err != nil {
			t.Fatalf("devices %d: %v", recipe.Devices, err)
		}
		out.stats = append(out.stats, st)
	}
	if out.weights, err = s.StateDict(); err != nil {
		t.Fatal(err)
	}
	if out.optimizer, err = s.OptimizerState(); err != nil {
		t.Fatal(err)
	}
	return out
}

// maxDiff is the largest |a-b| over all tensors, relative to max|a| of
// that tensor, and where it occurs ("name[index]").
func maxDiff(t *testing.T, a, b weights.StateDict) (float64, string) {
	t.Helper()
	worst, where := 0.0, ""
	for name, ta := range a {
		x, err := ta.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		y, err := b[name].Float32s()
		if err != nil {
			t.Fatal(err)
		}
		scale := 0.0
		for _, v := range x {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for i := range x {
			if d := math.Abs(float64(x[i])-float64(y[i])) / math.Max(scale, 1e-12); d > worst {
				worst, where = d, fmt.Sprintf("%s[%d]", name, i)
			}
		}
	}
	return worst, where
}

func identical(a, b weights.StateDict) (bool, string) {
	for name, ta := range a {
		if !bytes.Equal(ta.Data, b[name].Data) {
			return false, name
		}
	}
	return len(a) == len(b), ""
}

var meshRecipes = []struct {
	name    string
	recipe  Recipe
	runtime transformer.Runtime
}{
	{"f32", Recipe{AdamW: testAdamW}, transformer.Runtime{}},
	{"f32 accum 2", Recipe{AdamW: testAdamW, AccumFreq: 2}, transformer.Runtime{}},
	{"bf16 checkpointed", Recipe{AdamW: testAdamW}, transformer.Runtime{Precision: transformer.BFloat16Mixed, GradCheckpointing: true}},
}

// TestOneDeviceMeshIsBitIdentical runs the partitioned program on a mesh of
// one device against the plain single-device program: same losses, same
// weights and optimiser state, bit for bit.
func TestOneDeviceMeshIsBitIdentical(t *testing.T) {
	be := xlaBackend(t, 1)
	for _, tc := range meshRecipes {
		t.Run(tc.name, func(t *testing.T) {
			plain := trainSteps(t, be, tc.recipe, tc.runtime, 3)
			r := tc.recipe
			r.Devices = 1
			mesh := trainSteps(t, be, r, tc.runtime, 3)
			for i := range plain.stats {
				if plain.stats[i].Loss != mesh.stats[i].Loss || plain.stats[i].GradNorm != mesh.stats[i].GradNorm {
					t.Errorf("step %d: loss/grad norm %v/%v plain, %v/%v on a one-device mesh", i+1,
						plain.stats[i].Loss, plain.stats[i].GradNorm, mesh.stats[i].Loss, mesh.stats[i].GradNorm)
				}
			}
			if ok, name := identical(plain.weights, mesh.weights); !ok {
				d, _ := maxDiff(t, plain.weights, mesh.weights)
				t.Errorf("weights differ (first: %s; max relative difference %.3g)", name, d)
			}
			if ok, name := identical(plain.optimizer, mesh.optimizer); !ok {
				t.Errorf("optimizer state differs (first: %s)", name)
			}
		})
	}
}

// parityEps replaces AdamW's ε where weights trained on different device
// counts are compared. The attention key bias has a gradient of exactly
// zero (softmax ignores what every key adds equally), so in floats it is
// rounding noise, and Adam with ε = 1e-6 turns any noise into steps of
// ±lr: a different summation order (an all-reduce, or another GPU kernel
// on one device) moves those weights by up to lr per step. With ε = 1e-3
// the noise stays noise and every real gradient still drives its update.
const parityEps = 1e-3

// TestDataParallelMatchesOneDevice trains 3 steps on 2 and on 4 devices and
// on one: the global-batch loss and the update must not depend on the
// device count beyond float rounding (the all-reduce sums in another
// order). A per-device loss (no gather) would be far off: with 8 pairs on
// 4 devices each device would see 2 negatives instead of 8.
func TestDataParallelMatchesOneDevice(t *testing.T) {
	be := xlaBackend(t, 2)
	for _, tc := range meshRecipes {
		t.Run(tc.name, func(t *testing.T) {
			tc.recipe.AdamW.Eps = parityEps
			one := trainSteps(t, be, tc.recipe, tc.runtime, 3)
			lossTol, weightTol := 1e-5, 1e-4
			if tc.runtime.Precision == transformer.BFloat16Mixed {
				// The backward's bf16 products round each device's partial
				// weight gradient to bfloat16 before the all-reduce sums
				// them (as DDP under autocast does): bf16 rounding (2⁻⁸) of
				// the gradients, amplified by Adam where they are small.
				lossTol, weightTol = 2e-3, 3e-2
			}
			for _, n := range []int{2, 4} {
				if n > be.NumDevices() {
					t.Logf("%d devices: skipped, the backend has %d", n, be.NumDevices())
					continue
				}
				r := tc.recipe
				r.Devices = n
				many := trainSteps(t, be, r, tc.runtime, 3)
				for i := range one.stats {
					a, b := one.stats[i], many.stats[i]
					if math.Abs(a.Loss-b.Loss) > lossTol*math.Abs(a.Loss) || math.Abs(a.GradNorm-b.GradNorm) > 10*lossTol*a.GradNorm {
						t.Errorf("%d devices, step %d: loss/grad norm %.7f/%.7f, one device %.7f/%.7f", n, i+1, b.Loss, b.GradNorm, a.Loss, a.GradNorm)
					}
				}
				d, where := maxDiff(t, one.weights, many.weights)
				same, _ := identical(one.weights, many.weights)
				t.Logf("%d devices: step-3 loss %.7f (one device %.7f), weights max relative difference %.3g (%s), bit-identical %v",
					n, many.stats[2].Loss, one.stats[2].Loss, d, where, same)
				if d > weightTol {
					t.Errorf("%d devices: weights after 3 steps differ from one device's by %.3g (relative, %s)", n, d, where)
				}
			}
		})
	}
}

// TestResumeOnAnotherDeviceCount trains 4 steps on 2 devices through the
// loop, resumes the checkpoint on 4 devices (where the backend has them,
// else on one) for 4 more, and compares with 8 steps on one device. The
// resumed stepper must start from the checkpoint's weights and optimiser
// state bit for bit; evaluation during training runs on one device over
// the replicated weights.
func TestResumeOnAnotherDeviceCount(t *testing.T) {
	be := xlaBackend(t, 2)
	cfg := tinyConfig()
	src := newCyclingSource(cfg, 3, 8)
	resumeOn := 4
	if be.NumDevices() < 4 {
		resumeOn = 1
	}
	run := func(devices, steps int, resume *Checkpoint) *Result {
		opts := testOptions(t, cfg, steps)
		opts.Schedule.Total = 8
		opts.Recipe.Devices = devices
		opts.Recipe.AdamW.Eps = parityEps
		opts.Resume = resume
		opts.EvalEvery = 2
		evals := 0
		res, err := Loop(context.Background(), be, cfg, opts, src, Hooks{
			Evaluate: func(_ context.Context, _ int, enc *clip.Encoder) (map[string]float64, error) {
				img, err := enc.EncodeImages(src.pixels[0], 8)
				if err != nil {
					return nil, err
				}
				evals++
				return map[string]float64{"feature0": float64(img[0])}, nil
			},
		})
		if err != nil {
			t.Fatalf("%d devices: %v", devices, err)
		}
		if evals == 0 {
			t.Errorf("%d devices: no evaluation ran", devices)
		}
		return res
	}
	straight := run(0, 8, nil)
	half := run(2, 4, nil)
	ckpt, err := Load(half.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}

	s, err := NewStepper(be, cfg, ckpt.Weights, Recipe{AdamW: AdamW{Beta1: 0.9, Beta2: 0.98, Eps: parityEps, WeightDecay: 0.2, ClipNorm: 1}, Devices: resumeOn}, ckpt.Optimizer, ckpt.State.Step)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := s.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	opt, err := s.OptimizerState()
	if err != nil {
		t.Fatal(err)
	}
	s.Finalize()
	if ok, name := identical(ckpt.Weights, sd); !ok {
		t.Errorf("resumed on %d devices: weight %s is not the checkpoint's", resumeOn, name)
	}
	if ok, name := identical(ckpt.Optimizer, opt); !ok {
		t.Errorf("resumed on %d devices: optimizer state %s is not the checkpoint's", resumeOn, name)
	}

	resumed := run(resumeOn, 8, ckpt)
	a, err := Load(straight.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(resumed.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	d, where := maxDiff(t, a.Weights, b.Weights)
	t.Logf("8 steps on one device vs 4 on 2 + 4 on %d: loss %.7f vs %.7f, weights max relative difference %.3g (%s)",
		resumeOn, straight.Loss, resumed.Loss, d, where)
	if d > 1e-4 || math.Abs(straight.Loss-resumed.Loss) > 1e-4 {
		t.Errorf("resumed run differs from the straight one: loss %.7f vs %.7f, weights by %.3g (%s)", resumed.Loss, straight.Loss, d, where)
	}
}

// TestUnevenBatchIsRefused checks a batch that does not split over the
// devices fails with a message that says so, instead of dropping pairs.
func TestUnevenBatchIsRefused(t *testing.T) {
	be := xlaBackend(t, 2)
	cfg := tinyConfig()
	s, err := NewStepper(be, cfg, clip.Init(cfg, 1), Recipe{AdamW: testAdamW, Devices: 2}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Finalize()
	pixels, tokens := randomBatch(1, cfg, 5)
	_, err = s.TrainStep([]MicroBatch{{pixels, tokens, 5}}, 1e-3)
	if err == nil || !strings.Contains(err.Error(), "does not split evenly over 2 devices") {
		t.Errorf("batch of 5 on 2 devices: error %v", err)
	}
	if _, err := NewStepper(be, cfg, clip.Init(cfg, 1), Recipe{AdamW: testAdamW, Devices: be.NumDevices() + 1}, nil, 0); err == nil {
		t.Errorf("a mesh larger than the backend's %d devices was accepted", be.NumDevices())
	}
}

// loweredChildEnv marks the child process of TestLoweredStepAllReducesGradients.
const loweredChildEnv = "BMCA_TEST_LOWERED_CHILD"

// TestLoweredStepAllReducesGradients compiles the fused step for 2 devices
// with XLA dumping its programs, and reads the partitioned program XLA
// runs: it must all-reduce at least one float per trained parameter (the
// gradients) over the two devices. XLA reads XLA_FLAGS once per process,
// so the compilation happens in a child process of the test binary.
func TestLoweredStepAllReducesGradients(t *testing.T) {
	be := xlaBackend(t, 2)
	cfg := tinyConfig()
	if os.Getenv(loweredChildEnv) != "" {
		trainSteps(t, be, Recipe{AdamW: testAdamW, Devices: 2}, transformer.Runtime{}, 1)
		return
	}
	dump := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoweredStepAllReducesGradients$", "-test.count=1")
	cmd.Env = append(os.Environ(), loweredChildEnv+"=1", "XLA_FLAGS=--xla_dump_to="+dump+" --xla_dump_hlo_as_text "+os.Getenv("XLA_FLAGS"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	// The child compiles one program, the fused step: every variable has
	// its value already, so nothing else runs.
	files, err := filepath.Glob(filepath.Join(dump, "*after_optimizations.txt"))
	if err != nil || len(files) != 1 {
		t.Fatalf("want the one optimised program of the fused step in the dump, found %v (%v)", files, err)
	}
	text, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	hlo := string(text)
	if !strings.Contains(hlo, "num_partitions=2") {
		t.Errorf("the fused step was not compiled for 2 partitions")
	}
	reduced, ops := collectiveElements(hlo, "all-reduce")
	gathered, gathers := collectiveElements(hlo, "all-gather")
	trainedParams := clip.NumParams(cfg)
	t.Logf("partitioned fused step: %d all-reduces over %d floats (%d trained parameters), %d all-gathers of %d floats",
		ops, reduced, trainedParams, gathers, gathered)
	if reduced < trainedParams {
		t.Errorf("the step all-reduces %d floats in %d ops; the gradients alone are %d", reduced, ops, trainedParams)
	}
}

// collectiveElements sums the elements of the results of every op named
// kind (e.g. "all-reduce") in an HLO text module, and counts the ops.
func collectiveElements(hlo, kind string) (elements, ops int) {
	opRe := regexp.MustCompile(`= (\([^)]*\)|\S+) ` + regexp.QuoteMeta(kind) + `(-start)?\(`)
	shapeRe := regexp.MustCompile(`[a-z0-9]+\[([0-9,]*)\]`)
	for _, m := range opRe.FindAllStringSubmatch(hlo, -1) {
		ops++
		for _, s := range shapeRe.FindAllStringSubmatch(m[1], -1) {
			n := 1
			for _, d := range strings.Split(s[1], ",") {
				if d == "" {
					continue
				}
				v, _ := strconv.Atoi(d)
				n *= v
			}
			elements += n
		}
	}
	return elements, ops
}
