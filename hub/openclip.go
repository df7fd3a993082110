package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File names of an OpenCLIP model repository, as open_clip's hf-hub:
// loader reads them: the config, then the weights, safetensors first.
const (
	ConfigFile      = "open_clip_config.json"
	SafetensorsFile = "open_clip_model.safetensors"
	PyTorchFile     = "open_clip_pytorch_model.bin"
)

// TokenizerFiles are the files transformers' BertTokenizer (and its fast
// variant) loads from a tokenizer repository; all but one of vocab.txt and
// tokenizer.json may be absent.
var TokenizerFiles = []string{"vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"}

// TextModelConfigFile is the transformers config of an HF text tower:
// OpenCLIP builds the tower from it (AutoConfig.from_pretrained), since
// open_clip_config.json names the model but not its shape.
const TextModelConfigFile = "config.json"

// Checkpoint is an OpenCLIP model fetched from the hub.
type Checkpoint struct {
	// Ref is the reference, with Revision as given.
	Ref Ref
	// Commit is the commit the revision resolved to; every file below is
	// from it.
	Commit string
	// Dir is the snapshot directory: open_clip_config.json and the weights.
	Dir string
	// Weights is the weights file in Dir.
	Weights string
	// Tokenizer is the snapshot directory of text_cfg.hf_tokenizer_name
	// (vocab.txt, tokenizer_config.json, …); empty when the model has none.
	Tokenizer string
	// TextModel is the snapshot directory of text_cfg.hf_model_name,
	// holding its config.json; empty when the model has none.
	TextModel string
	// TokenizerName and TextModelName are hf_tokenizer_name and
	// hf_model_name as the config gives them.
	TokenizerName, TextModelName string
}

// CheckpointPath turns a checkpoint reference into a local path: a
// hf-hub:ORG/NAME[@REVISION] reference is fetched (see OpenCLIP) and its
// snapshot directory returned; anything else is returned unchanged.
func (c *Client) CheckpointPath(ctx context.Context, ref string) (string, error) {
	if !IsRef(ref) {
		return ref, nil
	}
	r, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	ck, err := c.OpenCLIP(ctx, r)
	if err != nil {
		return "", err
	}
	return ck.Dir, nil
}

// OpenCLIP fetches what open_clip.create_model("hf-hub:…") and
// get_tokenizer read: open_clip_config.json, the weights
// (open_clip_model.safetensors, else open_clip_pytorch_model.bin), and for
// a Hugging Face text tower the tokenizer files of hf_tokenizer_name and
// the config.json of hf_model_name. The revision is resolved once, from the
// config, and every other file of the repository is taken at that commit,
// so a push during the download cannot mix two versions.
func (c *Client) OpenCLIP(ctx context.Context, ref Ref) (*Checkpoint, error) {
	cfg, err := c.Download(ctx, ref, ConfigFile)
	if errors.Is(err, ErrEntryNotFound) {
		return nil, fmt.Errorf("%w (is %s an OpenCLIP model? open_clip publishes %s beside the weights)", err, ref.Repo, ConfigFile)
	}
	if err != nil {
		return nil, err
	}
	ck := &Checkpoint{Ref: ref, Commit: cfg.Commit, Dir: filepath.Dir(cfg.Path)}
	pinned := Ref{Repo: ref.Repo, Revision: cfg.Commit}
	w, err := c.Download(ctx, pinned, SafetensorsFile)
	if errors.Is(err, ErrEntryNotFound) || errors.Is(err, ErrNotCached) {
		w2, err2 := c.Download(ctx, pinned, PyTorchFile)
		switch {
		case err2 == nil:
			w, err = w2, nil
		case errors.Is(err, ErrEntryNotFound) && errors.Is(err2, ErrEntryNotFound):
			return nil, fmt.Errorf("%s has neither %s nor %s: %w", ref, SafetensorsFile, PyTorchFile, err)
		case errors.Is(err, ErrNotCached) && (errors.Is(err2, ErrEntryNotFound) || errors.Is(err2, ErrNotCached)):
			// Offline with neither cached: report the preferred file.
		default:
			err = err2
		}
	}
	if err != nil {
		return nil, err
	}
	ck.Weights = w.Path
	text, err := textTower(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", ref, ConfigFile, err)
	}
	ck.TokenizerName, ck.TextModelName = text.Tokenizer, text.Model
	if text.Tokenizer != "" {
		if ck.Tokenizer, err = c.tokenizer(ctx, text.Tokenizer); err != nil {
			return nil, fmt.Errorf("%s: text_cfg.hf_tokenizer_name: %w", ref, err)
		}
	}
	if text.Model != "" {
		if ck.TextModel, err = c.textModel(ctx, text.Model); err != nil {
			return nil, fmt.Errorf("%s: text_cfg.hf_model_name: %w", ref, err)
		}
	}
	return ck, nil
}

// hfText is the part of open_clip_config.json naming an HF text tower.
type hfText struct {
	Model     string `json:"hf_model_name"`
	Tokenizer string `json:"hf_tokenizer_name"`
}

// textTower reads text_cfg from an open_clip_config.json ({"model_cfg":
// {...}} as open_clip writes it for the hub, or a bare model config).
func textTower(path string) (hfText, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return hfText{}, err
	}
	var cfg struct {
		ModelCfg *struct {
			TextCfg hfText `json:"text_cfg"`
		} `json:"model_cfg"`
		TextCfg hfText `json:"text_cfg"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return hfText{}, err
	}
	if cfg.ModelCfg != nil {
		return cfg.ModelCfg.TextCfg, nil
	}
	return cfg.TextCfg, nil
}

// Tokenizer fetches the tokenizer files (TokenizerFiles) of a Hugging Face
// tokenizer repository and returns its snapshot directory. A name that is
// an existing directory is returned unchanged, as transformers'
// from_pretrained takes local directories too.
func (c *Client) Tokenizer(ctx context.Context, name string) (string, error) {
	return c.tokenizer(ctx, name)
}

// TokenizerAt is Tokenizer for a repository at a revision, as a reference
// hf-hub:ORG/NAME@REVISION names it.
func (c *Client) TokenizerAt(ctx context.Context, ref Ref) (string, error) {
	if ref.Revision == "" {
		ref.Revision = DefaultRevision
	}
	dir, found := "", 0
	for _, file := range TokenizerFiles {
		f, err := c.Download(ctx, ref, file)
		switch {
		case errors.Is(err, ErrEntryNotFound):
			continue
		case err != nil:
			return "", err
		}
		if dir == "" {
			// Pin the rest to the commit the first file resolved to.
			ref.Revision, dir = f.Commit, filepath.Dir(f.Path)
		}
		if file == "vocab.txt" || file == "tokenizer.json" {
			found++
		}
	}
	if found == 0 {
		return "", fmt.Errorf("%s has neither vocab.txt nor tokenizer.json", ref)
	}
	return dir, nil
}

func (c *Client) tokenizer(ctx context.Context, name string) (string, error) {
	if isDir(name) {
		return name, nil
	}
	return c.TokenizerAt(ctx, Ref{Repo: name, Revision: DefaultRevision})
}

// TextModel fetches the config.json of a Hugging Face text model (a
// text_cfg.hf_model_name, which OpenCLIP reads with AutoConfig) and returns
// its snapshot directory; a name that is an existing directory is returned
// unchanged.
func (c *Client) TextModel(ctx context.Context, name string) (string, error) {
	return c.textModel(ctx, name)
}

// textModel fetches the config.json of an HF text model.
func (c *Client) textModel(ctx context.Context, name string) (string, error) {
	if isDir(name) {
		return name, nil
	}
	f, err := c.Download(ctx, Ref{Repo: name, Revision: DefaultRevision}, TextModelConfigFile)
	if err != nil {
		return "", err
	}
	return filepath.Dir(f.Path), nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
