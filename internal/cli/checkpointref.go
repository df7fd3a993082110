package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bmca/bmca/hub"
	"github.com/bmca/bmca/model/bert"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/clip"
)

// hubClient is the Hugging Face Hub client the environment configures (see
// hub.FromEnv), drawing download progress bars on progress.
func hubClient(progress io.Writer) (*hub.Client, error) {
	c, err := hub.FromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	c.Progress = progress
	return c, nil
}

// CheckpointPath turns a checkpoint reference as a user types it into a
// local path: hf-hub:ORG/NAME[@REVISION] is fetched from the Hugging Face
// Hub, or found in its cache, as the HF_* environment variables say (see
// hub.FromEnv), with download progress bars on progress; anything else is
// returned unchanged.
func CheckpointPath(ctx context.Context, ref string, progress io.Writer) (string, error) {
	path, _, err := resolveCheckpoint(ctx, ref, progress)
	return path, err
}

// resolveCheckpoint is CheckpointPath that also returns what the hub
// fetched for a hub reference (nil otherwise): the text model's config.json
// and the tokenizer files beside the snapshot.
func resolveCheckpoint(ctx context.Context, ref string, progress io.Writer) (string, *hub.Checkpoint, error) {
	if !hub.IsRef(ref) {
		return ref, nil, nil
	}
	r, err := hub.ParseRef(ref)
	if err != nil {
		return "", nil, err
	}
	c, err := hubClient(progress)
	if err != nil {
		return "", nil, err
	}
	ck, err := c.OpenCLIP(ctx, r)
	if err != nil {
		return "", nil, err
	}
	return ck.Dir, ck, nil
}

// OpenCheckpoint is how every command opens the checkpoint a user names
// (train --pretrained and --resume, eval, embed, export, merge): the
// reference becomes a local path (CheckpointPath: a hub model is
// downloaded), which checkpoint.Open reads (a bmca run directory resolves
// to its latest checkpoint; format, model config, preprocessing and
// training state are found there). When the model's text tower is a
// Hugging Face model whose config.json the checkpoint does not carry (as
// BiomedCLIP's open_clip_config.json does not), it is read as OpenCLIP
// reads it (see hfConfigs), unless opts.HFConfigs says otherwise.
func OpenCheckpoint(ctx context.Context, ref string, opts checkpoint.Options, progress io.Writer) (*checkpoint.Checkpoint, error) {
	path, fetched, err := resolveCheckpoint(ctx, ref, progress)
	if err != nil {
		return nil, err
	}
	if opts.HFConfigs == nil {
		opts.HFConfigs = hfConfigs(ctx, fetched, progress)
	}
	return checkpoint.Open(path, opts)
}

// hfConfigs supplies the config.json of a text_cfg.hf_model_name as
// OpenCLIP's AutoConfig.from_pretrained finds it: the copy the hub client
// fetched with a hub model, a local directory of that name, or the Hugging
// Face cache, downloading it when missing. For a model bert.Known knows
// only the cache is asked, never the network: its built-in configuration
// stands in (clip.ParseConfigJSONWith falls back to it), so opening a local
// BiomedCLIP on a machine without network costs no waiting.
func hfConfigs(ctx context.Context, fetched *hub.Checkpoint, progress io.Writer) clip.HFConfigSource {
	return func(name string) ([]byte, error) {
		dir := ""
		if fetched != nil && fetched.TextModel != "" && fetched.TextModelName == name {
			dir = fetched.TextModel
		} else {
			c, err := hubClient(progress)
			if err != nil {
				return nil, err
			}
			if _, known := bert.Known(name); known {
				c.Offline = true
			}
			if dir, err = c.TextModel(ctx, name); err != nil {
				return nil, err
			}
		}
		data, err := os.ReadFile(filepath.Join(dir, hub.TextModelConfigFile))
		if err != nil {
			return nil, fmt.Errorf("text model %s: %w", name, err)
		}
		return data, nil
	}
}
