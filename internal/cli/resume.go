package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/train"
)

// harmlessOnResume are the run-config keys (and, ending in ".", key
// prefixes) a resumed run may change without changing what it computes:
// logging, checkpoint cadence, evaluation, where things go, the backend,
// and data-stage parallelism that never changes the batches.
var harmlessOnResume = []string{
	"train.log_every", "train.checkpoint_every", "train.keep_checkpoints", "train.pretrained",
	"eval.", "output", "backend", "data.workers", "data.readers", "data.synthetic.dir",
}

func harmless(key string) bool {
	for _, h := range harmlessOnResume {
		if key == h || strings.HasSuffix(h, ".") && strings.HasPrefix(key, h) {
			return true
		}
	}
	return false
}

// checkResume compares the run config recorded in the checkpoint being
// resumed with the one given now. A resumed run continues the recorded
// one bit for bit only with the same recipe, data and seed, so changes
// to those are refused unless allow (--allow-changes); harmless changes
// and a changed step count are reported on w.
func checkResume(w io.Writer, ckpt *train.Checkpoint, cfg *config.Config, allow bool) error {
	if len(ckpt.State.RunConfig) == 0 {
		fmt.Fprintf(w, "note: %s records no run config, so changes to the recipe cannot be checked\n", ckpt.Dir)
		return nil
	}
	recorded, err := config.ParseRun(ckpt.State.RunConfig, ckpt.Dir, nil)
	if err != nil {
		if allow {
			fmt.Fprintf(w, "note: the recorded run config cannot be compared (%v); resuming anyway (--allow-changes)\n", err)
			return nil
		}
		return fmt.Errorf("the recorded run config cannot be compared with this one: %w (--allow-changes resumes anyway)", err)
	}
	changes, err := config.Diff(recorded, cfg)
	if err != nil {
		return err
	}
	var breaking, notes []string
	for _, c := range changes {
		line := fmt.Sprintf("%s: %s → %s", c.Key, c.Old, c.New)
		switch {
		case c.Key == "train.batch_size" && cfg.Data.Tensors != "":
			continue // a replayed batch file sets it (and data.tensors is compared)
		case c.Key == "train.steps":
			notes = append(notes, line+stepsNote(recorded.Train.Steps, cfg.Train.Steps, ckpt.State.Step))
		case harmless(c.Key):
			notes = append(notes, line)
		default:
			breaking = append(breaking, line)
		}
	}
	if len(breaking) > 0 && !allow {
		return fmt.Errorf("resuming %s with a different recipe, data or seed would not continue its run exactly:\n  %s\n"+
			"resume with the recorded values (run_config in %s), or pass --allow-changes to accept them",
			ckpt.Dir, strings.Join(breaking, "\n  "), train.StateFile)
	}
	if len(breaking) > 0 {
		fmt.Fprintf(w, "resuming with changes accepted by --allow-changes (the run no longer continues the recorded one exactly):\n  %s\n", strings.Join(breaking, "\n  "))
	}
	if len(notes) > 0 {
		fmt.Fprintf(w, "resuming with changes that keep the training exact:\n  %s\n", strings.Join(notes, "\n  "))
	}
	return nil
}

// stepsNote explains a changed train.steps.
func stepsNote(recorded, now, at int) string {
	switch {
	case now <= at:
		return fmt.Sprintf(" (the checkpoint is at step %d: nothing left to train, the run is only evaluated)", at)
	case now > recorded:
		return fmt.Sprintf(" (the run is extended; the learning-rate schedule is recomputed for %d steps, so steps %d on follow it, not the recorded plan)", now, at+1)
	}
	return fmt.Sprintf(" (the run ends earlier; the learning-rate schedule is recomputed for %d steps)", now)
}
