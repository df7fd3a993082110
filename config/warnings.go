package config

import "fmt"

// Warnings lists settings that are valid but cannot be what was meant,
// each starting with the YAML key to change: the run would not fail, but
// would not do what its settings suggest either. cmd/train prints them
// before training starts. The config must be valid.
func (c *Config) Warnings() []string {
	var out []string
	for _, w := range c.Train.LRSchedule().Warnings() {
		out = append(out, "train."+w)
	}
	t := c.Train
	if t.CheckpointEvery > t.Steps {
		out = append(out, fmt.Sprintf("train.checkpoint_every: %d is more than train.steps (%d): only the final checkpoint is written", t.CheckpointEvery, t.Steps))
	}
	evaluates := c.Eval.Suite != "" || c.Data.Synthetic.Enabled
	switch {
	case c.Eval.Every > 0 && !evaluates:
		out = append(out, fmt.Sprintf("eval.every: %d is set but there is nothing to evaluate: no eval.suite (and no synthetic dataset, whose tasks would be used)", c.Eval.Every))
	case c.Eval.Every > t.Steps:
		out = append(out, fmt.Sprintf("eval.every: %d is more than train.steps (%d): only the final evaluation runs", c.Eval.Every, t.Steps))
	}
	return out
}
