package clip

import (
	"math"
	"testing"

	"github.com/bmca/bmca/configs"
	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/internal/reftest"
)

// loadReference reads reference model name and parses its configuration.
func loadReference(t *testing.T, name string) (Config, reftest.Model) {
	t.Helper()
	ref := reftest.Load(t, name)
	cfg, err := ParseConfigJSON(ref.Config)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, ref
}

var (
	floats = reftest.Floats
	int32s = reftest.Int32s
)

// maxAbsDiff is graphtest.MaxAbsDiff without the index (+Inf on a length
// mismatch or a NaN).
func maxAbsDiff(a, b []float32) float64 {
	d, _ := graphtest.MaxAbsDiff(a, b)
	return d
}

// TestOpenCLIPParity runs the reference models OpenCLIP itself produced and
// compares features and logits_per_image with its outputs. tiny-perturbed catches dropped
// LayerNorm affines and attention biases; tiny-quickgelu the activation.
func TestOpenCLIPParity(t *testing.T) {
	for _, name := range []string{"tiny", "tiny-quickgelu", "tiny-perturbed"} {
		t.Run(name, func(t *testing.T) {
			cfg, ref := loadReference(t, name)
			sd, cases := ref.Weights, ref.Cases
			if err := CheckStateDict(cfg, sd); err != nil {
				t.Fatalf("our layout differs from OpenCLIP's: %v", err)
			}
			store, err := NewStore(cfg, sd)
			if err != nil {
				t.Fatal(err)
			}
			enc, err := NewEncoder(graphtest.Backend(t), store, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Finalize()
			pixels := floats(t, cases, "pixels")
			n := cases["pixels"].Shape[0]
			img, err := enc.EncodeImages(pixels, n)
			if err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(img, floats(t, cases, "image_features")); d > 1e-4 {
				t.Errorf("image_features max abs diff %g > 1e-4", d)
			}
			for _, pair := range [][2]string{{"tokens", "text_features"}, {"tokens_edge", "text_features_edge"}} {
				tokens := int32s(t, cases, pair[0])
				m := cases[pair[0]].Shape[0]
				txt, err := enc.EncodeTexts(tokens, m)
				if err != nil {
					t.Fatal(err)
				}
				if d := maxAbsDiff(txt, floats(t, cases, pair[1])); d > 1e-4 {
					t.Errorf("%s max abs diff %g > 1e-4", pair[1], d)
				}
				if pair[0] != "tokens" {
					continue
				}
				logits, err := enc.LogitsPerImage(img, txt, n, m)
				if err != nil {
					t.Fatal(err)
				}
				if d := maxAbsDiff(logits, floats(t, cases, "logits_per_image")); d > 1e-4 {
					t.Errorf("logits_per_image max abs diff %g > 1e-4", d)
				}
			}
			if _, err := enc.LogitsPerImage(img, img, n, n+1); err == nil {
				t.Error("LogitsPerImage accepted features of the wrong length")
			}
		})
	}
}

// TestParameterCounts checks the shipped-architecture layouts against
// OpenCLIP's published parameter counts (logit_scale included).
func b16Config() Config {
	b16 := Config{EmbedDim: 512}
	b16.VisionCfg.ImageSize, b16.VisionCfg.PatchSize, b16.VisionCfg.Width, b16.VisionCfg.Layers = 224, 16, 768, 12
	b16.TextCfg.ContextLength, b16.TextCfg.VocabSize, b16.TextCfg.Width, b16.TextCfg.Heads, b16.TextCfg.Layers = 77, 49408, 512, 8, 12
	return b16
}

func l14Config() Config {
	l14 := Config{EmbedDim: 768}
	l14.VisionCfg.ImageSize, l14.VisionCfg.PatchSize, l14.VisionCfg.Width, l14.VisionCfg.Layers = 224, 14, 1024, 24
	l14.TextCfg.ContextLength, l14.TextCfg.VocabSize, l14.TextCfg.Width, l14.TextCfg.Heads, l14.TextCfg.Layers = 77, 49408, 768, 12, 12
	return l14
}

func TestParameterCounts(t *testing.T) {
	b16, l14 := b16Config(), l14Config()
	for _, tc := range []struct {
		name    string
		cfg     Config
		params  int
		tensors int
	}{
		{"ViT-B-16", b16, 149_620_737, 302},
		{"ViT-L-14", l14, 427_616_513, 158 + 12*24},
	} {
		if err := tc.cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := NumParams(tc.cfg); got != tc.params {
			t.Errorf("%s: %d parameters, OpenCLIP has %d", tc.name, got, tc.params)
		}
		if got := len(Params(tc.cfg)); got != tc.tensors {
			t.Errorf("%s: %d tensors, want %d", tc.name, got, tc.tensors)
		}
	}
}

// TestForwardFLOPsMatchOpenCLIPProfile compares with docs/model_profile.csv.
func TestForwardFLOPsMatchOpenCLIPProfile(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cfg         Config
		image, text float64 // GFLOPs
	}{
		{"ViT-B-16", b16Config(), 35.13, 5.96},
		{"ViT-L-14", l14Config(), 162.03, 13.3},
	} {
		img, txt := ForwardFLOPs(tc.cfg)
		if math.Abs(img/1e9-tc.image) > 0.01*tc.image || math.Abs(txt/1e9-tc.text) > 0.01*tc.text {
			t.Errorf("%s: %.2f / %.2f GFLOPs, OpenCLIP's profile %.2f / %.2f", tc.name, img/1e9, txt/1e9, tc.image, tc.text)
		}
	}
}

// TestShippedModelConfigs parses every built-in model config and checks the
// published parameter counts of the OpenCLIP architectures.
func TestShippedModelConfigs(t *testing.T) {
	want := map[string]int{"ViT-B-16": 149_620_737, "ViT-L-14": 427_616_513, "ViT-B-32": 151_277_313}
	for _, name := range configs.ModelNames() {
		data, err := configs.Model(name)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := ParseConfigJSON(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if n, ok := want[name]; ok && NumParams(cfg) != n {
			t.Errorf("%s: %d parameters, OpenCLIP has %d", name, NumParams(cfg), n)
		}
	}
}
