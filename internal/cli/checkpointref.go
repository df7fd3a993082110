package cli

import (
	"context"
	"io"
	"os"

	"github.com/bmca/bmca/hub"
	"github.com/bmca/bmca/model/checkpoint"
)

// CheckpointPath turns a checkpoint reference as a user types it into a
// local path: hf-hub:ORG/NAME[@REVISION] is fetched from the Hugging Face
// Hub, or found in its cache, as the HF_* environment variables say (see
// hub.FromEnv), with download progress bars on progress; anything else is
// returned unchanged. Every command calls it before opening a checkpoint,
// so a reference becomes a path in this one place.
func CheckpointPath(ctx context.Context, ref string, progress io.Writer) (string, error) {
	if !hub.IsRef(ref) {
		return ref, nil
	}
	c, err := hub.FromEnv(os.Getenv)
	if err != nil {
		return "", err
	}
	c.Progress = progress
	return c.CheckpointPath(ctx, ref)
}

// OpenCheckpoint is how every command opens the checkpoint a user names
// (train --pretrained and --resume, eval, embed, export, merge): the
// reference becomes a local path (CheckpointPath: a hub model is
// downloaded), which checkpoint.Open reads (a bmca run directory resolves
// to its latest checkpoint; format, model config, preprocessing and
// training state are found there).
func OpenCheckpoint(ctx context.Context, ref string, opts checkpoint.Options, progress io.Writer) (*checkpoint.Checkpoint, error) {
	path, err := CheckpointPath(ctx, ref, progress)
	if err != nil {
		return nil, err
	}
	return checkpoint.Open(path, opts)
}
