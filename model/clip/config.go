package clip

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/bmca/bmca/model/bert"
	"github.com/bmca/bmca/model/hftext"
	"github.com/bmca/bmca/model/transformer"
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
	VisionCfg VisionConfig `json:"vision_cfg" yaml:"vision_cfg"`
	// TextCfg is the text tower.
	TextCfg TextConfig `json:"text_cfg" yaml:"text_cfg"`

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
	if err := c.VisionCfg.Validate(c.EmbedDim); err != nil {
		return fmt.Errorf("vision_cfg: %w", err)
	}
	if err := c.TextCfg.Validate(c.EmbedDim); err != nil {
		return fmt.Errorf("text_cfg: %w", err)
	}
	return nil
}

// ParseConfigJSON reads an OpenCLIP model config. Both a bare model config
// and an open_clip_config.json wrapper ({"model_cfg": ...}) are accepted;
// unknown fields are errors, because OpenCLIP features we do not implement
// (LayerScale, attention pooling, other text towers) would otherwise be
// silently ignored and give a different model.
//
// As in OpenCLIP, a JSON null in timm_pool, timm_proj, hf_proj_type or
// hf_pooler_type is Python's None, not an omitted field; a timm tower
// without image_size gets 224 and an HF tower without context_length 77.
// The wrapper's hftext.ConfigKey entry, which bmca writes, supplies the HF
// text model's config.json; without it the model must be one bert.Known
// knows (see ParseConfigJSONWith).
func ParseConfigJSON(data []byte) (Config, error) {
	return ParseConfigJSONWith(data, nil)
}

// HFConfigSource returns the config.json of the Hugging Face model
// modelName (a text_cfg's hf_model_name), which OpenCLIP reads with
// transformers' AutoConfig.from_pretrained from the Hub or its cache.
// Model code reads no files: callers that can reach the Hub supply one.
type HFConfigSource func(modelName string) ([]byte, error)

// ParseConfigJSONWith is ParseConfigJSON for configs whose HF text model
// may be one bmca does not know: unless the file carries the model's
// config.json (hftext.ConfigKey), hfConfigs is asked for it. When it
// fails, a model bert.Known knows falls back to the built-in
// configuration; any other is an error. hfConfigs may be nil.
func ParseConfigJSONWith(data []byte, hfConfigs HFConfigSource) (Config, error) {
	var wrapper struct {
		ModelCfg     json.RawMessage `json:"model_cfg"`
		HFTextConfig json.RawMessage `json:"hf_text_config"`
	}
	var hfText json.RawMessage
	if err := json.Unmarshal(data, &wrapper); err == nil && len(wrapper.ModelCfg) > 0 {
		data, hfText = wrapper.ModelCfg, wrapper.HFTextConfig
	}
	dec := json.NewDecoder(bytes.NewReader(nonesAsEmpty(data)))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("model config: %w", err)
	}
	c = c.withOpenCLIPDefaults()
	switch {
	case len(hfText) > 0 && string(hfText) != "null":
		if !c.TextCfg.IsHF() {
			return Config{}, fmt.Errorf("model config: %s is given but text_cfg has no hf_model_name", hftext.ConfigKey)
		}
		if err := c.TextCfg.SetHFModelConfig(hfText); err != nil {
			return Config{}, fmt.Errorf("model config: %s: %w", hftext.ConfigKey, err)
		}
	case c.TextCfg.IsHF() && hfConfigs != nil:
		name := c.TextCfg.HFModelName
		configJSON, err := hfConfigs(name)
		if err != nil {
			if _, known := bert.Known(name); known {
				break // offline: the built-in configuration of this model
			}
			return Config{}, fmt.Errorf("model config: text_cfg.hf_model_name %s: config.json: %w", name, err)
		}
		if err := c.TextCfg.SetHFModelConfig(configJSON); err != nil {
			return Config{}, fmt.Errorf("model config: text_cfg: %w", err)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("model config: %w", err)
	}
	return c, nil
}

// noneFields are the string fields whose JSON null (Python's None) means
// something other than leaving them out; ParseConfigJSON reads null as "".
func noneFields() map[string][]string {
	return map[string][]string{
		"vision_cfg": {"timm_pool", "timm_proj"},
		"text_cfg":   {"hf_proj_type", "hf_pooler_type"},
	}
}

// nonesAsEmpty rewrites null in noneFields to "", leaving data unchanged
// when it is not a model config object (the strict decode reports that).
func nonesAsEmpty(data []byte) []byte {
	var cfg map[string]json.RawMessage
	if json.Unmarshal(data, &cfg) != nil {
		return data
	}
	changed := false
	for section, fields := range noneFields() {
		var sub map[string]json.RawMessage
		if json.Unmarshal(cfg[section], &sub) != nil || sub == nil {
			continue
		}
		for _, f := range fields {
			if v, ok := sub[f]; ok && string(bytes.TrimSpace(v)) == "null" {
				sub[f] = json.RawMessage(`""`)
				changed = true
			}
		}
		if raw, err := json.Marshal(sub); err == nil {
			cfg[section] = raw
		}
	}
	if !changed {
		return data
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		return data
	}
	return out
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
// For an HF text tower it also carries the text model's config.json under
// hftext.ConfigKey (which OpenCLIP ignores), so that the checkpoint loads
// without the Hub.
func (c Config) OpenCLIPConfigJSON(pre PreprocessConfig) ([]byte, error) {
	out := struct {
		ModelCfg      Config           `json:"model_cfg"`
		PreprocessCfg PreprocessConfig `json:"preprocess_cfg"`
		HFTextConfig  *bert.Config     `json:"hf_text_config,omitempty"`
	}{ModelCfg: c, PreprocessCfg: pre}
	if c.TextCfg.IsHF() {
		m, err := c.TextCfg.HFModel()
		if err != nil {
			return nil, fmt.Errorf("open_clip_config.json: %w", err)
		}
		out.HFTextConfig = &m
	}
	return json.MarshalIndent(out, "", "  ")
}
