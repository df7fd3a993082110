package bert

import (
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Config is a BERT encoder's shape, field for field as Hugging Face's
// config.json (transformers' BertConfig) spells it, so the file can be
// read as is and written back for transformers' AutoConfig.
type Config struct {
	// ModelType is "bert"; other families (RoBERTa, ModernBERT, …) differ in
	// their embeddings or blocks and are refused.
	ModelType string `json:"model_type" yaml:"model_type"`
	// VocabSize is the number of WordPiece ids (rows of word_embeddings).
	VocabSize int `json:"vocab_size" yaml:"vocab_size"`
	// HiddenSize is the width of the residual stream.
	HiddenSize int `json:"hidden_size" yaml:"hidden_size"`
	// NumHiddenLayers is the number of encoder layers.
	NumHiddenLayers int `json:"num_hidden_layers" yaml:"num_hidden_layers"`
	// NumAttentionHeads splits HiddenSize into heads; weights do not record it.
	NumAttentionHeads int `json:"num_attention_heads" yaml:"num_attention_heads"`
	// IntermediateSize is the hidden size of each layer's feed-forward block.
	IntermediateSize int `json:"intermediate_size" yaml:"intermediate_size"`
	// HiddenAct is the feed-forward activation; only "gelu" (exact erf GELU,
	// transformers' ACT2FN["gelu"]) is supported.
	HiddenAct string `json:"hidden_act" yaml:"hidden_act"`
	// MaxPositionEmbeddings is the number of learned positions; inputs may
	// not be longer.
	MaxPositionEmbeddings int `json:"max_position_embeddings" yaml:"max_position_embeddings"`
	// TypeVocabSize is the number of token types (segments).
	TypeVocabSize int `json:"type_vocab_size" yaml:"type_vocab_size"`
	// LayerNormEps is every LayerNorm's epsilon (1e-12 in BERT, not torch's 1e-5).
	LayerNormEps float64 `json:"layer_norm_eps" yaml:"layer_norm_eps"`
	// PadTokenID is the padding id; OpenCLIP masks every position holding it.
	PadTokenID int `json:"pad_token_id" yaml:"pad_token_id"`
	// PositionEmbeddingType must be "absolute" (or absent); relative
	// position schemes are not implemented.
	PositionEmbeddingType string `json:"position_embedding_type,omitempty" yaml:"position_embedding_type,omitempty"`
}

// Defaults is transformers' BertConfig() with no arguments: BERT-base,
// uncased vocabulary size. A config.json that leaves a field out gets it
// from here, as AutoConfig does.
func Defaults() Config {
	return Config{
		ModelType:             "bert",
		VocabSize:             30522,
		HiddenSize:            768,
		NumHiddenLayers:       12,
		NumAttentionHeads:     12,
		IntermediateSize:      3072,
		HiddenAct:             "gelu",
		MaxPositionEmbeddings: 512,
		TypeVocabSize:         2,
		LayerNormEps:          1e-12,
		PadTokenID:            0,
	}
}

// Known returns the configuration of a Hugging Face model bmca knows
// without reading its config.json, for use when the file cannot be had
// (offline). The BiomedBERT (formerly PubMedBERT) base uncased abstract
// model, BiomedCLIP's text tower, publishes exactly transformers'
// BertConfig defaults: vocabulary 30522, hidden 768, 12 layers of 12
// heads, intermediate 3072, 512 positions, 2 token types, LayerNorm eps
// 1e-12, exact GELU, pad id 0. A config.json from the Hub, when the caller
// has one, is preferred (see package hftext).
func Known(name string) (Config, bool) {
	switch name {
	case "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
		"microsoft/BiomedNLP-PubMedBERT-base-uncased-abstract":
		return Defaults(), true
	}
	return Config{}, false
}

// ParseConfigJSON reads a Hugging Face config.json. Fields it leaves out
// take BertConfig's defaults; fields that do not change the forward pass
// (dropout rates, architectures, initializer_range, …) are ignored; and
// settings this package does not implement are errors naming the field.
func ParseConfigJSON(data []byte) (Config, error) {
	c := Defaults()
	if err := json.Unmarshal(data, &c); err != nil {
		return Config{}, fmt.Errorf("bert config.json: %w", err)
	}
	var extra struct {
		IsDecoder         bool `json:"is_decoder" yaml:"is_decoder"`
		AddCrossAttention bool `json:"add_cross_attention" yaml:"add_cross_attention"`
	}
	if err := json.Unmarshal(data, &extra); err != nil {
		return Config{}, fmt.Errorf("bert config.json: %w", err)
	}
	switch {
	case extra.IsDecoder:
		return Config{}, fmt.Errorf("bert config.json: is_decoder is true; only the bidirectional encoder is supported")
	case extra.AddCrossAttention:
		return Config{}, fmt.Errorf("bert config.json: add_cross_attention is true; only self-attention is supported")
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("bert config.json: %w", err)
	}
	return c, nil
}

// UnmarshalYAML reads the configuration from YAML (a run config's
// model.text_cfg.hf_model_config) as ParseConfigJSON reads config.json:
// left-out fields take BertConfig's defaults, fields that do not change
// the forward pass are ignored, a decoder or cross-attention is refused.
// A run config can then hold the file as is. The values are checked where
// the model is (Validate), after the run config has checked every number
// is finite, so that errors name the key.
func (c *Config) UnmarshalYAML(node *yaml.Node) error {
	type plain Config // without this method
	p := plain(Defaults())
	if err := node.Decode(&p); err != nil {
		return err
	}
	var extra struct {
		IsDecoder         bool `yaml:"is_decoder"`
		AddCrossAttention bool `yaml:"add_cross_attention"`
	}
	if err := node.Decode(&extra); err != nil {
		return err
	}
	switch {
	case extra.IsDecoder:
		return fmt.Errorf("line %d: is_decoder is true; only the bidirectional encoder is supported", node.Line)
	case extra.AddCrossAttention:
		return fmt.Errorf("line %d: add_cross_attention is true; only self-attention is supported", node.Line)
	}
	*c = Config(p)
	return nil
}

// Validate reports the first setting that this package cannot run,
// naming the config.json field.
func (c Config) Validate() error {
	switch {
	case c.ModelType != "bert":
		return fmt.Errorf("model_type %q is not supported; only \"bert\" (BERT, PubMedBERT/BiomedBERT and other BertModel checkpoints) is", c.ModelType)
	case c.HiddenAct != "gelu":
		return fmt.Errorf("hidden_act %q is not supported; only \"gelu\" (exact erf GELU) is", c.HiddenAct)
	case c.PositionEmbeddingType != "" && c.PositionEmbeddingType != "absolute":
		return fmt.Errorf("position_embedding_type %q is not supported; only \"absolute\" is", c.PositionEmbeddingType)
	case c.VocabSize <= 0:
		return fmt.Errorf("vocab_size must be positive, got %d", c.VocabSize)
	case c.HiddenSize <= 0:
		return fmt.Errorf("hidden_size must be positive, got %d", c.HiddenSize)
	case c.NumAttentionHeads <= 0 || c.HiddenSize%c.NumAttentionHeads != 0:
		return fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
	case c.NumHiddenLayers < 0:
		return fmt.Errorf("num_hidden_layers must not be negative, got %d", c.NumHiddenLayers)
	case c.IntermediateSize <= 0:
		return fmt.Errorf("intermediate_size must be positive, got %d", c.IntermediateSize)
	case c.MaxPositionEmbeddings <= 0:
		return fmt.Errorf("max_position_embeddings must be positive, got %d", c.MaxPositionEmbeddings)
	case c.TypeVocabSize <= 0:
		return fmt.Errorf("type_vocab_size must be positive, got %d", c.TypeVocabSize)
	case !(c.LayerNormEps > 0):
		return fmt.Errorf("layer_norm_eps must be positive, got %g", c.LayerNormEps)
	case c.PadTokenID < 0 || c.PadTokenID >= c.VocabSize:
		return fmt.Errorf("pad_token_id %d is outside the vocabulary [0,%d)", c.PadTokenID, c.VocabSize)
	}
	return nil
}

// HeadDim is the width of one attention head.
func (c Config) HeadDim() int { return c.HiddenSize / c.NumAttentionHeads }
