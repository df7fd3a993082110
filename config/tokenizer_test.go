package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/bmca/bmca/model/bert"
)

// hfSample is sample with a BiomedCLIP-shaped model: a timm ViT and a
// Hugging Face BERT text tower bmca has no built-in config for, given as
// text_cfg.hf_model_config in config.json's terms (left-out fields take
// BertConfig's defaults, fields that do not change the model are ignored).
const hfSample = `model:
  embed_dim: 24
  vision_cfg: {timm_model_name: vit_bmca_tiny_patch8_32, timm_pool: "", timm_proj: linear, image_size: 32, patch_size: 8, width: 32, layers: 2, head_width: 16}
  text_cfg:
    hf_model_name: org/tiny-bert
    hf_tokenizer_name: org/tiny-bert
    hf_pooler_type: cls_last_hidden_state_pooler
    context_length: 16
    hf_model_config: {vocab_size: 100, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 64,
      max_position_embeddings: 24, architectures: [BertModel], hidden_dropout_prob: 0.1}
tokenizer:
  name: auto
data:
  train_shards: ["shards/train-{000000..000003}.tar"]
train:
  steps: 100
  batch_size: 16
`

// TestTokenizerMustFitTheTextTower: the towers pool differently, so a
// tokenizer of the other kind would train and evaluate on wrong features
// without an error; the config refuses it and names what fits.
func TestTokenizerMustFitTheTextTower(t *testing.T) {
	for _, tc := range []struct {
		name      string
		text      string
		overrides []string
		wantAll   []string // empty: loads
	}{
		{"wordpiece with the CLIP text tower", sample, []string{"tokenizer.name=bert-wordpiece", "tokenizer.vocab=vocab.txt"}, []string{"tokenizer.name", "largest id", "clip-bpe"}},
		{"clip-bpe with a BERT text tower", hfSample, []string{"tokenizer.name=clip-bpe", "tokenizer.vocab=bpe.txt.gz"}, []string{"tokenizer.name", "clip-bpe", "org/tiny-bert", "auto", "bert-wordpiece"}},
		{"byte-level with a BERT text tower", hfSample, []string{"tokenizer.name=byte-level"}, []string{"tokenizer.name", "byte-level", "org/tiny-bert"}},
		{"auto with the CLIP text tower needs the BPE vocabulary", sample, []string{"tokenizer.name=auto"}, []string{"tokenizer.vocab", "auto", "bpe_simple_vocab_16e6.txt.gz"}},
		{"auto with a BERT text tower", hfSample, nil, nil},
		{"auto with the CLIP text tower and its vocabulary", sample, []string{"tokenizer.name=auto", "tokenizer.vocab=bpe.txt.gz"}, nil},
		{"wordpiece from a hub repository", hfSample, []string{"tokenizer.name=bert-wordpiece", "tokenizer.vocab=hf-hub:org/tiny-bert@v1"}, nil},
		{"a decoder is no text tower", hfSample, []string{"model.text_cfg.hf_model_config={is_decoder: true}"}, []string{"is_decoder"}},
		{"an unsupported text model names the field", hfSample, []string{"model.text_cfg.hf_model_config={hidden_act: relu}"}, []string{"text_cfg", "hidden_act"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(writeConfig(t, tc.text), tc.overrides)
			if len(tc.wantAll) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if tc.overrides != nil && strings.HasPrefix(tc.overrides[len(tc.overrides)-1], "tokenizer.vocab=hf-hub:") && cfg.Tokenizer.Vocab != "hf-hub:org/tiny-bert@v1" {
					t.Errorf("tokenizer.vocab %q: a hub reference is not a path", cfg.Tokenizer.Vocab)
				}
				return
			}
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, want := range tc.wantAll {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}
}

// TestHFModelConfigRoundTrip: a text model bmca does not know is given in
// the run config and recorded with the run, so the recorded config reads
// back (eval and --resume validate it) to the same model.
func TestHFModelConfigRoundTrip(t *testing.T) {
	cfg, err := Load(writeConfig(t, hfSample), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := bert.Defaults()
	want.VocabSize, want.HiddenSize, want.NumHiddenLayers, want.NumAttentionHeads = 100, 32, 2, 2
	want.IntermediateSize, want.MaxPositionEmbeddings = 64, 24
	got, err := cfg.Model.TextCfg.HFModel()
	if err != nil || got != want {
		t.Fatalf("text model %+v (%v), want %+v", got, err, want)
	}
	data, err := cfg.MarshalRun()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseRun(data, "", nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	if !reflect.DeepEqual(back.Model, cfg.Model) || back.Tokenizer != cfg.Tokenizer {
		t.Errorf("read back %+v %+v, want %+v %+v", back.Model, back.Tokenizer, cfg.Model, cfg.Tokenizer)
	}
}
