package bert_test

import (
	"math"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/bert"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// TestParseConfigJSON reads config.json files as transformers writes them:
// fields that do not change the forward pass are ignored, omitted ones take
// BertConfig's defaults, and unsupported settings are refused by name.
func TestParseConfigJSON(t *testing.T) {
	full := `{"architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu",
		"hidden_dropout_prob": 0.1, "hidden_size": 256, "initializer_range": 0.02, "intermediate_size": 1024,
		"layer_norm_eps": 1e-12, "max_position_embeddings": 128, "model_type": "bert", "num_attention_heads": 4,
		"num_hidden_layers": 4, "pad_token_id": 0, "type_vocab_size": 2, "vocab_size": 28996, "transformers_version": "4.9.0"}`
	c, err := bert.ParseConfigJSON([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if c.HiddenSize != 256 || c.NumAttentionHeads != 4 || c.VocabSize != 28996 || c.MaxPositionEmbeddings != 128 || c.HeadDim() != 64 {
		t.Errorf("parsed %+v", c)
	}
	c, err = bert.ParseConfigJSON([]byte(`{"model_type": "bert", "hidden_size": 64, "num_attention_heads": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := bert.Defaults(); c.VocabSize != want.VocabSize || c.LayerNormEps != 1e-12 || c.IntermediateSize != 3072 {
		t.Errorf("omitted fields must take BertConfig's defaults: %+v", c)
	}
	if m, ok := bert.Known("microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"); !ok || m != bert.Defaults() {
		t.Errorf("BiomedBERT must be built in with BertConfig's defaults: %+v %v", m, ok)
	}
	for _, tc := range []struct{ json, want string }{
		{`{"model_type": "roberta"}`, "model_type"},
		{`{"model_type": "bert", "hidden_act": "gelu_new"}`, "hidden_act"},
		{`{"model_type": "bert", "position_embedding_type": "relative_key"}`, "position_embedding_type"},
		{`{"model_type": "bert", "is_decoder": true}`, "is_decoder"},
		{`{"model_type": "bert", "hidden_size": 100}`, "num_attention_heads"},
		{`{"model_type": "bert", "pad_token_id": 40000}`, "pad_token_id"},
		{`[1, 2]`, "config.json"},
	} {
		if _, err := bert.ParseConfigJSON([]byte(tc.json)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %s", tc.json, err, tc.want)
		}
	}
}

// TestPaddingMaskAndKeyBias checks OpenCLIP's mask (every pad id, wherever
// it is) and that a row of only padding averages all keys, as transformers'
// finite bias does, instead of producing NaN.
func TestPaddingMaskAndKeyBias(t *testing.T) {
	ids := tensors.FromValue([][]int32{{2, 7, 0, 9, 3, 0}, {0, 0, 0, 0, 0, 0}})
	outs := graphtest.Run(t, model.NewStore(), func(_ *model.Scope, ids *Node) []*Node {
		mask := bert.PaddingMask(ids, 0)
		scores := Iota(ids.Graph(), shapes.Make(dtypes.Float32, 2, 1, 1, 6), 3) // distinct scores per key
		return []*Node{mask, Softmax(Add(scores, bert.KeyBias(mask)), -1)}
	}, ids)
	mask := graphtest.Float32s(t, outs[0])
	want := []float32{1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0}
	for i := range want {
		if mask[i] != want[i] {
			t.Fatalf("mask %v, want %v", mask, want)
		}
	}
	w := graphtest.Float32s(t, outs[1])
	for k := range 6 {
		if want[k] == 0 && w[k] != 0 {
			t.Errorf("padded key %d has weight %g", k, w[k])
		}
		if got := w[6+k]; math.Abs(float64(got)-1.0/6) > 1e-6 {
			t.Errorf("all-padding row: weight %g for key %d, want 1/6", got, k)
		}
	}
}
