package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bmca/bmca/model/weights"
)

// File names of a bmca training run. A checkpoint directory is OpenCLIP's
// layout (OpenCLIPWeightsFile, OpenCLIPConfigFile) plus the optimizer and
// the training state; a run directory keeps its checkpoints in
// CheckpointsDir, with LatestFile naming the newest.
const (
	OptimizerFile  = "optimizer.safetensors"
	StateFile      = "training_state.json"
	LatestFile     = "latest"
	CheckpointsDir = "checkpoints"
)

// TrainingState is training_state.json: where a bmca training run stood
// when it saved the checkpoint.
type TrainingState struct {
	// Step is the number of optimiser steps taken.
	Step int `json:"step"`
	// Stream is the data position right after the last batch trained on.
	Stream json.RawMessage `json:"stream_position,omitempty"`
	// RunConfig is the run's full configuration, for reproducing it
	// (package config reads it).
	RunConfig json.RawMessage `json:"run_config,omitempty"`
	// Seed is the run's seed (weights init and data order).
	Seed uint64 `json:"seed"`
	// Loss is the training loss of the last step.
	Loss float64 `json:"loss"`
	// SavedAt is the wall-clock time of the save (RFC 3339).
	SavedAt string `json:"saved_at"`
}

// ResolveRun finds the checkpoint directory a bmca run path names: the
// directory itself when it holds OpenCLIPWeightsFile, else the one that
// LatestFile names in path/checkpoints or in path. ok is false when path
// is none of these (it may still be another checkpoint format).
func ResolveRun(path string) (dir string, ok bool, err error) {
	if st, err := os.Stat(path); err != nil || !st.IsDir() {
		return "", false, nil // a file, or nothing: not a run
	}
	if fileExists(filepath.Join(path, OpenCLIPWeightsFile)) {
		return path, true, nil
	}
	for _, base := range []string{filepath.Join(path, CheckpointsDir), path} {
		data, err := os.ReadFile(filepath.Join(base, LatestFile))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", false, fmt.Errorf("checkpoint %s: %w", path, err)
		}
		dir := filepath.Join(base, strings.TrimSpace(string(data)))
		if !fileExists(filepath.Join(dir, OpenCLIPWeightsFile)) {
			return "", false, fmt.Errorf("checkpoint %s: %s names %s, which has no %s", path, filepath.Join(base, LatestFile), dir, OpenCLIPWeightsFile)
		}
		return dir, true, nil
	}
	return "", false, nil
}

// readTraining reads the training state of a bmca checkpoint directory;
// nil when dir holds none (an export, another tool's checkpoint).
func readTraining(dir string) (*TrainingState, error) {
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st TrainingState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, StateFile), err)
	}
	return &st, nil
}

// Optimizer reads the AdamW moments a bmca training checkpoint keeps next
// to its weights; nil when the checkpoint has none (an export, or not a
// bmca checkpoint).
func (c *Checkpoint) Optimizer() (weights.StateDict, error) {
	p := filepath.Join(c.Dir, OptimizerFile)
	if !fileExists(p) {
		return nil, nil
	}
	sd, _, err := weights.ReadFile(p)
	return sd, err
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
