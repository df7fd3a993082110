package clip

import (
	"fmt"

	"github.com/bmca/bmca/model/hftext"
	"github.com/bmca/bmca/model/textenc"
	"github.com/bmca/bmca/model/timmvit"
	"github.com/bmca/bmca/model/vit"
)

// VisionConfig is OpenCLIP's vision_cfg (CLIPVisionCfg): the fields of
// OpenCLIP's own VisionTransformer and the timm_* fields. A
// timm_model_name selects a timm tower (package timmvit) in place of the
// VisionTransformer (package vit); image_size is the input resolution
// for both.
type VisionConfig struct {
	vit.Config      `yaml:",inline"`
	timmvit.Options `yaml:",inline"`
}

// Validate reports the first problem that prevents building the tower.
func (v VisionConfig) Validate(embedDim int) error {
	if v.IsTimm() {
		_, err := v.Timm(embedDim)
		return err
	}
	return v.Config.Validate()
}

// Timm resolves a timm tower (see timmvit.Options.Tower).
func (v VisionConfig) Timm(embedDim int) (timmvit.Tower, error) {
	return v.Tower(v.Config, embedDim)
}

// TextConfig is OpenCLIP's text_cfg (CLIPTextCfg): the fields of its
// classic text transformer and the hf_* fields. An hf_model_name selects
// a Hugging Face text tower (package hftext) at text.*, in place of the
// transformer at the root of the state dict (OpenCLIP's CustomTextCLIP
// instead of CLIP); context_length is the token length for both.
type TextConfig struct {
	textenc.Config `yaml:",inline"`
	hftext.Options `yaml:",inline"`
	// HFTokenizerName is hf_tokenizer_name, the Hugging Face tokenizer
	// OpenCLIP loads for this model (AutoTokenizer). It concerns the
	// tokenizer, not the tower, and is kept for it.
	HFTokenizerName string `json:"hf_tokenizer_name,omitempty" yaml:"hf_tokenizer_name,omitempty"`
}

// Validate reports the first problem that prevents building the tower.
func (t TextConfig) Validate(embedDim int) error {
	if t.IsHF() {
		_, err := t.HF(embedDim)
		return err
	}
	return t.Config.Validate()
}

// HF resolves a Hugging Face tower (see hftext.Options.Tower).
func (t TextConfig) HF(embedDim int) (hftext.Tower, error) {
	return t.Tower(t.ContextLength, embedDim)
}

// TokenVocabSize is the number of token ids the tower embeds: vocab_size
// for the classic tower, the Hugging Face model's vocab_size otherwise
// (0 when its configuration is unknown).
func (t TextConfig) TokenVocabSize() int {
	if !t.IsHF() {
		return t.VocabSize
	}
	m, err := t.HFModel()
	if err != nil {
		return 0
	}
	return m.VocabSize
}

// OpenCLIP's defaults for fields the new towers' configs usually omit
// (CLIPVisionCfg.image_size, CLIPTextCfg.context_length).
const (
	defaultImageSize     = timmvit.DefaultImageSize
	defaultContextLength = 77
)

// withOpenCLIPDefaults fills the fields OpenCLIP defaults and other code
// reads directly: the input resolution of a timm tower and the context
// length of an HF tower (the classic towers must give both).
func (c Config) withOpenCLIPDefaults() Config {
	if c.VisionCfg.IsTimm() && c.VisionCfg.ImageSize == 0 {
		c.VisionCfg.ImageSize = defaultImageSize
	}
	if c.TextCfg.IsHF() && c.TextCfg.ContextLength == 0 {
		c.TextCfg.ContextLength = defaultContextLength
	}
	return c
}

// mustTimm and mustHF resolve towers of a configuration that Validate
// accepted; an invalid one is a programming error.
func mustTimm(c Config) timmvit.Tower {
	t, err := c.VisionCfg.Timm(c.EmbedDim)
	if err != nil {
		panic(fmt.Sprintf("clip: invalid vision_cfg (Validate the config first): %v", err))
	}
	return t
}

func mustHF(c Config) hftext.Tower {
	t, err := c.TextCfg.HF(c.EmbedDim)
	if err != nil {
		panic(fmt.Sprintf("clip: invalid text_cfg (Validate the config first): %v", err))
	}
	return t
}
