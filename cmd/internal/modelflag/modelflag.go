// Package modelflag is the --checkpoint, --model-config and --partial flags
// that cmd/export, cmd/embed and cmd/merge share, turned into the options
// of cli.OpenCheckpoint (how every command opens a model: a hub reference
// is downloaded, a bmca run directory resolves to its latest checkpoint,
// anything else has its format detected), with errors that name the flag
// that fixes them.
//
//	var mf modelflag.Flags
//	mf.Register(fs)
//	fs.Parse(args)
//	ck, err := mf.Open(ctx, os.Stderr)
//	modelflag.Warn(os.Stderr, ck)
package modelflag

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/bmca/bmca/internal/cli"
	"github.com/bmca/bmca/model/checkpoint"
)

// Flags are the values of the three flags.
type Flags struct {
	Checkpoint  string
	ModelConfig string
	Partial     bool
}

// Register adds --checkpoint, --model-config and --partial to fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.Checkpoint, "checkpoint", "", "`PATH` of the model: a bmca checkpoint or run directory, an OpenCLIP or Hugging Face directory, a .safetensors/.pt/.bin file (format detected from the bytes), or an OpenCLIP model on the Hugging Face Hub, hf-hub:ORG/NAME[@REVISION] (downloaded into the Hugging Face cache; HF_TOKEN, HF_ENDPOINT, HF_HOME, HF_HUB_OFFLINE apply)")
	fs.StringVar(&f.ModelConfig, "model-config", "", "model config `FILE` (OpenCLIP model config, open_clip_config.json or transformers config.json) or built-in name (ViT-B-16, ViT-L-14, …; a -quickgelu suffix selects QuickGELU); needed when no config sits next to the weights, as for a bare .pt")
	fs.BoolVar(&f.Partial, "partial", false, "accept a checkpoint with missing or unexpected tensors (missing ones get a fresh seeded initialisation; both are listed); mis-shaped tensors are still errors")
}

// Open opens the named checkpoint, downloading a hub model (with progress
// bars on progress) unless cached. Errors say which flag fixes them.
func (f *Flags) Open(ctx context.Context, progress io.Writer) (*checkpoint.Checkpoint, error) {
	if f.Checkpoint == "" {
		return nil, errors.New("--checkpoint is required")
	}
	opts := checkpoint.Options{Partial: f.Partial}
	if f.ModelConfig != "" {
		mc, err := checkpoint.ReadModelConfig(f.ModelConfig)
		if err != nil {
			return nil, err
		}
		opts.ModelConfig = &mc
	}
	ck, err := cli.OpenCheckpoint(ctx, f.Checkpoint, opts, progress)
	var mm *checkpoint.MismatchError
	switch {
	case errors.Is(err, checkpoint.ErrNoConfig):
		return nil, fmt.Errorf("%w\n(pass --model-config)", err)
	case errors.As(err, &mm) && len(mm.Mismatched) == 0:
		return nil, fmt.Errorf("%w\n(--partial loads it anyway: missing tensors get a fresh initialisation, unexpected ones are ignored)", err)
	case err != nil:
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	return ck, nil
}

// Warn lists what a partial load skipped.
func Warn(w io.Writer, ck *checkpoint.Checkpoint) {
	if len(ck.Missing) > 0 {
		fmt.Fprintf(w, "warning: %d tensors missing from %s, freshly initialised: %s\n", len(ck.Missing), ck.Path, strings.Join(ck.Missing, ", "))
	}
	if len(ck.Unexpected) > 0 {
		fmt.Fprintf(w, "warning: %d unexpected tensors in %s, ignored: %s\n", len(ck.Unexpected), ck.Path, strings.Join(ck.Unexpected, ", "))
	}
}
