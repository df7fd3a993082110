package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/hub"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/text/tokenizer"
)

// TokenizerFlags name how a command's user sets tokenizer.name and
// tokenizer.vocab, so that an error says exactly what to pass.
type TokenizerFlags struct {
	// Name and Vocab each precede a value: "--set tokenizer.name=" or
	// "--tokenizer ".
	Name, Vocab string
}

// ConfigTokenizerFlags are the settings of the commands that take a run
// config (train, eval).
var ConfigTokenizerFlags = TokenizerFlags{Name: "--set tokenizer.name=", Vocab: "--set tokenizer.vocab="}

// TokenizerSavedDir is the folder next to a checkpoint where its tokenizer's
// files (vocab.txt, tokenizer_config.json, …, as transformers'
// save_pretrained writes them) are looked for; the checkpoint's own folder
// is looked in first.
const TokenizerSavedDir = "tokenizer"

// TokenizerRequest is what decides the tokenizer of one model.
type TokenizerRequest struct {
	// Choice is the tokenizer section of the run config, or the command's
	// flags; an empty Name means config.TokenizerAuto.
	Choice config.Tokenizer
	// Origin says where Choice came from ("the run config of runs/x",
	// "--config run.yaml"), for errors.
	Origin string
	// Model is the model the ids feed: its text tower decides what auto
	// means and which tokenizers fit, its context length the ids' length.
	Model clip.Config
	// CheckpointDir is the folder of the model's checkpoint, where a saved
	// tokenizer is looked for (see TokenizerSavedDir); may be empty.
	CheckpointDir string
	// Flags name the command's settings, for errors.
	Flags TokenizerFlags
	// Progress receives the bars of hub downloads.
	Progress io.Writer
}

// Tokenizer is a tokenizer decided by ResolveTokenizer, with what it was
// built from.
type Tokenizer struct {
	tokenizer.Tokenizer
	// Name is the tokenizer built (never auto).
	Name string
	// Vocab is the local vocabulary file or folder it read ("" for
	// byte-level).
	Vocab string
	// From says how the vocabulary was found, for reports.
	From string
}

// String describes the tokenizer for reports.
func (t *Tokenizer) String() string {
	if t.From == "" {
		return t.Name
	}
	return t.Name + " (" + t.From + ")"
}

// ResolveTokenizer is the one place a model's tokenizer is decided, for
// train, eval and embed alike. An explicit name is checked against the
// text tower (config.Tokenizer.Fits); TokenizerAuto (or no name) is the
// model's own, as open_clip.get_tokenizer picks it: for a Hugging Face text
// tower, bert-wordpiece over the tokenizer saved next to the checkpoint
// (in its folder or TokenizerSavedDir) or else text_cfg.hf_tokenizer_name,
// from the Hugging Face cache or downloaded into it (as for hf-hub:
// checkpoints; HF_HUB_OFFLINE is honoured); for OpenCLIP's text tower,
// clip-bpe over Choice.Vocab, the one file no checkpoint carries. A
// bert-wordpiece without a vocabulary takes the model's as auto does, and
// a vocabulary hf-hub:ORG/NAME[@REVISION] is a tokenizer repository on the
// hub. Errors say what to pass, in the terms of req.Flags.
func ResolveTokenizer(ctx context.Context, req TokenizerRequest) (*Tokenizer, error) {
	text := req.Model.TextCfg
	name, vocab := req.Choice.Name, req.Choice.Vocab
	origin := req.Origin
	if origin == "" {
		origin = "the configuration"
	}
	if name == "" {
		name = config.TokenizerAuto
	}
	if err := req.Choice.Fits(text); err != nil {
		return nil, fmt.Errorf("tokenizer %s (from %s) cannot feed this model: %w", name, origin, err)
	}
	out := &Tokenizer{Name: name, Vocab: vocab}
	switch {
	case text.IsHF() && (name == config.TokenizerAuto || name == tokenizer.NameBERTWordPiece && vocab == ""):
		out.Name = tokenizer.NameBERTWordPiece
		var err error
		if out.Vocab, out.From, err = modelTokenizer(ctx, req); err != nil {
			return nil, err
		}
	case name == config.TokenizerAuto || name == tokenizer.NameCLIPBPE:
		out.Name = tokenizer.NameCLIPBPE
		if vocab == "" {
			return nil, fmt.Errorf("the model's text tower is OpenCLIP's, whose tokenizer is clip-bpe (tokenizer %s from %s), and no checkpoint carries its vocabulary: pass %sPATH/%s (%s)",
				name, origin, req.Flags.Vocab, tokenizer.CLIPVocabFile, tokenizer.CLIPVocabSource)
		}
		if hub.IsRef(vocab) {
			return nil, fmt.Errorf("tokenizer vocabulary %s (from %s): a hub tokenizer repository serves bert-wordpiece only; clip-bpe needs OpenCLIP's %s", vocab, origin, tokenizer.CLIPVocabFile)
		}
		out.From = "vocabulary " + vocab
	case name == tokenizer.NameBERTWordPiece && hub.IsRef(vocab):
		ref, err := hub.ParseRef(vocab)
		if err != nil {
			return nil, fmt.Errorf("tokenizer vocabulary (from %s): %w", origin, err)
		}
		c, err := hubClient(req.Progress)
		if err != nil {
			return nil, err
		}
		if out.Vocab, err = c.TokenizerAt(ctx, ref); err != nil {
			return nil, fmt.Errorf("tokenizer vocabulary %s (from %s): %w", vocab, origin, err)
		}
		out.From = vocab
	case name == tokenizer.NameByteLevel:
		out.Vocab = "" // it reads none
	case vocab != "":
		out.From = "vocabulary " + vocab
	}
	tok, err := tokenizer.New(out.Name, text.ContextLength, out.Vocab)
	if err != nil {
		return nil, err
	}
	if tok.VocabSize() > text.TokenVocabSize() {
		return nil, fmt.Errorf("tokenizer %s produces ids up to %d but the model embeds %d token ids (its text vocab_size)", out, tok.VocabSize()-1, text.TokenVocabSize())
	}
	out.Tokenizer = tok
	return out, nil
}

// modelTokenizer finds the BERT tokenizer of a model with a Hugging Face
// text tower: saved next to its checkpoint, else text_cfg.hf_tokenizer_name
// through the hub client (its cache first). It returns the folder and how
// it was found.
func modelTokenizer(ctx context.Context, req TokenizerRequest) (string, string, error) {
	if req.CheckpointDir != "" {
		for _, dir := range []string{req.CheckpointDir, filepath.Join(req.CheckpointDir, TokenizerSavedDir)} {
			if holdsVocabulary(dir) {
				return dir, "saved with the checkpoint in " + dir, nil
			}
		}
	}
	name := req.Model.TextCfg.HFTokenizerName
	pass := fmt.Sprintf("pass %s%s %sDIR (a folder holding its vocab.txt) or %shf-hub:ORG/NAME, or save the tokenizer in a folder %q next to the checkpoint",
		req.Flags.Name, tokenizer.NameBERTWordPiece, req.Flags.Vocab, req.Flags.Vocab, TokenizerSavedDir)
	if name == "" {
		return "", "", fmt.Errorf("the model's text tower is the Hugging Face model %s, but its text_cfg names no hf_tokenizer_name and no tokenizer was saved with the checkpoint: %s",
			req.Model.TextCfg.HFModelName, pass)
	}
	c, err := hubClient(req.Progress)
	if err != nil {
		return "", "", err
	}
	dir, err := c.Tokenizer(ctx, name)
	if err != nil {
		return "", "", fmt.Errorf("the model's tokenizer, text_cfg.hf_tokenizer_name %s: %w\n(%s)", name, err, pass)
	}
	return dir, "text_cfg.hf_tokenizer_name " + name, nil
}

// holdsVocabulary reports whether dir holds a BERT vocabulary
// (vocab.txt or tokenizer.json).
func holdsVocabulary(dir string) bool {
	for _, f := range []string{"vocab.txt", "tokenizer.json"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}
