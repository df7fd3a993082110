package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestWarnings: each setting that cannot be what was meant gives one
// warning naming its key; a config without such settings gives none.
func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name      string
		overrides []string
		want      []string // one substring per expected warning, in order
	}{
		{"consistent", []string{"train.warmup=10", "train.checkpoint_every=50", "eval.every=50", "eval.suite=s.yaml"}, nil},
		{"the default warm-up with the default steps", []string{"train.steps=1000", "train.warmup=10000"},
			[]string{"train.warmup: 10000 warm-up steps ≥ steps (1000): the whole run is warm-up, the learning rate rises only to 5e-05 (lr is 0.0005)"}},
		{"warm-up of the whole run", []string{"train.warmup=100"}, []string{"train.warmup: 100 warm-up steps ≥ steps (100)"}},
		{"cooldown inside the warm-up", []string{"train.warmup=30", "train.schedule=const-cooldown", "train.cooldown_steps=80"},
			[]string{"train.cooldown_steps: the cooldown (the last 80 of 100 steps) starts at step 20, before the warm-up (warmup 30) ends"}},
		{"cooldown without const-cooldown", []string{"train.warmup=10", "train.cooldown_steps=20"}, []string{"train.cooldown_steps: 20 is set but the cosine schedule has no cooldown"}},
		{"cooldown that rises", []string{"train.warmup=10", "train.schedule=const-cooldown", "train.cooldown_steps=20", "train.cooldown_end=1"},
			[]string{"train.cooldown_end: 1 is above lr"}},
		{"checkpoint interval beyond the run", []string{"train.warmup=10", "train.checkpoint_every=500"}, []string{"train.checkpoint_every: 500 is more than train.steps (100)"}},
		{"evaluation interval beyond the run", []string{"train.warmup=10", "eval.every=101", "eval.suite=s.yaml"}, []string{"eval.every: 101 is more than train.steps (100)"}},
		{"evaluation without a suite", []string{"train.warmup=10", "eval.every=10"}, []string{"eval.every: 10 is set but there is nothing to evaluate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(writeConfig(t, sample), tc.overrides)
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.Warnings()
			if len(got) != len(tc.want) {
				t.Fatalf("warnings %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("warning %q, want one starting %q", got[i], w)
				}
			}
		})
	}
}

// TestShippedConfigsHaveNoWarnings: the configs we ship mean what they say.
func TestShippedConfigsHaveNoWarnings(t *testing.T) {
	matches, err := filepath.Glob("../configs/*.yaml")
	if err != nil || len(matches) == 0 {
		t.Fatalf("no shipped configs: %v", err)
	}
	for _, m := range matches {
		cfg, err := Load(m, nil)
		if err != nil {
			t.Errorf("%s: %v", m, err)
			continue
		}
		if w := cfg.Warnings(); len(w) > 0 {
			t.Errorf("%s: %q", m, w)
		}
	}
}

// TestKeepCheckpoints: the default keeps every checkpoint, as OpenCLIP
// does; a count keeps that many; a negative count is an error.
func TestKeepCheckpoints(t *testing.T) {
	cfg, err := Load(writeConfig(t, sample), nil)
	if err != nil || cfg.Train.KeepCheckpoints != 0 {
		t.Fatalf("default keep_checkpoints %d (%v), want 0 (keep all)", cfg.Train.KeepCheckpoints, err)
	}
	if cfg, err = Load(writeConfig(t, sample), []string{"train.keep_checkpoints=2"}); err != nil || cfg.Train.KeepCheckpoints != 2 {
		t.Errorf("keep_checkpoints=2: %d, %v", cfg.Train.KeepCheckpoints, err)
	}
	if _, err := Load(writeConfig(t, sample), []string{"train.keep_checkpoints=-1"}); err == nil || !strings.Contains(err.Error(), "train.keep_checkpoints: must be ≥ 0 (0 = keep all)") {
		t.Errorf("keep_checkpoints=-1: %v", err)
	}
}
