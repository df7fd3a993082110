package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/weights"
	"github.com/gomlx/compute"
)

// run is one call of Loop: the run's stepper and files, and what this
// session has done so far.
type run struct {
	modelCfg clip.Config
	opts     Options
	hooks    Hooks
	stepper  *Stepper
	metrics  *metricsLog
	eval     *evaluator
	clock    stepClock
	// position is the stream position after the last step taken.
	position json.RawMessage
	// savedStep is the step of the newest checkpoint on disk: the resumed
	// one's, or 0 before a new run's first.
	savedStep int
	res       *Result
}

// startRun prepares a run: the output directory, the stepper (from
// opts.Init, or from opts.Resume's weights, optimiser state and step) and
// the metrics file, appended to.
func startRun(backend compute.Backend, modelCfg clip.Config, opts Options, hooks Hooks) (*run, error) {
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
	metrics, err := openMetrics(opts.Output)
	if err != nil {
		stepper.Finalize()
		return nil, err
	}
	return &run{
		modelCfg: modelCfg, opts: opts, hooks: hooks, stepper: stepper, metrics: metrics,
		eval:     &evaluator{backend: backend, store: stepper.Store(), modelCfg: modelCfg, hook: hooks.Evaluate},
		position: position, savedStep: step,
		res: &Result{Step: stepper.Step},
	}, nil
}

// close releases the compiled graphs and closes the metrics file.
func (r *run) close() error {
	r.eval.close()
	err := r.metrics.Close()
	r.stepper.Finalize()
	return err
}

// session trains what is left of the run and evaluates the result. A
// finished run resumed has nothing left to train and is only evaluated.
func (r *run) session(ctx context.Context, data Source) error {
	if r.stepper.Step >= r.opts.Steps {
		if c := r.opts.Resume; c != nil {
			r.res.Loss, r.res.Checkpoint = c.State.Loss, c.Dir
		}
		return r.finalEvaluation(ctx)
	}
	if err := r.train(ctx, data); err != nil {
		return err
	}
	if r.res.Interrupted {
		return nil
	}
	return r.finalEvaluation(ctx)
}

// train takes optimiser steps until opts.Steps, an interruption, a
// non-finite loss or an error; the end of the data before opts.Steps is
// an error.
func (r *run) train(ctx context.Context, data Source) error {
	// The data stage gets its own context: cancelling ctx (Ctrl-C) must not
	// tear down a batch mid-flight; the loop stops between steps instead.
	dataCtx, stopData := context.WithCancel(context.Background())
	defer stopData()
	accum := max(r.opts.Recipe.AccumFreq, 1)
	next := newPending(accum)
	defer next.release()
	r.clock.startWaiting()
	// The next step's batches are read and copied to the device while the
	// current step runs (prefetch.go).
	// Waiting for data, though, listens to ctx: a stalled or starved source
	// must not keep Ctrl-C from stopping the run.
	for batch, err := range prefetch(dataCtx, ctx.Done(), data, r.position, accum, r.stepper.upload) {
		if err != nil {
			return fmt.Errorf("data: %w", err)
		}
		if next.add(batch) < accum {
			continue
		}
		stop, err := r.step(ctx, next, batch)
		if err != nil {
			return err
		}
		if stop {
			break
		}
	}
	if ctx.Err() != nil && !r.res.Interrupted && r.res.Step < r.opts.Steps {
		// Stopped while waiting for data: the weights are the last step's,
		// saved now unless that step's checkpoint is already written.
		r.res.Interrupted = true
		if r.res.Step > r.savedStep {
			if err := r.save(); err != nil {
				return err
			}
		}
	}
	if !r.res.Interrupted && r.res.Step < r.opts.Steps {
		return fmt.Errorf("data: the stream ended after step %d of %d", r.res.Step, r.opts.Steps)
	}
	r.res.MeanStepTime = r.clock.meanStep()
	return nil
}

// step takes one optimiser step on the micro-batches in next (last is the
// last of them), then reports and logs it, runs the periodic actions and
// applies the stop policy. It says whether the run stops after this step.
func (r *run) step(ctx context.Context, next *pending, last staged) (stop bool, err error) {
	samples := last.Size * len(next.micro)
	r.clock.dataArrived()
	lr := r.opts.Schedule.LR(r.stepper.Step)
	stats, err := r.stepper.step(next.micro, next.dev, lr) // releases the uploads
	next.reset()
	if err != nil {
		return true, err
	}
	if err := r.checkFinite(stats); err != nil {
		return true, err
	}
	r.position = last.Position
	r.res.Step, r.res.Loss = r.stepper.Step, stats.Loss
	report := r.report(stats, samples)
	r.res.SessionSteps = r.clock.steps
	if r.hooks.OnStep != nil {
		r.hooks.OnStep(report)
	}
	if every(r.stepper.Step, r.opts.LogEvery) || r.stepper.Step == r.opts.Steps {
		if err := r.metrics.train(report, r.hooks); err != nil {
			return true, err
		}
	}
	done := r.stepper.Step >= r.opts.Steps
	interrupted := ctx.Err() != nil && !done
	if err := r.periodic(ctx, done, interrupted); err != nil {
		return true, err
	}
	r.res.Interrupted = interrupted
	r.clock.startWaiting()
	return done || interrupted, nil
}

// report is what the step tells Hooks.OnStep and the metrics file.
func (r *run) report(stats StepStats, samples int) StepReport {
	perSec, wait := r.clock.stepped(stats.Duration, samples)
	report := StepReport{Step: r.stepper.Step, Total: r.opts.Steps, Stats: stats, SamplesPerSec: perSec, DataWait: wait}
	if r.hooks.Data != nil {
		report.Data = r.hooks.Data()
	}
	return report
}

// checkFinite is the stop policy for a diverged loss: the step's update
// has already reached the weights, so the run stops without saving and
// names the last good checkpoint.
func (r *run) checkFinite(stats StepStats) error {
	if !math.IsNaN(stats.Loss) && !math.IsInf(stats.Loss, 0) {
		return nil
	}
	last := r.res.Checkpoint
	if last == "" {
		last = "none written yet"
	}
	return fmt.Errorf("step %d: %w (%g); stopping without saving, last good checkpoint: %s", r.stepper.Step, ErrNonFinite, stats.Loss, last)
}

// periodic runs the actions that follow a step: an evaluation every
// EvalEvery steps (not after the last, which the final evaluation covers,
// nor when interrupted, which should stop quickly), then a checkpoint every
// CheckpointEvery steps, after the last and when interrupted.
func (r *run) periodic(ctx context.Context, done, interrupted bool) error {
	step := r.stepper.Step
	if every(step, r.opts.EvalEvery) && !done && !interrupted {
		if err := r.evaluate(ctx); err != nil {
			return err
		}
	}
	if done || interrupted || every(step, r.opts.CheckpointEvery) {
		return r.save()
	}
	return nil
}

// every says whether an action due every n steps (0: never) is due at step.
func every(step, n int) bool { return n > 0 && step%n == 0 }

// evaluate runs Hooks.Evaluate on the current weights and logs its
// metrics, with the precision they were computed in.
func (r *run) evaluate(ctx context.Context) error {
	m, ran, err := r.eval.run(ctx, r.stepper.Step)
	if err != nil || !ran {
		return err
	}
	r.res.Eval = m
	return r.metrics.eval(r.stepper.Step, r.eval.precision(), m)
}

// finalEvaluation runs the evaluation after the last step. The checkpoint
// is written by then, so a cancellation (Ctrl-C, SIGTERM) during it is not
// an error: the result says the evaluation was interrupted.
func (r *run) finalEvaluation(ctx context.Context) error {
	err := r.evaluate(ctx)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		r.res.EvalInterrupted = true
		return nil
	}
	return err
}

// save writes a checkpoint of the weights, the optimiser state and the
// stream position after the last step, keeping opts.Keep of them.
func (r *run) save() error {
	sd, err := r.stepper.StateDict()
	if err != nil {
		return err
	}
	opt, err := r.stepper.OptimizerState()
	if err != nil {
		return err
	}
	ckpt := &Checkpoint{ModelConfig: r.modelCfg, Preprocess: r.opts.Preprocess, Weights: sd, Optimizer: opt,
		State: State{Step: r.stepper.Step, Stream: r.position, RunConfig: r.opts.RunConfig, Seed: r.opts.Seed, Loss: r.res.Loss}}
	dir, err := Save(r.opts.Output, r.opts.Keep, ckpt)
	if err != nil {
		return err
	}
	r.res.Checkpoint, r.savedStep = dir, r.stepper.Step
	if r.hooks.OnCheckpoint != nil {
		r.hooks.OnCheckpoint(dir, r.stepper.Step)
	}
	return nil
}
