package hftext

import (
	"fmt"

	"github.com/bmca/bmca/model/bert"
)

// OpenCLIP's defaults for the fields a text_cfg leaves out (CLIPTextCfg in
// open_clip 2.32.0's model.py).
const (
	DefaultProjType   = "mlp"
	DefaultPoolerType = "mean_pooler"
)

// Pooler names, as OpenCLIP registers them (the snake_case class names in
// hf_model.py).
const (
	// ClsPooler takes BertModel's pooler_output, tanh(dense(h[:,0])); with
	// it OpenCLIP builds the model with its pooling layer.
	ClsPooler = "cls_pooler"
	// ClsLastHiddenStatePooler takes the last hidden state at position 0
	// (BiomedCLIP's choice); the model is built without its pooling layer.
	ClsLastHiddenStatePooler = "cls_last_hidden_state_pooler"
	// MeanPooler averages the last hidden state over non-padding positions.
	MeanPooler = "mean_pooler"
)

// Projection head types (hf_proj_type).
const (
	// ProjIdentity is hf_proj_type null: no head, allowed only when the
	// model's hidden size equals embed_dim.
	ProjIdentity = ""
	// ProjLinear is one bias-free Linear(hidden, embed_dim): text.proj.weight.
	ProjLinear = "linear"
	// ProjMLP is Linear(hidden, (hidden+embed_dim)/2, bias=False), exact
	// GELU, Linear(…, embed_dim, bias=False): text.proj.0.weight, text.proj.2.weight.
	ProjMLP = "mlp"
)

// Options are the fields of OpenCLIP's text_cfg that select and shape the
// Hugging Face text tower. They are embedded in the model's text_cfg, so
// the JSON names are OpenCLIP's. A nil pointer field was left out of the
// config and takes OpenCLIP's default; JSON null is Python's None, which
// the config reader turns into a pointer to "".
type Options struct {
	// HFModelName is hf_model_name, the Hugging Face model whose
	// architecture (its config.json) builds the tower; set, it replaces the
	// classic text transformer.
	HFModelName string `json:"hf_model_name,omitempty" yaml:"hf_model_name,omitempty"`
	// HFModelPretrained is hf_model_pretrained: whether OpenCLIP, building the
	// model without a checkpoint, starts from the Hub's pretrained weights
	// (default true). bmca always loads or initialises weights itself, so it
	// only round-trips this field.
	HFModelPretrained *bool `json:"hf_model_pretrained,omitempty" yaml:"hf_model_pretrained,omitempty"`
	// HFProjType is hf_proj_type: "mlp" (default), "linear", or null (no head).
	HFProjType *string `json:"hf_proj_type,omitempty" yaml:"hf_proj_type,omitempty"`
	// HFPoolerType is hf_pooler_type: "mean_pooler" (default), "cls_pooler",
	// "cls_last_hidden_state_pooler", or null, which in OpenCLIP 2.32.0 means
	// BERT's default cls_pooler on a model built without BertPooler, i.e.
	// the last hidden state at position 0.
	HFPoolerType *string `json:"hf_pooler_type,omitempty" yaml:"hf_pooler_type,omitempty"`

	// HFModelConfig is the configuration of the model HFModelName names. OpenCLIP
	// reads it with AutoConfig.from_pretrained; bmca reads no files here, so
	// the caller supplies it (SetHFModelConfig with the model's config.json,
	// or bmca's own open_clip_config.json, which carries it); when nil,
	// bert.Known is used for the models it knows. It is not part of
	// OpenCLIP's model_cfg (open_clip_config.json carries it beside, under
	// ConfigKey), but a bmca run config holds it as
	// text_cfg.hf_model_config, so that a run of a model bert.Known does not
	// know is complete in its recorded config.
	HFModelConfig *bert.Config `json:"-" yaml:"hf_model_config,omitempty"`
}

// IsHF reports whether the text tower is a Hugging Face model.
func (c Options) IsHF() bool { return c.HFModelName != "" }

// SetHFModelConfig reads the config.json of the model HFModelName names (from
// the Hub or a local copy) and uses it for the tower, replacing any
// built-in or earlier configuration.
func (c *Options) SetHFModelConfig(configJSON []byte) error {
	m, err := bert.ParseConfigJSON(configJSON)
	if err != nil {
		return fmt.Errorf("hf_model_name %s: %w", c.HFModelName, err)
	}
	c.HFModelConfig = &m
	return nil
}

// HFModel is the configuration the tower is built with: the supplied
// one, else the built-in one for a known model name.
func (c Options) HFModel() (bert.Config, error) {
	if c.HFModelConfig != nil {
		return *c.HFModelConfig, nil
	}
	if m, ok := bert.Known(c.HFModelName); ok {
		return m, nil
	}
	return bert.Config{}, fmt.Errorf("hf_model_name %q: bmca needs this model's config.json (its hidden size, layers, heads, vocabulary), which OpenCLIP reads with "+
		"transformers' AutoConfig; download it from the Hugging Face Hub and supply it, or load a checkpoint bmca saved (its open_clip_config.json carries it as %q)",
		c.HFModelName, ConfigKey)
}

// ConfigKey is the top-level key under which bmca stores the text model's
// config.json inside open_clip_config.json, so that a checkpoint it saves
// is complete without the Hub; OpenCLIP reads only model_cfg and
// preprocess_cfg and ignores it.
const ConfigKey = "hf_text_config"

// Tower resolves the configuration into the tower to build: the model's
// configuration, the pooler and head after OpenCLIP's defaults, the
// context length and the joint embedding size. Errors name the field and
// what OpenCLIP 2.32.0 would do instead.
func (c Options) Tower(contextLength, embedDim int) (Tower, error) {
	m, err := c.HFModel()
	if err != nil {
		return Tower{}, err
	}
	if err := m.Validate(); err != nil {
		return Tower{}, fmt.Errorf("hf_model_name %s: config.json: %w", c.HFModelName, err)
	}
	t := Tower{Model: m, ContextLength: contextLength, EmbedDim: embedDim, Pooler: DefaultPoolerType, Proj: DefaultProjType}
	if c.HFPoolerType != nil {
		t.Pooler = *c.HFPoolerType
		if t.Pooler == "" {
			// None: OpenCLIP decides whether to build BertPooler before it
			// replaces None by BERT's default (cls_pooler), so the model has
			// no pooler and ClsPooler falls back to hidden[:, 0].
			t.Pooler = ClsLastHiddenStatePooler
		}
	}
	switch t.Pooler {
	case ClsPooler, ClsLastHiddenStatePooler, MeanPooler:
	case "max_pooler":
		return Tower{}, fmt.Errorf("hf_pooler_type max_pooler is not supported: OpenCLIP 2.32.0's MaxPooler passes an integer mask to masked_fill and fails; use %s, %s or %s",
			MeanPooler, ClsPooler, ClsLastHiddenStatePooler)
	default:
		return Tower{}, fmt.Errorf("hf_pooler_type %q is not one of %s, %s, %s", t.Pooler, MeanPooler, ClsPooler, ClsLastHiddenStatePooler)
	}
	if c.HFProjType != nil {
		t.Proj = *c.HFProjType
	}
	switch t.Proj {
	case ProjLinear, ProjMLP:
	case ProjIdentity:
		if m.HiddenSize != embedDim {
			return Tower{}, fmt.Errorf("hf_proj_type is null (no projection head), but the model's hidden size %d differs from embed_dim %d; OpenCLIP builds no head then and fails; use %q or %q",
				m.HiddenSize, embedDim, ProjLinear, ProjMLP)
		}
	default:
		return Tower{}, fmt.Errorf("hf_proj_type %q is not one of %q, %q or null (OpenCLIP 2.32.0 builds no head for other values and fails)", t.Proj, ProjMLP, ProjLinear)
	}
	switch {
	case embedDim <= 0:
		return Tower{}, fmt.Errorf("embed_dim must be positive, got %d", embedDim)
	case contextLength < 1:
		return Tower{}, fmt.Errorf("context_length must be positive, got %d", contextLength)
	case contextLength > m.MaxPositionEmbeddings:
		return Tower{}, fmt.Errorf("context_length %d exceeds the model's max_position_embeddings %d", contextLength, m.MaxPositionEmbeddings)
	}
	return t, nil
}

// Tower is a resolved HF text tower: everything the graph needs.
type Tower struct {
	// Model is the BERT encoder's configuration.
	Model bert.Config
	// Pooler is one of ClsPooler, ClsLastHiddenStatePooler, MeanPooler.
	Pooler string
	// Proj is one of ProjIdentity, ProjLinear, ProjMLP.
	Proj string
	// ContextLength is the number of token positions the tokenizer pads to.
	ContextLength int
	// EmbedDim is the size of the joint embedding.
	EmbedDim int
}

// MLPHidden is the hidden size of the mlp head, (hidden + embed_dim) / 2.
func (t Tower) MLPHidden() int { return (t.Model.HiddenSize + t.EmbedDim) / 2 }
