// Command bench measures training-step speed of a CLIP model on a backend
// with random data: milliseconds per step, samples/s, achieved GFLOP/s
// (from an analytic FLOP count) and peak resident memory. It is what the
// GPU check script runs, and how CPU speed is tracked between versions.
//
//	go run ./cmd/bench --model tiny --batch-size 64 --steps 10
//	go run ./cmd/bench --model small --batch-size 64 --steps 3
//	go run ./cmd/bench --model ViT-B-16 --batch-size 256 --precision bf16 --backend xla:…/xla_cuda_plugin.so
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/bmca/bmca/configs"
	"github.com/bmca/bmca/internal/cli"
	"github.com/bmca/bmca/internal/cli/cliflag"
	"github.com/bmca/bmca/internal/cputime"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/textenc"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/vit"
	"github.com/bmca/bmca/train"
	"github.com/gomlx/compute"
	"k8s.io/klog/v2"
)

// small is the CPU reference config of the training-engine issue: embed
// 256; vision 64 px, patch 8, width 256, 4 layers; text 77 × 256, 4 heads, 4 layers.
var small = clip.Config{
	EmbedDim:  256,
	VisionCfg: clip.VisionConfig{Config: vit.Config{ImageSize: 64, PatchSize: 8, Width: 256, Layers: 4, HeadWidth: 64}},
	TextCfg:   clip.TextConfig{Config: textenc.Config{ContextLength: 77, VocabSize: 49408, Width: 256, Heads: 4, Layers: 4}},
}

// options are the command's flags.
type options struct {
	modelName, backendCfg, profile string
	batch, steps, accum, devices   int
	precision                      transformer.Precision
	jsonOut, gradCheckpointing     bool
	program, logCompile            bool
}

func main() {
	var o options
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	fs.StringVar(&o.modelName, "model", "tiny", "model `NAME`: \"small\" or a built-in config ("+strings.Join(configs.ModelNames(), ", ")+")")
	cliflag.BatchSize(fs, &o.batch, 64, "image–text pairs per step (`N`) over all devices, as train.batch_size")
	fs.IntVar(&o.steps, "steps", 5, "timed steps (`N`), after one untimed step that compiles")
	fs.IntVar(&o.accum, "accum", 1, "micro-batches per step (`N`), OpenCLIP's accum_freq")
	fs.IntVar(&o.devices, "devices", 0, "devices (`N`) the step is split over, data-parallel, as train.devices: 0 (the default, as train's) is every device of the backend; --batch-size is the global batch")
	cliflag.Precision(fs, &o.precision)
	fs.BoolVar(&o.gradCheckpointing, "grad-checkpointing", false, "recompute each residual block in the backward pass, as train.grad_checkpointing")
	cliflag.Backend(fs, &o.backendCfg)
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON object instead of text")
	fs.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of the timed steps to `FILE` (go tool pprof)")
	fs.BoolVar(&o.logCompile, "log-compile", false, "log the XLA backend's compilation of the step (compile time and the program's on-device memory: code, inputs, outputs, temporaries) to stderr; the timed steps are not logged")
	fs.BoolVar(&o.program, "program", false, "only build the step's graph and print what it computes (matrix products by dtype, conversions, transposes) instead of timing it; needs no accelerator")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: bench [--model NAME] [--batch-size N] [--steps N] [--accum N] [--devices N] [--precision MODE] [--backend CONFIG] [--json]\n\n"+
			"Times training steps of a CLIP model on random data: ms/step, samples/s, GFLOP/s, peak memory.\n"+
			"The first step compiles and is timed apart.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		cli.Fatal("bench", fmt.Errorf("unexpected arguments %q (flags only; see --help)", fs.Args()))
	}
	if err := run(o); err != nil {
		cli.Fatal("bench", err)
	}
}

func run(o options) error {
	modelName, batch, steps, accum := o.modelName, o.batch, o.steps, o.accum
	cfg := small
	if modelName != "small" {
		data, err := configs.Model(modelName)
		if err != nil {
			return err
		}
		if cfg, err = clip.ParseConfigJSON(data); err != nil {
			return err
		}
	}
	if batch < 2 || steps < 1 || accum < 1 {
		return fmt.Errorf("--batch-size must be ≥ 2, --steps and --accum ≥ 1")
	}
	be, err := cli.OpenBackend(o.backendCfg, o.precision)
	if err != nil {
		return err
	}
	devices, mesh, err := train.MeshSize(be, o.devices)
	if err != nil {
		return fmt.Errorf("--devices: %w", err)
	}
	if batch%devices != 0 {
		return fmt.Errorf("--batch-size %d does not split over %d devices; use a multiple of %d (or set --devices)", batch, devices, devices)
	}
	cfg.Runtime = transformer.Runtime{Precision: o.precision, GradCheckpointing: o.gradCheckpointing}
	stepper, err := train.NewStepper(be, cfg, clip.Init(cfg, 1),
		train.Recipe{AdamW: train.AdamW{Beta1: 0.9, Beta2: 0.98, Eps: 1e-6, WeightDecay: 0.2, ClipNorm: 1}, AccumFreq: accum, Devices: mesh}, nil, 0)
	if err != nil {
		return err
	}
	defer stepper.Finalize()
	if o.program {
		summary, err := stepper.Program(batch)
		if err != nil {
			return err
		}
		fmt.Printf("model %s, batch %d, %s, graph built for backend %s\n%s", modelName, batch, o.precision, be.Description(), summary.Table())
		return nil
	}
	attention, err := attentionKernels(be, cfg, o.precision)
	if err != nil {
		return err
	}
	micro := randomMicroBatches(cfg, batch, accum)
	if o.logCompile {
		setXLALogging(1) // the backend logs through klog at verbosity 1
	}
	start := time.Now()
	if _, err := stepper.TrainStep(micro, 1e-5); err != nil {
		return err
	}
	first := time.Since(start)
	if o.logCompile {
		setXLALogging(0)
	}
	if o.profile != "" {
		f, err := os.Create(o.profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start = time.Now()
	cpuStart := cputime.Process()
	for i := 0; i < steps; i++ {
		if _, err := stepper.TrainStep(micro, 1e-5); err != nil {
			return err
		}
	}
	perStep := time.Since(start) / time.Duration(steps)
	cpuPerStep := (cputime.Process() - cpuStart) / time.Duration(steps)
	img, txt := clip.ForwardFLOPs(cfg)
	trainFLOPs := 3 * (img + txt) * float64(batch*accum)
	if accum > 1 {
		trainFLOPs += (img + txt) * float64(batch*accum) // the feature-caching pass
	}
	res := map[string]any{
		"model": modelName, "backend": be.Description(), "batch": batch, "accum": accum, "devices": devices, "precision": o.precision.String(), "attention": attention, "grad_checkpointing": o.gradCheckpointing,
		"params": clip.NumParams(cfg), "first_step_s": first.Seconds(), "step_ms": float64(perStep.Microseconds()) / 1000,
		"cpu_ms_per_step": float64(cpuPerStep.Microseconds()) / 1000,
		"samples_per_s":   float64(batch*accum) / perStep.Seconds(), "gflop_per_step": trainFLOPs / 1e9,
		"gflops": trainFLOPs / perStep.Seconds() / 1e9, "peak_rss_mib": peakRSSMiB(),
	}
	if o.jsonOut {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("model %s (%d params), batch %d × accum %d on %d device(s), %s, attention %s, backend %s\n", modelName, res["params"], batch, accum, devices, o.precision, attention, be.Description())
	fmt.Printf("first step (compiles) %.2fs; %.1f ms/step (%.1f ms CPU), %.1f samples/s, %.1f GFLOP/step, %.2f GFLOP/s, peak RSS %.0f MiB\n",
		first.Seconds(), res["step_ms"], res["cpu_ms_per_step"], res["samples_per_s"], res["gflop_per_step"], res["gflops"], res["peak_rss_mib"])
	return nil
}

// attentionKernels says which attention each tower gets: "fused" (the
// backend's kernel, flash attention on CUDA) or "decomposed".
func attentionKernels(be compute.Backend, cfg clip.Config, p transformer.Precision) (string, error) {
	v, t := cfg.VisionCfg.WithDefaults(), cfg.TextCfg.WithDefaults()
	kind := func(heads, seq, headDim int, causal bool) (string, error) {
		fused, err := transformer.UsesFusedAttention(be, p, heads, seq, headDim, causal)
		if fused {
			return "fused", err
		}
		return "decomposed", err
	}
	image, err := kind(v.Width/v.HeadWidth, v.Grid()*v.Grid()+1, v.HeadWidth, false)
	if err != nil {
		return "", err
	}
	text, err := kind(t.Heads, t.ContextLength, t.Width/t.Heads, true)
	return "image " + image + ", text " + text, err
}

func randomMicroBatches(cfg clip.Config, batch, accum int) []train.MicroBatch {
	rng := rand.New(rand.NewPCG(1, 2))
	s, l := cfg.VisionCfg.ImageSize, cfg.TextCfg.ContextLength
	eot := int32(cfg.TextCfg.VocabSize - 1)
	out := make([]train.MicroBatch, accum)
	for m := range out {
		pixels := make([]float32, batch*3*s*s)
		for i := range pixels {
			pixels[i] = float32(rng.NormFloat64())
		}
		tokens := make([]int32, batch*l)
		for b := 0; b < batch; b++ {
			n := 5 + rng.IntN(l-6)
			tokens[b*l] = eot - 1
			for j := 1; j < n; j++ {
				tokens[b*l+j] = int32(1 + rng.IntN(int(eot)-2))
			}
			tokens[b*l+n] = eot
		}
		out[m] = train.MicroBatch{Pixels: pixels, Tokens: tokens, Size: batch}
	}
	return out
}

// setXLALogging sets klog's verbosity, through which the XLA backend
// reports compile times and the compiled program's memory.
func setXLALogging(v int) {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("v", strconv.Itoa(v))
}

// peakRSSMiB reads the process's peak resident set (Linux); 0 elsewhere.
func peakRSSMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}
