package hf_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/model/weights/hf"
)

// transformersTypes are the types transformers 5's CLIPConfig,
// CLIPTextConfig and CLIPVisionConfig declare for the fields ConfigJSON
// writes (models/clip/configuration_clip.py). Its strict dataclass
// validation refuses an int where only a float is allowed: "initializer_factor": 1
// stopped CLIPModel.from_pretrained.
var transformersTypes = map[string]string{
	"architectures": "list", "model_type": "str", "projection_dim": "int", "torch_dtype": "str",
	"logit_scale_init_value": "float|int", "initializer_factor": "float",
	"text_config.model_type": "str", "text_config.vocab_size": "int", "text_config.hidden_size": "int",
	"text_config.intermediate_size": "int", "text_config.num_hidden_layers": "int", "text_config.num_attention_heads": "int",
	"text_config.max_position_embeddings": "int", "text_config.hidden_act": "str", "text_config.layer_norm_eps": "float",
	"text_config.projection_dim": "int", "text_config.bos_token_id": "int", "text_config.eos_token_id": "int",
	"text_config.pad_token_id": "int",
	"vision_config.model_type": "str", "vision_config.hidden_size": "int", "vision_config.intermediate_size": "int",
	"vision_config.num_hidden_layers": "int", "vision_config.num_attention_heads": "int", "vision_config.num_channels": "int",
	"vision_config.image_size": "int", "vision_config.patch_size": "int", "vision_config.hidden_act": "str",
	"vision_config.layer_norm_eps": "float", "vision_config.projection_dim": "int",
}

// TestConfigJSONTypes checks every field of an exported config.json
// against transformers' declared type, as Python's json module will read
// it: a number without a decimal point or exponent is an int. An integral
// logit scale (init_logit_scale: 2) is included.
func TestConfigJSONTypes(t *testing.T) {
	cfg := builtin(t, "ViT-B-16")
	two := 2.0
	cfg.InitLogitScale = &two
	data, err := hf.ConfigJSON(cfg, weights.F32)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree map[string]any
	if err := dec.Decode(&tree); err != nil {
		t.Fatal(err)
	}
	seen := 0
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			key := prefix + k
			if sub, ok := v.(map[string]any); ok {
				walk(key+".", sub)
				continue
			}
			want, ok := transformersTypes[key]
			if !ok {
				t.Errorf("%s: not in the table of transformers' types; look it up in configuration_clip.py and add it", key)
				continue
			}
			seen++
			got := pythonType(v)
			if !strings.Contains("|"+want+"|", "|"+got+"|") {
				t.Errorf("%s = %v reads in Python as %s; transformers declares %s", key, v, got, want)
			}
		}
	}
	walk("", tree)
	if seen != len(transformersTypes) {
		t.Errorf("config.json has %d of the %d fields in the table:\n%s", seen, len(transformersTypes), data)
	}
}

// pythonType is the type Python's json module gives a decoded value.
func pythonType(v any) string {
	switch x := v.(type) {
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return "float"
		}
		return "int"
	case string:
		return "str"
	case []any:
		return "list"
	case bool:
		return "bool"
	}
	return "None"
}
