package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bmca/bmca/internal/atomicfile"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/weights"
)

// File names inside a run and checkpoint directory (package checkpoint
// defines the layout, since it opens them). The weights and config are
// exactly what OpenCLIP's pretrained loader reads from a local directory.
const (
	WeightsFile     = checkpoint.OpenCLIPWeightsFile
	ModelConfigFile = checkpoint.OpenCLIPConfigFile
	OptimizerFile   = checkpoint.OptimizerFile
	StateFile       = checkpoint.StateFile
	LatestFile      = checkpoint.LatestFile
	CheckpointsDir  = checkpoint.CheckpointsDir
)

// Checkpoint is everything needed to resume or evaluate a run.
type Checkpoint struct {
	// Dir is the checkpoint directory it was loaded from ("" when built in
	// memory).
	Dir         string
	ModelConfig clip.Config
	// Preprocess is the model's image preprocessing, written to
	// open_clip_config.json's preprocess_cfg; the zero value means
	// OpenAI's (clip.OpenAIPreprocess), OpenCLIP's default.
	Preprocess clip.PreprocessConfig
	// Files are the weight files it was read from (for hashing them).
	Files   []string
	Weights weights.StateDict
	// Optimizer holds AdamW's moments; nil in weight-only checkpoints.
	Optimizer weights.StateDict
	State     State
}

// PreprocessConfig is Preprocess, or OpenAI's when it is the zero value.
func (c *Checkpoint) PreprocessConfig() clip.PreprocessConfig {
	if c.Preprocess == (clip.PreprocessConfig{}) {
		return clip.OpenAIPreprocess
	}
	return c.Preprocess
}

// State is the JSON part of a checkpoint, training_state.json.
type State = checkpoint.TrainingState

// StepDirName is the directory name of the checkpoint after step.
func StepDirName(step int) string { return fmt.Sprintf("step-%08d", step) }

// Save writes ckpt as root/checkpoints/step-NNNNNNNN atomically: files go
// into a temporary sibling directory that is renamed into place only when
// complete, then root/checkpoints/latest is replaced atomically, then all
// but the newest keep checkpoints are removed (keep ≤ 0 removes none). It
// returns the directory.
func Save(root string, keep int, ckpt *Checkpoint) (string, error) {
	base := filepath.Join(root, CheckpointsDir)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	name := StepDirName(ckpt.State.Step)
	final := filepath.Join(base, name)
	tmp, err := mkdirPartial(base, name)
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	defer os.RemoveAll(tmp) // no-op after the rename
	if err := writeCheckpointFiles(tmp, ckpt); err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", final, err)
	}
	if err := os.RemoveAll(final); err != nil { // a re-save of the same step replaces it
		return "", fmt.Errorf("checkpoint %s: %w", final, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", final, err)
	}
	if err := atomicfile.SyncDir(base); err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", final, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(base, LatestFile), []byte(name+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("checkpoint %s: latest: %w", final, err)
	}
	if err := prune(base, keep); err != nil {
		return final, fmt.Errorf("checkpoint %s saved, but pruning old ones failed: %w", final, err)
	}
	return final, nil
}

// partialInfix marks the temporary directory a checkpoint is written
// into: ".step-NNNNNNNN.partial-RANDOM".
const partialInfix = ".partial-"

// mkdirPartial creates the temporary sibling directory of checkpoint
// name. Unlike os.MkdirTemp (always 0700) it takes the umask's usual mode,
// which the renamed checkpoint keeps, so that whoever may read the run
// folder may read its checkpoints.
func mkdirPartial(base, name string) (string, error) {
	for range 100 {
		p := filepath.Join(base, "."+name+partialInfix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		err := os.Mkdir(p, 0o777)
		if !errors.Is(err, os.ErrExist) {
			return p, err
		}
	}
	return "", fmt.Errorf("no unused temporary name for %s in %s", name, base)
}

// CleanLeftovers removes what a run killed while saving (SIGKILL, power
// loss) leaves in its output folder root: partial checkpoint directories
// (.step-NNNNNNNN.partial-*, as large as a checkpoint) and the temporary
// files of atomic writes (checkpoints/.latest.tmp-*, .results.json.tmp-*,
// …). It returns what it removed. Call it only while holding the folder's
// lock (package dirlock): a live run's temporary files look the same.
func CleanLeftovers(root string) ([]string, error) {
	base := filepath.Join(root, CheckpointsDir)
	entries, err := os.ReadDir(base)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cleaning %s: %w", base, err)
	}
	var removed []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), ".step-") && strings.Contains(e.Name(), partialInfix) {
			p := filepath.Join(base, e.Name())
			if err := os.RemoveAll(p); err != nil {
				return removed, fmt.Errorf("cleaning %s: %w", base, err)
			}
			removed = append(removed, p)
		}
	}
	for _, dir := range []string{base, root} {
		files, err := atomicfile.RemoveLeftovers(dir)
		removed = append(removed, files...)
		if err != nil {
			return removed, fmt.Errorf("cleaning %s: %w", dir, err)
		}
	}
	return removed, nil
}

func writeCheckpointFiles(dir string, ckpt *Checkpoint) error {
	cfgJSON, err := ckpt.ModelConfig.OpenCLIPConfigJSON(ckpt.PreprocessConfig())
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ModelConfigFile), cfgJSON, 0o644); err != nil {
		return err
	}
	meta := map[string]string{"format": "pt"}
	if err := weights.WriteFile(filepath.Join(dir, WeightsFile), ckpt.Weights, meta); err != nil {
		return err
	}
	if ckpt.Optimizer != nil {
		if err := weights.WriteFile(filepath.Join(dir, OptimizerFile), ckpt.Optimizer, nil); err != nil {
			return err
		}
	}
	state := ckpt.State
	state.SavedAt = time.Now().UTC().Format(time.RFC3339)
	stateJSON, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, StateFile), stateJSON, 0o644)
}

// prune keeps the newest keep step directories; keep ≤ 0 keeps them all,
// as OpenCLIP does unless asked to delete (--delete-previous-checkpoint).
func prune(base string, keep int) error {
	if keep <= 0 {
		return nil
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		return err
	}
	var steps []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "step-") {
			steps = append(steps, e.Name())
		}
	}
	sort.Strings(steps) // zero-padded, so lexical order is step order
	for len(steps) > keep {
		if err := os.RemoveAll(filepath.Join(base, steps[0])); err != nil {
			return err
		}
		steps = steps[1:]
	}
	return nil
}

// Resolve finds a checkpoint directory from what a user may type: the
// directory itself, a run directory (its checkpoints/latest) or a
// checkpoints directory (its latest); see checkpoint.ResolveRun.
func Resolve(path string) (string, error) {
	dir, ok, err := checkpoint.ResolveRun(path)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("checkpoint %s: neither a checkpoint directory (with %s) nor a run directory with %s/%s", path, WeightsFile, CheckpointsDir, LatestFile)
	}
	return dir, nil
}

// Load opens any checkpoint with checkpoint.Open (a bmca run or
// checkpoint directory, an OpenCLIP or transformers directory, a
// torch.save file) and reads it into memory: weights, preprocessing, and
// for a bmca training checkpoint its optimizer state and training state,
// which --resume needs. Other checkpoints load as weights only, with the
// model config found next to them.
func Load(path string) (*Checkpoint, error) {
	ck, err := checkpoint.Open(path, checkpoint.Options{})
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	return FromOpen(ck)
}

// FromOpen reads an open checkpoint into memory (see Load).
func FromOpen(ck *checkpoint.Checkpoint) (*Checkpoint, error) {
	out := &Checkpoint{Dir: ck.Dir, ModelConfig: ck.Config(), Preprocess: ck.Model.Preprocess, Files: ck.Files()}
	var err error
	if out.Weights, err = ck.StateDict(); err != nil {
		return nil, err
	}
	if ck.Training != nil {
		out.State = *ck.Training
		if out.Optimizer, err = ck.Optimizer(); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", ck.Dir, err)
		}
	}
	return out, nil
}
