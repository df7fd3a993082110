package train

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
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
	// written to metrics.jsonl. enc computes in the run's precision
	// (enc.Config().Precision), as OpenCLIP evaluates under the training
	// autocast.
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
// returns a Result with Interrupted set and a nil error. modelCfg.Runtime
// is how the steps and the evaluations compute.
//
// It reads top to bottom in run.go: startRun sets up the stepper and the
// metrics file, train takes the steps (each one timed, logged and followed
// by the periodic evaluation and checkpoint, then checked against the stop
// policy), and the final evaluation closes a completed run.
func Loop(ctx context.Context, backend compute.Backend, modelCfg clip.Config, opts Options, data Source, hooks Hooks) (*Result, error) {
	r, err := startRun(backend, modelCfg, opts, hooks)
	if err != nil {
		return nil, err
	}
	err = r.session(ctx, data)
	if cerr := r.close(); err == nil {
		err = cerr
	}
	return r.res, err
}
