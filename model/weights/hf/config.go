package hf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/textenc"
	"github.com/bmca/bmca/model/vit"
	"github.com/bmca/bmca/model/weights"
)

// TextConfig is transformers' CLIPTextConfig, the fields that shape the tower.
type TextConfig struct {
	ModelType             string `json:"model_type,omitempty"`
	VocabSize             int    `json:"vocab_size"`
	HiddenSize            int    `json:"hidden_size"`
	IntermediateSize      int    `json:"intermediate_size"`
	NumHiddenLayers       int    `json:"num_hidden_layers"`
	NumAttentionHeads     int    `json:"num_attention_heads"`
	MaxPositionEmbeddings int    `json:"max_position_embeddings"`
	HiddenAct             string `json:"hidden_act"`
	LayerNormEps          Float  `json:"layer_norm_eps"`
	ProjectionDim         int    `json:"projection_dim"`
	BOSTokenID            int    `json:"bos_token_id"`
	EOSTokenID            int    `json:"eos_token_id"`
	PadTokenID            int    `json:"pad_token_id"`
}

// VisionConfig is transformers' CLIPVisionConfig, the fields that shape the tower.
type VisionConfig struct {
	ModelType         string `json:"model_type,omitempty"`
	HiddenSize        int    `json:"hidden_size"`
	IntermediateSize  int    `json:"intermediate_size"`
	NumHiddenLayers   int    `json:"num_hidden_layers"`
	NumAttentionHeads int    `json:"num_attention_heads"`
	NumChannels       int    `json:"num_channels"`
	ImageSize         int    `json:"image_size"`
	PatchSize         int    `json:"patch_size"`
	HiddenAct         string `json:"hidden_act"`
	LayerNormEps      Float  `json:"layer_norm_eps"`
	ProjectionDim     int    `json:"projection_dim"`
}

// Float is a field transformers declares as a float. Its strict config
// classes (transformers 5) refuse an int where a float is declared, and
// encoding/json writes 1.0 as 1, so Float always writes a decimal point
// or an exponent.
type Float float64

// MarshalJSON writes f as a JSON number Python reads as a float.
func (f Float) MarshalJSON() ([]byte, error) {
	x := float64(f)
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil, fmt.Errorf("hf config: %v has no JSON form", x)
	}
	b, err := json.Marshal(x)
	if err != nil {
		return nil, err
	}
	if !bytes.ContainsAny(b, ".eE") {
		b = append(b, ".0"...)
	}
	return b, nil
}

// Config is transformers' CLIPConfig (a CLIPModel's config.json).
type Config struct {
	Architectures       []string     `json:"architectures,omitempty"`
	ModelType           string       `json:"model_type"`
	ProjectionDim       int          `json:"projection_dim"`
	LogitScaleInitValue Float        `json:"logit_scale_init_value"`
	InitializerFactor   Float        `json:"initializer_factor"`
	TorchDType          string       `json:"torch_dtype,omitempty"`
	TextConfig          TextConfig   `json:"text_config"`
	VisionConfig        VisionConfig `json:"vision_config"`
}

// Default values of transformers' configuration_clip.py. save_pretrained
// may leave out fields equal to them, so parsing starts from these.
func defaultText() TextConfig {
	return TextConfig{VocabSize: 49408, HiddenSize: 512, IntermediateSize: 2048, NumHiddenLayers: 12,
		NumAttentionHeads: 8, MaxPositionEmbeddings: 77, HiddenAct: "quick_gelu", LayerNormEps: 1e-5,
		ProjectionDim: 512, BOSTokenID: 49406, EOSTokenID: 49407, PadTokenID: 1}
}

func defaultVision() VisionConfig {
	return VisionConfig{HiddenSize: 768, IntermediateSize: 3072, NumHiddenLayers: 12, NumAttentionHeads: 12,
		NumChannels: 3, ImageSize: 224, PatchSize: 32, HiddenAct: "quick_gelu", LayerNormEps: 1e-5, ProjectionDim: 512}
}

// IsConfigJSON reports whether data looks like a transformers CLIP config
// rather than an OpenCLIP model config: it has text_config/vision_config
// or a model_type.
func IsConfigJSON(data []byte) bool {
	var probe map[string]json.RawMessage
	if json.Unmarshal(data, &probe) != nil {
		return false
	}
	_, text := probe["text_config"]
	_, vision := probe["vision_config"]
	_, mt := probe["model_type"]
	return text || vision || mt
}

// ParseConfig reads a transformers CLIPModel config.json (missing fields
// take transformers' defaults; the text_config_dict/vision_config_dict of
// old configs override) and returns the OpenCLIP model config of the same
// model. Settings our model cannot reproduce (another activation, a
// LayerNorm eps other than 1e-5, different activations in the two towers,
// another model_type) are errors.
func ParseConfig(data []byte) (clip.Config, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return clip.Config{}, fmt.Errorf("hf config: %w", err)
	}
	hc := Config{ProjectionDim: 512, LogitScaleInitValue: 2.6592, TextConfig: defaultText(), VisionConfig: defaultVision()}
	for _, f := range []struct {
		key string
		dst any
	}{
		{"model_type", &hc.ModelType}, {"projection_dim", &hc.ProjectionDim},
		{"text_config", &hc.TextConfig}, {"text_config_dict", &hc.TextConfig},
		{"vision_config", &hc.VisionConfig}, {"vision_config_dict", &hc.VisionConfig},
	} {
		if v, ok := raw[f.key]; ok && string(v) != "null" {
			if err := json.Unmarshal(v, f.dst); err != nil {
				return clip.Config{}, fmt.Errorf("hf config: %s: %w", f.key, err)
			}
		}
	}
	if hc.ModelType != "" && hc.ModelType != "clip" {
		return clip.Config{}, fmt.Errorf("hf config: model_type %q is not a CLIPModel (want \"clip\")", hc.ModelType)
	}
	t, v := hc.TextConfig, hc.VisionConfig
	quick, err := activation("text_config", t.HiddenAct)
	if err != nil {
		return clip.Config{}, err
	}
	vquick, err := activation("vision_config", v.HiddenAct)
	if err != nil {
		return clip.Config{}, err
	}
	if quick != vquick {
		return clip.Config{}, fmt.Errorf("hf config: text_config.hidden_act %q and vision_config.hidden_act %q differ; the OpenCLIP model has one quick_gelu setting", t.HiddenAct, v.HiddenAct)
	}
	for _, eps := range []struct {
		field string
		v     float64
	}{{"text_config.layer_norm_eps", float64(t.LayerNormEps)}, {"vision_config.layer_norm_eps", float64(v.LayerNormEps)}} {
		if math.Abs(eps.v-1e-5) > 1e-12 {
			return clip.Config{}, fmt.Errorf("hf config: %s is %g; CLIP's LayerNorm uses 1e-5", eps.field, eps.v)
		}
	}
	if v.NumChannels != 3 {
		return clip.Config{}, fmt.Errorf("hf config: vision_config.num_channels is %d, CLIP takes RGB (3)", v.NumChannels)
	}
	if v.NumAttentionHeads <= 0 || v.HiddenSize%v.NumAttentionHeads != 0 {
		return clip.Config{}, fmt.Errorf("hf config: vision_config.hidden_size %d is not divisible by num_attention_heads %d", v.HiddenSize, v.NumAttentionHeads)
	}
	vr, err := mlpRatio("vision_config", v.HiddenSize, v.IntermediateSize)
	if err != nil {
		return clip.Config{}, err
	}
	tr, err := mlpRatio("text_config", t.HiddenSize, t.IntermediateSize)
	if err != nil {
		return clip.Config{}, err
	}
	c := clip.Config{
		EmbedDim:  hc.ProjectionDim,
		QuickGELU: quick,
		VisionCfg: clip.VisionConfig{Config: vit.Config{ImageSize: v.ImageSize, PatchSize: v.PatchSize, Width: v.HiddenSize, Layers: v.NumHiddenLayers,
			HeadWidth: v.HiddenSize / v.NumAttentionHeads, MLPRatio: vr}},
		TextCfg: clip.TextConfig{Config: textenc.Config{ContextLength: t.MaxPositionEmbeddings, VocabSize: t.VocabSize, Width: t.HiddenSize,
			Heads: t.NumAttentionHeads, Layers: t.NumHiddenLayers, MLPRatio: tr}},
	}
	if err := c.Validate(); err != nil {
		return clip.Config{}, fmt.Errorf("hf config: %w", err)
	}
	return c, nil
}

func activation(field, act string) (quickGELU bool, err error) {
	switch act {
	case "quick_gelu":
		return true, nil
	case "gelu":
		return false, nil
	}
	return false, fmt.Errorf("hf config: %s.hidden_act %q is not supported (CLIP uses quick_gelu or gelu)", field, act)
}

// mlpRatio turns intermediate_size into OpenCLIP's mlp_ratio, checking that
// int(width*ratio) gives it back, as OpenCLIP sizes the MLP; the default 4
// is left implicit (0) so the OpenCLIP config stays minimal.
func mlpRatio(field string, width, intermediate int) (float64, error) {
	if width <= 0 || intermediate <= 0 {
		return 0, fmt.Errorf("hf config: %s: hidden_size %d, intermediate_size %d", field, width, intermediate)
	}
	r := float64(intermediate) / float64(width)
	if int(float64(width)*r) != intermediate {
		return 0, fmt.Errorf("hf config: %s.intermediate_size %d is not an OpenCLIP mlp_ratio of hidden_size %d", field, intermediate, width)
	}
	if r == 4 {
		return 0, nil
	}
	return r, nil
}

// ConfigJSON renders the transformers config.json of the CLIPModel that
// holds c's weights; dtype (F32, F16 or BF16) is recorded as torch_dtype.
// eos_token_id is 2, as in OpenAI's own CLIPModel configs: transformers
// then pools the text at argmax(input_ids), exactly OpenCLIP's rule, for
// any tokenizer whose end-of-text id is the largest.
func ConfigJSON(c clip.Config, dtype weights.DType) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.VisionCfg.IsTimm() || c.TextCfg.IsHF() {
		return nil, fmt.Errorf("hf config: transformers' CLIPModel has no timm image tower or Hugging Face text tower; export this model in OpenCLIP's layout")
	}
	act := "gelu"
	if c.QuickGELU {
		act = "quick_gelu"
	}
	torchDType := map[weights.DType]string{weights.F32: "float32", weights.F16: "float16", weights.BF16: "bfloat16", weights.F64: "float64"}[dtype]
	if torchDType == "" {
		return nil, fmt.Errorf("hf config: dtype %q", dtype)
	}
	v, t := c.VisionCfg.WithDefaults(), c.TextCfg.WithDefaults()
	hc := Config{
		Architectures:       []string{"CLIPModel"},
		ModelType:           "clip",
		ProjectionDim:       c.EmbedDim,
		LogitScaleInitValue: Float(c.LogitScaleInit()),
		InitializerFactor:   1,
		TorchDType:          torchDType,
		TextConfig: TextConfig{ModelType: "clip_text_model", VocabSize: t.VocabSize, HiddenSize: t.Width,
			IntermediateSize: t.Transformer(false).MLPWidth(), NumHiddenLayers: t.Layers, NumAttentionHeads: t.Heads,
			MaxPositionEmbeddings: t.ContextLength, HiddenAct: act, LayerNormEps: 1e-5, ProjectionDim: c.EmbedDim,
			BOSTokenID: 0, EOSTokenID: 2, PadTokenID: 1},
		VisionConfig: VisionConfig{ModelType: "clip_vision_model", HiddenSize: v.Width,
			IntermediateSize: v.Transformer(false).MLPWidth(), NumHiddenLayers: v.Layers, NumAttentionHeads: v.Width / v.HeadWidth,
			NumChannels: 3, ImageSize: v.ImageSize, PatchSize: v.PatchSize, HiddenAct: act, LayerNormEps: 1e-5,
			ProjectionDim: c.EmbedDim},
	}
	return json.MarshalIndent(hc, "", "  ")
}
