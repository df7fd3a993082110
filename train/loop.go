package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/weights"
	"github.com/gomlx/compute"
)

// Batch is one training batch as the data stage delivers it.
type Batch struct {
	// Pixels are preprocessed images, row-major [Size,3,S,S].
	Pixels []float32
	// Tokens are caption ids, row-major [Size,context_length].
	Tokens []int32
	// Size is the number of pairs.
	Size int
	// Position is the stream position right after this batch, stored in
	// checkpoints so a resumed run continues with the next batch.
	Position json.RawMessage
}

// Source delivers batches starting at a stream position (nil: the start).
type Source interface {
	Batches(ctx context.Context, from json.RawMessage) iter.Seq2[Batch, error]
}

// Options configure a run.
type Options struct {
	// Output is the run directory (checkpoints/, metrics.jsonl).
	Output string
	// Steps is the total number of optimiser steps.
	Steps int
	// Schedule and Recipe are OpenCLIP's recipe; the schedule counts
	// optimiser steps, each of Recipe.AccumFreq micro-batches.
	Schedule Schedule
	Recipe   Recipe
	// CheckpointEvery saves every N steps (0: only at the end); Keep is how
	// many to keep (0: all).
	CheckpointEvery, Keep int
	// LogEvery appends a metrics line every N steps.
	LogEvery int
	// EvalEvery evaluates every N steps (0: only at the end, if Hooks.Evaluate is set).
	EvalEvery int
	// Seed is recorded in checkpoints.
	Seed uint64
	// RunConfig is recorded in checkpoints (the full run configuration, JSON).
	RunConfig json.RawMessage
	// Preprocess is the model's image preprocessing, recorded in
	// checkpoints (zero: OpenAI's); the data stage should use the same.
	Preprocess clip.PreprocessConfig
	// Init are the starting weights of a new run (random or --pretrained).
	Init weights.StateDict
	// Resume, when set, continues from a checkpoint instead of Init.
	Resume *Checkpoint
}

// StepReport is what the loop tells Hooks.OnStep after every step.
type StepReport struct {
	Step, Total   int
	Stats         StepStats
	SamplesPerSec float64
	// DataWait is the share of wall time since the previous step spent
	// waiting for the data stage.
	DataWait float64
	// Data is the data stage's own report (Hooks.Data), zero without one.
	Data DataReport
}

// DataReport is what the data stage says about itself, so that a user sees
// which side is the bottleneck: when SamplesPerSec is above the training
// samples/s, the step is the limit; when it is close and DataWait is high,
// the data are.
type DataReport struct {
	// SamplesPerSec is what the data stage could deliver if the step never
	// held it back (0: unknown).
	SamplesPerSec float64
	// Skipped is the number of samples skipped so far as unusable
	// (undecodable images, missing captions, ...).
	Skipped int64
}

// Hooks let the command observe and extend the loop.
type Hooks struct {
	// OnStep is called after every step (progress bar).
	OnStep func(StepReport)
	// Evaluate runs an evaluation on the current weights; its metrics are
	// written to metrics.jsonl.
	Evaluate func(ctx context.Context, step int, enc *clip.Encoder) (map[string]float64, error)
	// OnCheckpoint is called after each checkpoint is written.
	OnCheckpoint func(dir string, step int)
	// DataStats, if set, is logged with each metrics line (the data
	// stage's counters: samples read, skipped by reason, shard errors).
	DataStats func() any
	// Data, if set, is asked after every step for the data stage's own
	// speed and skipped samples, shown with the step and logged.
	Data func() DataReport
}

// Result summarises a finished or interrupted run.
type Result struct {
	// Step is the number of optimiser steps taken in total.
	Step int
	// Loss is the loss of the last step.
	Loss float64
	// Checkpoint is the last checkpoint written.
	Checkpoint string
	// Interrupted is true when the context was cancelled before Steps.
	Interrupted bool
	// EvalInterrupted is true when the context was cancelled during the
	// final evaluation; training was complete and its checkpoint written.
	EvalInterrupted bool
	// Eval holds the last evaluation's metrics.
	Eval map[string]float64
	// MeanStepTime is the mean duration of the optimiser steps of this
	// session, without its first (which compiles the step); 0 when there
	// was no other.
	MeanStepTime time.Duration
	// SessionSteps is the number of optimiser steps this call took (0 for a
	// finished run resumed only to be evaluated).
	SessionSteps int
}

// ErrNonFinite is wrapped by the error returned when the loss diverges.
var ErrNonFinite = errors.New("loss is not finite")

// Loop trains until opts.Steps, a non-finite loss or ctx is cancelled. On
// cancellation it finishes the step in flight, writes a checkpoint and
// returns a Result with Interrupted set and a nil error.
func Loop(ctx context.Context, backend compute.Backend, modelCfg clip.Config, opts Options, data Source, hooks Hooks) (*Result, error) {
	if err := opts.Schedule.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Output, 0o755); err != nil {
		return nil, err
	}
	init, optState, step := opts.Init, weights.StateDict(nil), 0
	var position json.RawMessage
	if r := opts.Resume; r != nil {
		init, optState, step, position = r.Weights, r.Optimizer, r.State.Step, r.State.Stream
		if optState == nil {
			return nil, fmt.Errorf("resume: the checkpoint has no optimizer state (it is a weights-only export; use it as pretrained weights instead)")
		}
	}
	stepper, err := NewStepper(backend, modelCfg, init, opts.Recipe, optState, step)
	if err != nil {
		return nil, err
	}
	defer stepper.Finalize()

	metrics, err := os.OpenFile(filepath.Join(opts.Output, MetricsFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer metrics.Close()
	logLine := func(fields map[string]any) error {
		line, err := json.Marshal(fields)
		if err != nil {
			return err
		}
		_, err = metrics.Write(append(line, '\n'))
		return err
	}

	res := &Result{Step: stepper.Step}
	var encoder *clip.Encoder
	evaluate := func(ctx context.Context) error {
		if hooks.Evaluate == nil {
			return nil
		}
		if encoder == nil {
			if encoder, err = clip.NewEncoder(backend, stepper.Store(), modelCfg); err != nil {
				return err
			}
		}
		m, err := hooks.Evaluate(ctx, stepper.Step, encoder)
		if err != nil {
			return fmt.Errorf("evaluation at step %d: %w", stepper.Step, err)
		}
		res.Eval = m
		fields := map[string]any{"step": stepper.Step, "kind": "eval"}
		for k, v := range m {
			fields[k] = v
		}
		return logLine(fields)
	}
	defer func() {
		if encoder != nil {
			encoder.Finalize()
		}
	}()
	save := func() error {
		ckpt := &Checkpoint{ModelConfig: modelCfg, Preprocess: opts.Preprocess, State: State{Step: stepper.Step, Stream: position, RunConfig: opts.RunConfig, Seed: opts.Seed, Loss: res.Loss}}
		if ckpt.Weights, err = stepper.StateDict(); err != nil {
			return err
		}
		if ckpt.Optimizer, err = stepper.OptimizerState(); err != nil {
			return err
		}
		dir, err := Save(opts.Output, opts.Keep, ckpt)
		if err != nil {
			return err
		}
		res.Checkpoint = dir
		if hooks.OnCheckpoint != nil {
			hooks.OnCheckpoint(dir, stepper.Step)
		}
		return nil
	}

	if stepper.Step >= opts.Steps { // a finished run resumed: nothing to train, evaluate it
		res.Loss, res.Checkpoint = opts.Resume.State.Loss, opts.Resume.Dir
		return res, finalEvaluation(ctx, res, evaluate)
	}
	// The data stage gets its own context: cancelling ctx (Ctrl-C) must not
	// tear down a batch mid-flight; the loop stops between steps instead.
	dataCtx, stopData := context.WithCancel(context.Background())
	defer stopData()
	var stepTime time.Duration
	var timedSteps int
	accum := max(opts.Recipe.AccumFreq, 1)
	micro := make([]MicroBatch, 0, accum)
	dev := make([]deviceBatch, 0, accum)
	defer func() {
		for _, d := range dev { // uploads of a step that never ran
			d.release()
		}
	}()
	var waited time.Duration
	waitStart := time.Now()
	// The next step's batches are read and copied to the device while the
	// current step runs (prefetch.go).
	for batch, err := range prefetch(dataCtx, data, position, accum, stepper.upload) {
		if err != nil {
			return res, fmt.Errorf("data: %w", err)
		}
		micro, dev = append(micro, batch.micro()), append(dev, batch.dev)
		if len(micro) < accum {
			continue
		}
		waited += time.Since(waitStart)
		lr := opts.Schedule.LR(stepper.Step)
		stats, err := stepper.step(micro, dev, lr) // releases dev
		micro, dev = micro[:0], dev[:0]
		if err != nil {
			return res, err
		}
		if math.IsNaN(stats.Loss) || math.IsInf(stats.Loss, 0) {
			last := res.Checkpoint
			if last == "" {
				last = "none written yet"
			}
			return res, fmt.Errorf("step %d: %w (%g); stopping without saving, last good checkpoint: %s", stepper.Step, ErrNonFinite, stats.Loss, last)
		}
		if res.SessionSteps++; res.SessionSteps > 1 { // the session's first step compiles
			stepTime += stats.Duration
			timedSteps++
		}
		position = batch.Position
		res.Step, res.Loss = stepper.Step, stats.Loss
		wall := waited + stats.Duration
		samples := batch.Size * accum
		report := StepReport{Step: stepper.Step, Total: opts.Steps, Stats: stats,
			SamplesPerSec: float64(samples) / wall.Seconds(), DataWait: waited.Seconds() / wall.Seconds()}
		if hooks.Data != nil {
			report.Data = hooks.Data()
		}
		if hooks.OnStep != nil {
			hooks.OnStep(report)
		}
		if stepper.Step%opts.LogEvery == 0 || stepper.Step == opts.Steps {
			fields := map[string]any{"step": stepper.Step, "kind": "train", "loss": stats.Loss, "lr": lr,
				"logit_scale": stats.LogitScale, "grad_norm": stats.GradNorm, "samples_per_s": report.SamplesPerSec,
				"data_wait": report.DataWait, "step_ms": float64(stats.Duration.Microseconds()) / 1000}
			if hooks.Data != nil {
				fields[dataRate], fields["skipped"] = report.Data.SamplesPerSec, report.Data.Skipped
			}
			if hooks.DataStats != nil {
				fields["data"] = hooks.DataStats()
			}
			if err := logLine(fields); err != nil {
				return res, err
			}
		}
		done := stepper.Step >= opts.Steps
		interrupted := ctx.Err() != nil && !done
		if opts.EvalEvery > 0 && stepper.Step%opts.EvalEvery == 0 && !done && !interrupted {
			if err := evaluate(ctx); err != nil {
				return res, err
			}
		}
		if done || interrupted || (opts.CheckpointEvery > 0 && stepper.Step%opts.CheckpointEvery == 0) {
			if err := save(); err != nil {
				return res, err
			}
		}
		if interrupted {
			res.Interrupted = true
			break
		}
		if done {
			break
		}
		waited = 0
		waitStart = time.Now()
	}
	if !res.Interrupted && res.Step < opts.Steps {
		return res, fmt.Errorf("data: the stream ended after step %d of %d", res.Step, opts.Steps)
	}
	if timedSteps > 0 {
		res.MeanStepTime = stepTime / time.Duration(timedSteps)
	}
	if !res.Interrupted && res.Step >= opts.Steps {
		return res, finalEvaluation(ctx, res, evaluate)
	}
	return res, nil
}

// finalEvaluation runs the evaluation after the last step. The checkpoint
// is written by then, so a cancellation (Ctrl-C, SIGTERM) during it is not
// an error: the result says the evaluation was interrupted.
func finalEvaluation(ctx context.Context, res *Result, evaluate func(context.Context) error) error {
	err := evaluate(ctx)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		res.EvalInterrupted = true
		return nil
	}
	return err
}
