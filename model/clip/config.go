package clip

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/bmca/bmca/model/textenc"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/vit"
)

// Config is OpenCLIP's model configuration (the "model_cfg" of
// open_clip_config.json, or a model_configs/*.json file), field for field.
type Config struct {
	// EmbedDim is the size of the joint image-text embedding.
	EmbedDim int `json:"embed_dim" yaml:"embed_dim"`
	// QuickGELU selects OpenAI's x*sigmoid(1.702x) activation; OpenAI and
	// some LAION weights need it, most newer weights use exact GELU.
	QuickGELU bool `json:"quick_gelu,omitempty" yaml:"quick_gelu,omitempty"`
	// InitLogitScale overrides the initial logit_scale (default ln(1/0.07)).
	InitLogitScale *float64 `json:"init_logit_scale,omitempty" yaml:"init_logit_scale,omitempty"`
	// VisionCfg is the image tower.
	VisionCfg vit.Config `json:"vision_cfg" yaml:"vision_cfg"`
	// TextCfg is the text tower.
	TextCfg textenc.Config `json:"text_cfg" yaml:"text_cfg"`

	// Runtime is how the graphs compute (precision, gradient
	// checkpointing). It is a choice of the run, not part of the model, so
	// it is never saved with one.
	transformer.Runtime `json:"-" yaml:"-"`
}

// DefaultLogitScale is OpenCLIP's initial logit_scale, ln(1/0.07).
var DefaultLogitScale = math.Log(1 / 0.07)

// MaxLogitScale is the clamp OpenCLIP applies after every step, ln(100).
var MaxLogitScale = math.Log(100)

// LogitScaleInit is the initial logit_scale of this configuration.
func (c Config) LogitScaleInit() float64 {
	if c.InitLogitScale != nil {
		return *c.InitLogitScale
	}
	return DefaultLogitScale
}

// Validate reports the first problem that prevents building the model,
// naming the OpenCLIP field.
func (c Config) Validate() error {
	if c.EmbedDim <= 0 {
		return fmt.Errorf("embed_dim must be positive, got %d", c.EmbedDim)
	}
	if err := c.VisionCfg.Validate(); err != nil {
		return fmt.Errorf("vision_cfg: %w", err)
	}
	if err := c.TextCfg.Validate(); err != nil {
		return fmt.Errorf("text_cfg: %w", err)
	}
	return nil
}

// ParseConfigJSON reads an OpenCLIP model config. Both a bare model config
// and an open_clip_config.json wrapper ({"model_cfg": ...}) are accepted;
// unknown fields are errors, because OpenCLIP features we do not implement
// (timm towers, LayerScale, attention pooling) would otherwise be silently
// ignored and give a different model.
func ParseConfigJSON(data []byte) (Config, error) {
	var wrapper struct {
		ModelCfg json.RawMessage `json:"model_cfg"`
	}
	if err := json.Unmarshal(data, &wrapper); err == nil && len(wrapper.ModelCfg) > 0 {
		data = wrapper.ModelCfg
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("model config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("model config: %w", err)
	}
	return c, nil
}

// PreprocessConfig is open_clip_config.json's "preprocess_cfg".
type PreprocessConfig struct {
	Mean          [3]float64 `json:"mean"`
	Std           [3]float64 `json:"std"`
	Interpolation string     `json:"interpolation"`
	ResizeMode    string     `json:"resize_mode"`
}

// OpenAIPreprocess is the preprocessing every CLIP ViT in OpenCLIP uses by default.
var OpenAIPreprocess = PreprocessConfig{
	Mean:          [3]float64{0.48145466, 0.4578275, 0.40821073},
	Std:           [3]float64{0.26862954, 0.26130258, 0.27577711},
	Interpolation: "bicubic",
	ResizeMode:    "shortest",
}

// OpenCLIPConfigJSON renders open_clip_config.json as OpenCLIP's
// push_to_hf_hub writes it, so OpenCLIP can load our checkpoints.
func (c Config) OpenCLIPConfigJSON(pre PreprocessConfig) ([]byte, error) {
	out := struct {
		ModelCfg      Config           `json:"model_cfg"`
		PreprocessCfg PreprocessConfig `json:"preprocess_cfg"`
	}{c, pre}
	return json.MarshalIndent(out, "", "  ")
}
