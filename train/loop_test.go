package train

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"iter"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/weights"
)

// cyclingSource serves a fixed set of batches in order, forever; its
// position is the index of the next batch.
type cyclingSource struct {
	pixels [][]float32
	tokens [][]int32
	size   int
}

func newCyclingSource(cfg clip.Config, batches, size int) *cyclingSource {
	s := &cyclingSource{size: size}
	for i := 0; i < batches; i++ {
		p, tk := randomBatch(uint64(100+i), cfg, size)
		s.pixels, s.tokens = append(s.pixels, p), append(s.tokens, tk)
	}
	return s
}

func (s *cyclingSource) Batches(ctx context.Context, from json.RawMessage) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		next := 0
		if from != nil {
			n, err := strconv.Atoi(string(from))
			if err != nil {
				yield(Batch{}, err)
				return
			}
			next = n
		}
		for ctx.Err() == nil {
			i := next % len(s.pixels)
			next++
			if !yield(Batch{Pixels: s.pixels[i], Tokens: s.tokens[i], Size: s.size, Position: json.RawMessage(strconv.Itoa(next))}, nil) {
				return
			}
		}
	}
}

func testOptions(t *testing.T, cfg clip.Config, steps int) Options {
	return Options{
		Output:   t.TempDir(),
		Steps:    steps,
		Schedule: Schedule{Kind: "cosine", PeakLR: 2e-3, Warmup: 3, Total: 20},
		Recipe:   Recipe{AdamW: testAdamW},
		Keep:     2, LogEvery: 1, Seed: 3,
		Init: clip.Init(cfg, 3),
	}
}

// TestResumeIsBitIdentical trains 20 steps straight, and 10 steps, a
// checkpoint round trip through disk, then 10 more; the final weights and
// optimizer state must be equal bit for bit, in f32 and in bf16-mixed with
// gradient checkpointing.
func TestResumeIsBitIdentical(t *testing.T) {
	be := graphtest.Backend(t)
	cfg := tinyConfig()
	src := newCyclingSource(cfg, 3, 6)
	for _, tc := range []struct {
		name    string
		runtime transformer.Runtime
	}{
		{"f32", transformer.Runtime{}},
		{"bf16 checkpointed", transformer.Runtime{Precision: transformer.BFloat16Mixed, GradCheckpointing: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := cfg
			cfg.Runtime = tc.runtime
			straight := testOptions(t, cfg, 20)
			resStraight, err := Loop(context.Background(), be, cfg, straight, src, Hooks{})
			if err != nil {
				t.Fatal(err)
			}

			split := testOptions(t, cfg, 10)
			split.Schedule.Total = 20
			if _, err := Loop(context.Background(), be, cfg, split, src, Hooks{}); err != nil {
				t.Fatal(err)
			}
			ckpt, err := Load(split.Output)
			if err != nil {
				t.Fatal(err)
			}
			if ckpt.State.Step != 10 || string(ckpt.State.Stream) != "10" {
				t.Fatalf("checkpoint state step %d position %s, want 10 and 10", ckpt.State.Step, ckpt.State.Stream)
			}
			split.Steps, split.Resume = 20, ckpt
			resSplit, err := Loop(context.Background(), be, cfg, split, src, Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			if resSplit.Step != 20 || resStraight.Step != 20 {
				t.Fatalf("steps %d and %d, want 20", resSplit.Step, resStraight.Step)
			}
			for _, name := range []string{WeightsFile, OptimizerFile} {
				a, _, err := weights.ReadFile(filepath.Join(resStraight.Checkpoint, name))
				if err != nil {
					t.Fatal(err)
				}
				b, _, err := weights.ReadFile(filepath.Join(resSplit.Checkpoint, name))
				if err != nil {
					t.Fatal(err)
				}
				for k, ta := range a {
					if !bytes.Equal(ta.Data, b[k].Data) {
						t.Errorf("%s: %s differs between the straight and the resumed run", name, k)
					}
				}
			}
			if resStraight.Loss >= 1.0 {
				t.Errorf("final loss %.3f: three batches of six should be nearly memorised after 20 steps", resStraight.Loss)
			}
		})
	}
}

// TestCheckpointRoundTripGivesIdenticalOutputs saves a trained model and
// checks a fresh encoder over the loaded weights returns the same features.
func TestCheckpointRoundTripGivesIdenticalOutputs(t *testing.T) {
	be := graphtest.Backend(t)
	cfg := tinyConfig()
	src := newCyclingSource(cfg, 2, 4)
	opts := testOptions(t, cfg, 5)
	var before []float32
	pixels, tokens := src.pixels[0], src.tokens[0]
	opts.Keep = 1
	res, err := Loop(context.Background(), be, cfg, opts, src, Hooks{
		Evaluate: func(_ context.Context, _ int, enc *clip.Encoder) (map[string]float64, error) {
			img, err := enc.EncodeImages(pixels, 4)
			if err != nil {
				return nil, err
			}
			txt, err := enc.EncodeTexts(tokens, 4)
			if err != nil {
				return nil, err
			}
			before = append(img, txt...)
			return map[string]float64{"checked": 1}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if before == nil {
		t.Fatal("evaluation hook did not run at the end of training")
	}
	ckpt, err := Load(res.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	store, err := clip.NewStore(ckpt.ModelConfig, ckpt.Weights)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := clip.NewEncoder(be, store, ckpt.ModelConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Finalize()
	img, _ := enc.EncodeImages(pixels, 4)
	txt, _ := enc.EncodeTexts(tokens, 4)
	after := append(img, txt...)
	for i := range before {
		if before[i] != after[i] {
			t.Fatalf("feature %d: %g before saving, %g after loading", i, before[i], after[i])
		}
	}
	entries, _ := os.ReadDir(filepath.Join(opts.Output, CheckpointsDir))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != LatestFile || names[1] != StepDirName(5) {
		t.Errorf("checkpoints dir holds %v, want [%s %s] (keep=1, no partial dirs)", names, LatestFile, StepDirName(5))
	}
}

// TestInterruptSavesAndStops cancels the context during training: the loop
// must finish the step, write a checkpoint and report the interruption.
func TestInterruptSavesAndStops(t *testing.T) {
	be := graphtest.Backend(t)
	cfg := tinyConfig()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := testOptions(t, cfg, 1000)
	res, err := Loop(ctx, be, cfg, opts, newCyclingSource(cfg, 2, 4), Hooks{OnStep: func(r StepReport) {
		if r.Step == 3 {
			cancel()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Interrupted || res.Step != 3 {
		t.Fatalf("result %+v: want interrupted at step 3", res)
	}
	ckpt, err := Load(opts.Output)
	if err != nil {
		t.Fatal(err)
	}
	if ckpt.State.Step != 3 {
		t.Errorf("latest checkpoint is at step %d, want 3", ckpt.State.Step)
	}
}

func TestPlotMetricsDrawsTheRun(t *testing.T) {
	dir := t.TempDir()
	lines := `{"kind":"train","step":1,"loss":4.1,"lr":0.001,"samples_per_s":50}
{"kind":"eval","step":1,"modality/acc1":0.5}
{"kind":"train","step":2,"loss":3.5,"lr":0.002,"samples_per_s":60}
`
	if err := os.WriteFile(filepath.Join(dir, MetricsFile), []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := PlotMetrics(dir); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, PlotFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("metrics.png is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 500 {
		t.Errorf("plot is %v, want a readable size", b)
	}
	if err := os.WriteFile(filepath.Join(dir, MetricsFile), []byte(`{"kind":"eval","step":1,"modality/acc1":0.5}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := PlotMetrics(dir); !errors.Is(err, ErrNothingToPlot) {
		t.Errorf("a metrics file without training lines: %v, want ErrNothingToPlot", err)
	}
	if err := os.WriteFile(filepath.Join(dir, MetricsFile), []byte("{not json\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := PlotMetrics(dir); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a corrupt metrics file should be reported with its line, got %v", err)
	}
}

// nanAfter serves good batches, then batches of NaN pixels from batch n on.
type nanAfter struct {
	*cyclingSource
	n int
}

func (s nanAfter) Batches(ctx context.Context, from json.RawMessage) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		i := 0
		for b, err := range s.cyclingSource.Batches(ctx, from) {
			if i++; i > s.n {
				bad := make([]float32, len(b.Pixels))
				for j := range bad {
					bad[j] = float32(math.NaN())
				}
				b.Pixels = bad
			}
			if !yield(b, err) {
				return
			}
		}
	}
}

// TestNonFiniteLossStopsAndKeepsTheLastGoodCheckpoint feeds NaN pixels from
// step 3 on: the run must stop with ErrNonFinite, name the last good
// checkpoint, and leave that checkpoint as latest.
func TestNonFiniteLossStopsAndKeepsTheLastGoodCheckpoint(t *testing.T) {
	be := graphtest.Backend(t)
	cfg := tinyConfig()
	opts := testOptions(t, cfg, 10)
	opts.CheckpointEvery = 2
	res, err := Loop(context.Background(), be, cfg, opts, nanAfter{newCyclingSource(cfg, 2, 4), 2}, Hooks{})
	if !errors.Is(err, ErrNonFinite) {
		t.Fatalf("error %v, want ErrNonFinite", err)
	}
	if !strings.Contains(err.Error(), StepDirName(2)) {
		t.Errorf("error %q does not name the last good checkpoint", err)
	}
	ckpt, lerr := Load(opts.Output)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if ckpt.State.Step != 2 || res.Step != 2 {
		t.Errorf("latest checkpoint at step %d (result step %d), want 2", ckpt.State.Step, res.Step)
	}
	for name, w := range ckpt.Weights {
		v, _ := w.Float32s()
		for _, x := range v {
			if math.IsNaN(float64(x)) {
				t.Fatalf("%s holds NaN in the kept checkpoint", name)
			}
		}
	}
}

// stallingSource serves n batches of src, then gives nothing more until its
// context ends, as a stalled download or a source that never fills a batch
// does; reaching the stall calls stalled.
type stallingSource struct {
	src     *cyclingSource
	n       int
	stalled func()
}

func (s *stallingSource) Batches(ctx context.Context, from json.RawMessage) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		i := 0
		for b, err := range s.src.Batches(ctx, from) {
			if i == s.n {
				break
			}
			if !yield(b, err) {
				return
			}
			i++
		}
		s.stalled()
		<-ctx.Done()
	}
}

// loopOrTimeout runs Loop, failing the test instead of hanging when it
// does not return.
func loopOrTimeout(t *testing.T, ctx context.Context, opts Options, src Source) *Result {
	t.Helper()
	cfg := tinyConfig()
	type outcome struct {
		res *Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := Loop(ctx, graphtest.Backend(t), cfg, opts, src, Hooks{})
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			t.Fatal(o.err)
		}
		return o.res
	case <-time.After(2 * time.Minute):
		t.Fatal("Loop did not return after its context was cancelled while it waited for data")
		return nil
	}
}

// TestInterruptWhileWaitingForData: Ctrl-C while the loop waits for a
// batch that does not come must still stop the run. Before any step there
// is nothing to save; after some, the last step's weights are saved.
func TestInterruptWhileWaitingForData(t *testing.T) {
	cfg := tinyConfig()
	t.Run("before the first batch", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		opts := testOptions(t, cfg, 10)
		res := loopOrTimeout(t, ctx, opts, &stallingSource{src: newCyclingSource(cfg, 2, 4), n: 0, stalled: cancel})
		if !res.Interrupted || res.Step != 0 || res.Checkpoint != "" {
			t.Errorf("result %+v: want interrupted at step 0 with no checkpoint", res)
		}
	})
	t.Run("after two steps", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		opts := testOptions(t, cfg, 10)
		opts.CheckpointEvery = 100
		res := loopOrTimeout(t, ctx, opts, &stallingSource{src: newCyclingSource(cfg, 2, 4), n: 2, stalled: cancel})
		if !res.Interrupted || res.Step != 2 {
			t.Fatalf("result %+v: want interrupted at step 2", res)
		}
		ckpt, err := Load(opts.Output)
		if err != nil {
			t.Fatal(err)
		}
		if ckpt.State.Step != 2 {
			t.Errorf("latest checkpoint is at step %d, want 2", ckpt.State.Step)
		}
	})
}
