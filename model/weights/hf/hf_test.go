package hf_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/configs"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/textenc"
	"github.com/bmca/bmca/model/vit"
	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/model/weights/hf"
)

// micro is a CLIP with 2 blocks per tower, so block indices and the q/k/v
// split are exercised.
func micro(t *testing.T) (clip.Config, weights.StateDict) {
	t.Helper()
	cfg := clip.Config{
		EmbedDim:  6,
		VisionCfg: clip.VisionConfig{Config: vit.Config{ImageSize: 8, PatchSize: 4, Width: 8, Layers: 2, HeadWidth: 4}},
		TextCfg:   clip.TextConfig{Config: textenc.Config{ContextLength: 5, VocabSize: 11, Width: 8, Heads: 2, Layers: 2}},
	}
	return cfg, clip.Init(cfg, 7)
}

func builtin(t *testing.T, name string) clip.Config {
	t.Helper()
	data, err := configs.Model(name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := clip.ParseConfigJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRoundTrip: FromOpenCLIP then the rules' Apply give back every tensor.
func TestRoundTrip(t *testing.T) {
	_, sd := micro(t)
	hfsd, err := hf.FromOpenCLIP(sd)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range sd.Names() {
		r, err := hf.RuleFor(name)
		if err != nil {
			t.Fatal(err)
		}
		var parts []weights.Tensor
		for _, s := range r.Sources {
			parts = append(parts, hfsd[s])
		}
		got, err := r.Apply(parts)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Shape, sd[name].Shape) || string(got.Data) != string(sd[name].Data) {
			t.Errorf("%s: round trip gave %v", name, got.Shape)
		}
	}
	if _, err := hf.RuleFor("visual.attnpool.k_proj.weight"); err == nil {
		t.Error("a name outside CLIP got a rule")
	}
}

// TestHFNames checks the mapping against transformers' documented CLIPModel
// names (modeling_clip.py; convert_clip_original_pytorch_to_hf.py), written
// out literally rather than derived from the code under test.
func TestHFNames(t *testing.T) {
	_, sd := micro(t)
	hfsd, err := hf.FromOpenCLIP(sd)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, tower := range []string{"vision_model", "text_model"} {
		for _, layer := range []string{"0", "1"} {
			p := tower + ".encoder.layers." + layer + "."
			for _, n := range []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
				"layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2"} {
				want = append(want, p+n+".weight", p+n+".bias")
			}
		}
	}
	want = append(want,
		"vision_model.embeddings.class_embedding",
		"vision_model.embeddings.patch_embedding.weight",
		"vision_model.embeddings.position_embedding.weight",
		"vision_model.pre_layrnorm.weight", "vision_model.pre_layrnorm.bias",
		"vision_model.post_layernorm.weight", "vision_model.post_layernorm.bias",
		"visual_projection.weight",
		"text_model.embeddings.token_embedding.weight",
		"text_model.embeddings.position_embedding.weight",
		"text_model.final_layer_norm.weight", "text_model.final_layer_norm.bias",
		"text_projection.weight",
		"logit_scale",
	)
	slices.Sort(want)
	if got := hfsd.Names(); !slices.Equal(got, want) {
		t.Fatalf("HF names:\n got  %v\n want %v", got, want)
	}
	f32 := func(sd weights.StateDict, name string) []float32 { v, _ := sd[name].Float32s(); return v }
	// q, k, v are the row blocks of in_proj (q first); biases likewise.
	in := f32(sd, "visual.transformer.resblocks.1.attn.in_proj_weight") // [24, 8]
	for i, qkv := range []string{"q", "k", "v"} {
		got := f32(hfsd, "vision_model.encoder.layers.1.self_attn."+qkv+"_proj.weight")
		if !slices.Equal(got, in[i*64:(i+1)*64]) || !slices.Equal(hfsd["vision_model.encoder.layers.1.self_attn."+qkv+"_proj.weight"].Shape, []int{8, 8}) {
			t.Errorf("%s_proj.weight is not rows %d..%d of in_proj_weight", qkv, 8*i, 8*i+7)
		}
	}
	inB := f32(sd, "transformer.resblocks.0.attn.in_proj_bias")
	if got := f32(hfsd, "text_model.encoder.layers.0.self_attn.v_proj.bias"); !slices.Equal(got, inB[16:24]) {
		t.Error("v_proj.bias is not the last third of in_proj_bias")
	}
	// visual_projection.weight [E, W] is visual.proj [W, E] transposed.
	proj, vp := f32(sd, "visual.proj"), f32(hfsd, "visual_projection.weight")
	if !slices.Equal(hfsd["visual_projection.weight"].Shape, []int{6, 8}) {
		t.Fatalf("visual_projection.weight shape %v", hfsd["visual_projection.weight"].Shape)
	}
	for w := range 8 {
		for e := range 6 {
			if vp[e*8+w] != proj[w*6+e] {
				t.Fatalf("visual_projection.weight[%d,%d] != visual.proj[%d,%d]", e, w, w, e)
			}
		}
	}
	tp := f32(hfsd, "text_projection.weight")
	if textProj := f32(sd, "text_projection"); tp[1*8+3] != textProj[3*6+1] {
		t.Error("text_projection.weight is not text_projection transposed")
	}
}

// TestHFConfig parses an openai/clip-vit-base-patch32-style config.json
// that leaves most fields at transformers' defaults, and round-trips ours.
func TestHFConfig(t *testing.T) {
	c, err := hf.ParseConfig([]byte(`{"architectures":["CLIPModel"],"model_type":"clip","projection_dim":512,
		"text_config":{"bos_token_id":0,"eos_token_id":2},"vision_config":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	b32 := builtin(t, "ViT-B-32")
	b32.QuickGELU = true
	if c.VisionCfg.WithDefaults() != b32.VisionCfg.WithDefaults() || c.TextCfg.WithDefaults() != b32.TextCfg.WithDefaults() || c.EmbedDim != 512 || !c.QuickGELU {
		t.Errorf("defaults give %+v, want ViT-B-32-quickgelu %+v", c, b32)
	}
	l14 := builtin(t, "ViT-L-14")
	data, err := hf.ConfigJSON(l14, weights.BF16)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"hidden_act": "gelu"`, `"intermediate_size": 4096`, `"num_attention_heads": 16`, `"torch_dtype": "bfloat16"`, `"eos_token_id": 2`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("config.json lacks %s:\n%s", want, data)
		}
	}
	back, err := hf.ParseConfig(data)
	if err != nil || back.VisionCfg.WithDefaults() != l14.VisionCfg.WithDefaults() || back.TextCfg.WithDefaults() != l14.TextCfg.WithDefaults() || back.QuickGELU {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	for _, bad := range []string{
		`{"model_type":"siglip"}`,
		`{"text_config":{"hidden_act":"relu"}}`,
		`{"text_config":{"hidden_act":"gelu"}}`, // vision stays quick_gelu
		`{"vision_config":{"layer_norm_eps":1e-6}}`,
	} {
		if _, err := hf.ParseConfig([]byte(bad)); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}
