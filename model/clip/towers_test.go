package clip

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/bmca/bmca/model/bert"
	"github.com/bmca/bmca/model/hftext"
	"github.com/bmca/bmca/model/timmvit"
)

// biomedCLIPConfig is BiomedCLIP's open_clip_config.json as published on the
// Hugging Face Hub (microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224).
const biomedCLIPConfig = `{
    "model_cfg": {
        "embed_dim": 512,
        "vision_cfg": {
            "timm_model_name": "vit_base_patch16_224",
            "timm_model_pretrained": false,
            "timm_pool": "",
            "timm_proj": "linear",
            "image_size": 224
        },
        "text_cfg": {
            "hf_model_name": "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
            "hf_tokenizer_name": "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",
            "hf_proj_type": "mlp",
            "hf_pooler_type": "cls_last_hidden_state_pooler",
            "context_length": 256
        }
    },
    "preprocess_cfg": {
        "mean": [0.48145466, 0.4578275, 0.40821073],
        "std": [0.26862954, 0.26130258, 0.27577711]
    }
}`

// TestBiomedCLIPConfig parses BiomedCLIP's own config offline (its text
// model is built in) and checks the model it describes against what
// open_clip 2.32.0 builds from it: 195,902,721 parameters in 351 tensors
// (counted by generate.py's full reference), a ViT-B/16 image tower with
// the matrix products of OpenCLIP's ViT-B-16 (model_profile.csv), and a
// 256-token BERT-base text tower.
func TestBiomedCLIPConfig(t *testing.T) {
	cfg, err := ParseConfigJSON([]byte(biomedCLIPConfig))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.VisionCfg.IsTimm() || !cfg.TextCfg.IsHF() {
		t.Fatalf("towers not selected: timm %v, hf %v", cfg.VisionCfg.IsTimm(), cfg.TextCfg.IsHF())
	}
	if got := NumParams(cfg); got != 195_902_721 {
		t.Errorf("%d parameters, open_clip builds 195,902,721", got)
	}
	if got := len(Params(cfg)); got != 351 {
		t.Errorf("%d tensors, open_clip's state dict has 351", got)
	}
	if cfg.VisionCfg.ImageSize != 224 || cfg.TextCfg.ContextLength != 256 || cfg.TextCfg.TokenVocabSize() != 30522 {
		t.Errorf("image_size %d, context_length %d, vocabulary %d; want 224, 256, 30522",
			cfg.VisionCfg.ImageSize, cfg.TextCfg.ContextLength, cfg.TextCfg.TokenVocabSize())
	}
	vt, ht := mustTimm(cfg), mustHF(cfg)
	if vt.Pool != timmvit.PoolToken || vt.Head != timmvit.HeadLinear || vt.FCNorm || vt.Heads != 12 {
		t.Errorf("image tower %+v: want class-token pooling, the final norm before it, a linear head, 12 heads", vt)
	}
	if ht.Pooler != hftext.ClsLastHiddenStatePooler || ht.Proj != hftext.ProjMLP || ht.MLPHidden() != 640 {
		t.Errorf("text tower %+v: want the CLS last-hidden-state pooler and a 768→640→512 mlp head", ht)
	}
	img, _ := ForwardFLOPs(cfg)
	b16img, _ := ForwardFLOPs(b16Config())
	if img != b16img {
		t.Errorf("image tower %.4g FLOPs, OpenCLIP's ViT-B-16 %.4g: a timm ViT-B/16 has the same products", img, b16img)
	}
}

// TestConfigRoundTrip writes open_clip_config.json and reads it back: the
// same configuration, with the BERT config carried along, so a checkpoint
// bmca saves loads without the Hub even for a model bert.Known lacks.
func TestConfigRoundTrip(t *testing.T) {
	biomed, err := ParseConfigJSON([]byte(biomedCLIPConfig))
	if err != nil {
		t.Fatal(err)
	}
	other := biomed
	other.TextCfg.HFModelName = "example/other-bert"
	small := bert.Defaults()
	small.HiddenSize, small.NumAttentionHeads, small.NumHiddenLayers, small.IntermediateSize = 64, 2, 2, 128
	other.TextCfg.HFModelConfig = &small
	for name, cfg := range map[string]Config{"BiomedCLIP": biomed, "unknown text model": other} {
		data, err := cfg.OpenCLIPConfigJSON(OpenAIPreprocess)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseConfigJSON(data)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, data)
		}
		want, _ := cfg.TextCfg.HFModel()
		if got, _ := back.TextCfg.HFModel(); got != want {
			t.Errorf("%s: text model config %+v, wrote %+v", name, got, want)
		}
		back.TextCfg.HFModelConfig, cfg.TextCfg.HFModelConfig = nil, nil
		if !reflect.DeepEqual(back, cfg) {
			t.Errorf("%s: read back\n%+v\nwrote\n%+v", name, back, cfg)
		}
		var raw struct {
			ModelCfg struct {
				TextCfg map[string]any `json:"text_cfg"`
			} `json:"model_cfg"`
		}
		if err := json.Unmarshal(data, &raw); err != nil {
			t.Fatal(err)
		}
		for _, classic := range []string{"width", "layers", "vocab_size", "heads"} {
			if _, ok := raw.ModelCfg.TextCfg[classic]; ok {
				t.Errorf("%s: text_cfg.%s written for an HF tower", name, classic)
			}
		}
	}
}

// TestConfigNones reads JSON null as Python's None, which OpenCLIP treats
// differently from an omitted field, and writes it back so OpenCLIP reads
// the same model.
func TestConfigNones(t *testing.T) {
	cfg := mutateBiomed(t, func(v, txt map[string]any) {
		v["timm_proj"], v["timm_pool"] = nil, "avg" // trunk classifier, norm after pooling
		txt["hf_pooler_type"] = nil                 // no BertPooler: hidden[:, 0]
		delete(txt, "hf_proj_type")                 // omitted: mlp
	})
	vt, ht := mustTimm(cfg), mustHF(cfg)
	if vt.Head != timmvit.HeadTrunk || !vt.FCNorm || vt.Pool != timmvit.PoolAvg {
		t.Errorf("timm_proj null, timm_pool avg: %+v", vt)
	}
	if ht.Pooler != hftext.ClsLastHiddenStatePooler || ht.Proj != hftext.ProjMLP {
		t.Errorf("hf_pooler_type null, hf_proj_type omitted: pooler %s, head %s", ht.Pooler, ht.Proj)
	}
	data, err := cfg.OpenCLIPConfigJSON(OpenAIPreprocess)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseConfigJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if bt, bh := mustTimm(back), mustHF(back); bt != vt || bh != ht {
		t.Errorf("written and read back: %+v %+v, want %+v %+v", bt, bh, vt, ht)
	}
	cfg = mutateBiomed(t, func(v, txt map[string]any) { delete(v, "timm_pool"); delete(v, "timm_proj") })
	if vt := mustTimm(cfg); vt.Pool != timmvit.PoolAvg || vt.Head != timmvit.HeadLinear || vt.FCNorm {
		t.Errorf("omitted timm_pool and timm_proj: %+v, want OpenCLIP's avg pooling after the final norm and a linear head", vt)
	}
}

// TestConfigErrors checks that each configuration bmca cannot build as
// OpenCLIP would is refused with a message naming the field.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(v, txt map[string]any)
		want   string
	}{
		{"unknown timm model", func(v, _ map[string]any) { v["timm_model_name"] = "vit_unknown" }, "not a timm ViT bmca knows"},
		{"image size", func(v, _ map[string]any) { v["image_size"] = 384 }, "image_size"},
		{"attention pool", func(v, _ map[string]any) { v["timm_pool"] = "map" }, "attention pooling"},
		{"unpooled", func(v, _ map[string]any) { v["timm_proj"] = "none" }, "unpooled"},
		{"no projection", func(v, _ map[string]any) { v["timm_proj"], v["timm_pool"] = "none", "token" }, "embed_dim is 512"},
		{"timm proj", func(v, _ map[string]any) { v["timm_proj"] = "conv" }, "timm_proj \"conv\""},
		{"max pooler", func(_, txt map[string]any) { txt["hf_pooler_type"] = "max_pooler" }, "MaxPooler"},
		{"proj none", func(_, txt map[string]any) { txt["hf_proj_type"] = "none" }, "hf_proj_type \"none\""},
		{"identity head", func(_, txt map[string]any) { txt["hf_proj_type"] = nil }, "hidden size 768 differs from embed_dim 512"},
		{"unknown text model", func(_, txt map[string]any) { txt["hf_model_name"] = "example/other-bert" }, "needs this model's config.json"},
		{"context", func(_, txt map[string]any) { txt["context_length"] = 600 }, "max_position_embeddings 512"},
		{"tokenizer kwargs", func(_, txt map[string]any) { txt["tokenizer_kwargs"] = map[string]any{"clean": "whitespace"} }, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfigJSON(biomedJSON(t, tc.mutate))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	t.Run("hf_text_config without an HF tower", func(t *testing.T) {
		data, err := b16Config().OpenCLIPConfigJSON(OpenAIPreprocess)
		if err != nil {
			t.Fatal(err)
		}
		var wrapper map[string]any
		if err := json.Unmarshal(data, &wrapper); err != nil {
			t.Fatal(err)
		}
		wrapper[hftext.ConfigKey] = map[string]any{"model_type": "bert"}
		data, _ = json.Marshal(wrapper)
		if _, err := ParseConfigJSON(data); err == nil || !strings.Contains(err.Error(), "no hf_model_name") {
			t.Errorf("error %v", err)
		}
	})
}

// TestHFConfigSource asks the caller for an unknown text model's
// config.json, prefers it to the built-in one for a known model, and falls
// back to the built-in one only for a known model when the source fails.
func TestHFConfigSource(t *testing.T) {
	small := `{"model_type": "bert", "hidden_size": 64, "num_attention_heads": 2, "num_hidden_layers": 2, "intermediate_size": 128, "vocab_size": 1000,
		"architectures": ["BertForMaskedLM"], "hidden_dropout_prob": 0.1}`
	var asked []string
	source := func(name string) ([]byte, error) {
		asked = append(asked, name)
		return []byte(small), nil
	}
	offline := func(string) ([]byte, error) { return nil, errors.New("no network") }
	unknown := biomedJSON(t, func(_, txt map[string]any) { txt["hf_model_name"] = "example/other-bert" })

	cfg, err := ParseConfigJSONWith(unknown, source)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := cfg.TextCfg.HFModel(); m.HiddenSize != 64 || m.VocabSize != 1000 || len(asked) != 1 || asked[0] != "example/other-bert" {
		t.Errorf("model %+v after asking for %v", m, asked)
	}
	cfg, err = ParseConfigJSONWith([]byte(biomedCLIPConfig), source)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := cfg.TextCfg.HFModel(); m.HiddenSize != 64 {
		t.Errorf("a supplied config.json must win over the built-in one; hidden size %d", m.HiddenSize)
	}
	if cfg, err = ParseConfigJSONWith([]byte(biomedCLIPConfig), offline); err != nil {
		t.Errorf("offline, a known model falls back to its built-in config: %v", err)
	} else if m, _ := cfg.TextCfg.HFModel(); m != bert.Defaults() {
		t.Errorf("offline: %+v", m)
	}
	if _, err := ParseConfigJSONWith(unknown, offline); err == nil || !strings.Contains(err.Error(), "no network") {
		t.Errorf("offline, an unknown model must fail with the source's error, got %v", err)
	}
}

// biomedJSON is BiomedCLIP's config with vision_cfg and text_cfg changed by mutate.
func biomedJSON(t *testing.T, mutate func(vision, text map[string]any)) []byte {
	t.Helper()
	var wrapper map[string]map[string]any
	if err := json.Unmarshal([]byte(biomedCLIPConfig), &wrapper); err != nil {
		t.Fatal(err)
	}
	mc := wrapper["model_cfg"]
	mutate(mc["vision_cfg"].(map[string]any), mc["text_cfg"].(map[string]any))
	data, err := json.Marshal(wrapper)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func mutateBiomed(t *testing.T, mutate func(vision, text map[string]any)) Config {
	t.Helper()
	cfg, err := ParseConfigJSON(biomedJSON(t, mutate))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
