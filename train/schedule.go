package train

import (
	"fmt"
	"math"
)

// Schedule is OpenCLIP's learning-rate schedule (open_clip_train/scheduler.py),
// evaluated per optimiser step.
type Schedule struct {
	// Kind is "cosine", "const" or "const-cooldown".
	Kind string
	// Base is the peak learning rate.
	Base float64
	// Warmup is the number of linear warm-up steps.
	Warmup int
	// Total is the number of optimiser steps of the run.
	Total int
	// CooldownSteps, CooldownPower and CooldownEnd shape const-cooldown.
	CooldownSteps int
	CooldownPower float64
	CooldownEnd   float64
}

// LR is the learning rate for 0-based optimiser step.
func (s Schedule) LR(step int) float64 {
	if step < s.Warmup {
		return s.Base * float64(step+1) / float64(s.Warmup)
	}
	switch s.Kind {
	case "const":
		return s.Base
	case "const-cooldown":
		start := s.Total - s.CooldownSteps
		if step < start {
			return s.Base
		}
		e, es := float64(step-start), float64(s.Total-start)
		return math.Pow(1-e/es, s.CooldownPower)*(s.Base-s.CooldownEnd) + s.CooldownEnd
	default: // cosine
		e, es := float64(step-s.Warmup), float64(s.Total-s.Warmup)
		if es <= 0 {
			return s.Base
		}
		return 0.5 * (1 + math.Cos(math.Pi*e/es)) * s.Base
	}
}

// Validate reports an unusable schedule.
func (s Schedule) Validate() error {
	switch s.Kind {
	case "cosine", "const", "const-cooldown":
	default:
		return fmt.Errorf("schedule %q is not one of cosine, const, const-cooldown", s.Kind)
	}
	if s.Total <= 0 || s.Base <= 0 || s.Warmup < 0 {
		return fmt.Errorf("schedule needs positive total steps and lr, non-negative warmup")
	}
	return nil
}
