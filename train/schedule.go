package train

import (
	"fmt"
	"math"
)

// Schedule is OpenCLIP's learning-rate schedule (open_clip_train/scheduler.py),
// evaluated per optimiser step. Its YAML keys are those of a run config's
// train section, and Validate and Warnings name them.
type Schedule struct {
	// Kind is the schedule, spelt as OpenCLIP's --lr-scheduler: "cosine"
	// (warm-up, then a cosine to 0 at Total), "const" (warm-up, then
	// PeakLR) or "const-cooldown" (warm-up, PeakLR, then a cooldown over
	// the last CooldownSteps steps).
	Kind string `yaml:"schedule"`
	// PeakLR is the learning rate after warm-up (OpenCLIP's --lr).
	PeakLR float64 `yaml:"lr"`
	// Warmup is the number of linear warm-up steps (OpenCLIP's --warmup).
	Warmup int `yaml:"warmup"`
	// Total is the number of optimiser steps of the run; a run config sets
	// it from train.steps.
	Total int `yaml:"-"`
	// CooldownSteps is the length of const-cooldown's final cooldown
	// (OpenCLIP's --epochs-cooldown, counted in steps).
	CooldownSteps int `yaml:"cooldown_steps"`
	// CooldownPower shapes the cooldown: 1 is linear (OpenCLIP's
	// --lr-cooldown-power).
	CooldownPower float64 `yaml:"cooldown_power"`
	// CooldownEnd is the learning rate at the end of the cooldown
	// (OpenCLIP's --lr-cooldown-end).
	CooldownEnd float64 `yaml:"cooldown_end"`
}

// Schedule kinds, as OpenCLIP's --lr-scheduler spells them.
const (
	ScheduleCosine        = "cosine"
	ScheduleConst         = "const"
	ScheduleConstCooldown = "const-cooldown"
)

// LR is the learning rate for 0-based optimiser step.
func (s Schedule) LR(step int) float64 {
	if step < s.Warmup {
		return s.PeakLR * float64(step+1) / float64(s.Warmup)
	}
	switch s.Kind {
	case ScheduleConst:
		return s.PeakLR
	case ScheduleConstCooldown:
		start := s.Total - s.CooldownSteps
		if step < start {
			return s.PeakLR
		}
		e, es := float64(step-start), float64(s.Total-start)
		return math.Pow(1-e/es, s.CooldownPower)*(s.PeakLR-s.CooldownEnd) + s.CooldownEnd
	default: // cosine
		e, es := float64(step-s.Warmup), float64(s.Total-s.Warmup)
		if es <= 0 {
			return s.PeakLR
		}
		return 0.5 * (1 + math.Cos(math.Pi*e/es)) * s.PeakLR
	}
}

// Validate reports an unusable schedule, naming the field by its YAML key.
func (s Schedule) Validate() error {
	switch s.Kind {
	case ScheduleCosine, ScheduleConst:
	case ScheduleConstCooldown:
		if s.CooldownSteps <= 0 || s.CooldownSteps > s.Total {
			return fmt.Errorf("cooldown_steps: must be in 1..steps (%d) for const-cooldown, got %d", s.Total, s.CooldownSteps)
		}
	default:
		return fmt.Errorf("schedule: %q is not one of %s, %s, %s", s.Kind, ScheduleCosine, ScheduleConst, ScheduleConstCooldown)
	}
	switch {
	case s.Total <= 0:
		return fmt.Errorf("steps: must be positive, got %d", s.Total)
	case !(s.PeakLR > 0):
		return fmt.Errorf("lr: must be positive, got %v", s.PeakLR)
	case s.Warmup < 0:
		return fmt.Errorf("warmup: must be ≥ 0, got %d", s.Warmup)
	}
	return nil
}

// Warnings lists settings of a valid schedule that cannot be what was
// meant, each naming its YAML keys: the run would not fail, but would not
// follow the schedule its settings describe either.
func (s Schedule) Warnings() []string {
	var out []string
	if s.Warmup > 0 && s.Warmup >= s.Total {
		out = append(out, fmt.Sprintf("warmup: %d warm-up steps ≥ steps (%d): the whole run is warm-up, the learning rate rises only to %.3g (lr is %g) and the %s schedule never starts "+
			"(OpenCLIP's default warm-up of 10000 steps suits its long runs; a few percent of the steps is usual)",
			s.Warmup, s.Total, s.LR(s.Total-1), s.PeakLR, s.Kind))
	}
	if s.Kind == ScheduleConstCooldown && s.Warmup < s.Total && s.Total-s.CooldownSteps < s.Warmup {
		out = append(out, fmt.Sprintf("cooldown_steps: the cooldown (the last %d of %d steps) starts at step %d, before the warm-up (warmup %d) ends: the learning rate jumps from the warm-up to the cooldown and never holds lr",
			s.CooldownSteps, s.Total, s.Total-s.CooldownSteps, s.Warmup))
	}
	if s.Kind == ScheduleConstCooldown && s.CooldownEnd > s.PeakLR {
		out = append(out, fmt.Sprintf("cooldown_end: %g is above lr (%g): the cooldown raises the learning rate", s.CooldownEnd, s.PeakLR))
	}
	if s.Kind != ScheduleConstCooldown && s.CooldownSteps > 0 {
		out = append(out, fmt.Sprintf("cooldown_steps: %d is set but the %s schedule has no cooldown (only const-cooldown uses it): ignored", s.CooldownSteps, s.Kind))
	}
	return out
}
