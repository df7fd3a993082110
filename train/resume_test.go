package train

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/clip"
)

// TestResumedSessionTiming: after a resume, the mean step time leaves out
// the session's first step (which compiles the step graph), as it does for
// a fresh run; and a finished run resumed has nothing to train but is still
// evaluated, with a summary from its checkpoint (step, loss, directory).
func TestResumedSessionTiming(t *testing.T) {
	be := graphtest.Backend(t)
	cfg := tinyConfig()
	src := newCyclingSource(cfg, 2, 4)
	opts := testOptions(t, cfg, 2)
	opts.Schedule.Total = 5
	if _, err := Loop(context.Background(), be, cfg, opts, src, Hooks{}); err != nil {
		t.Fatal(err)
	}
	ckpt, err := Load(opts.Output)
	if err != nil {
		t.Fatal(err)
	}
	opts.Steps, opts.Resume = 5, ckpt
	var durations []time.Duration
	res, err := Loop(context.Background(), be, cfg, opts, src, Hooks{OnStep: func(r StepReport) { durations = append(durations, r.Stats.Duration) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.SessionSteps != 3 || len(durations) != 3 {
		t.Fatalf("session steps %d (%d reports), want 3", res.SessionSteps, len(durations))
	}
	if want := (durations[1] + durations[2]) / 2; res.MeanStepTime != want {
		t.Errorf("mean step %v, want %v (steps 4 and 5; step 3 compiled: %v)", res.MeanStepTime, want, durations[0])
	}

	// Resumed once more with train.steps already reached.
	done, err := Load(opts.Output)
	if err != nil {
		t.Fatal(err)
	}
	opts.Resume = done
	evaluated := 0
	again, err := Loop(context.Background(), be, cfg, opts, src, Hooks{
		Evaluate: func(_ context.Context, step int, _ *clip.Encoder) (map[string]float64, error) {
			evaluated++
			return map[string]float64{"step": float64(step)}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if evaluated != 1 || again.Eval["step"] != 5 {
		t.Errorf("evaluated %d times (metrics %v), want once at step 5", evaluated, again.Eval)
	}
	if again.Step != 5 || again.SessionSteps != 0 || again.Loss != done.State.Loss || again.Checkpoint != done.Dir || done.Dir == "" {
		t.Errorf("result %+v, want step 5, no session steps, loss %g and checkpoint %s from the checkpoint", again, done.State.Loss, done.Dir)
	}

	// Cancelled during that evaluation: not an error, and said.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cut, err := Loop(ctx, be, cfg, opts, src, Hooks{
		Evaluate: func(ctx context.Context, _ int, _ *clip.Encoder) (map[string]float64, error) {
			cancel()
			return nil, ctx.Err()
		},
	})
	if err != nil || !cut.EvalInterrupted {
		t.Errorf("evaluation cancelled: %v, %+v; want no error and EvalInterrupted", err, cut)
	}
	// Any other evaluation error is still one.
	boom := errors.New("suite file vanished")
	if _, err := Loop(context.Background(), be, cfg, opts, src, Hooks{
		Evaluate: func(context.Context, int, *clip.Encoder) (map[string]float64, error) { return nil, boom },
	}); !errors.Is(err, boom) {
		t.Errorf("evaluation failure: %v", err)
	}
}
