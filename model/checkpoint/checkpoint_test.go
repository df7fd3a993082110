package checkpoint_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/testshared"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/textenc"
	"github.com/bmca/bmca/model/vit"
	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/model/weights/hf"
	"github.com/bmca/bmca/model/weights/pytorch/pytorchtest"
)

// microConfig is a CLIP small enough to build in microseconds: 2 blocks per
// tower, so block indices and q/k/v splitting are exercised.
func microConfig() clip.Config {
	return clip.Config{
		EmbedDim:  6,
		VisionCfg: clip.VisionConfig{Config: vit.Config{ImageSize: 8, PatchSize: 4, Width: 8, Layers: 2, HeadWidth: 4}},
		TextCfg:   clip.TextConfig{Config: textenc.Config{ContextLength: 5, VocabSize: 11, Width: 8, Heads: 2, Layers: 2}},
	}
}

func micro(t testing.TB) (checkpoint.ModelConfig, weights.StateDict) {
	t.Helper()
	cfg := microConfig()
	return checkpoint.ModelConfig{Config: cfg, Preprocess: clip.OpenAIPreprocess, Source: "test"}, clip.Init(cfg, 7)
}

// writeOpenCLIPDir writes sd the way OpenCLIP's Hub layout (and bmca's
// training checkpoints) do.
func writeOpenCLIPDir(t *testing.T, dir string, mc checkpoint.ModelConfig, sd weights.StateDict) {
	t.Helper()
	if _, err := checkpoint.WriteOpenCLIP(dir, mc.Config, mc.Preprocess, sd); err != nil {
		t.Fatal(err)
	}
}

func writeConfig(t *testing.T, dir string, mc checkpoint.ModelConfig) {
	t.Helper()
	data, err := mc.OpenCLIPConfigJSON(mc.Preprocess)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, checkpoint.OpenCLIPConfigFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func sameStateDict(t *testing.T, what string, got, want weights.StateDict) {
	t.Helper()
	if !slices.Equal(got.Names(), want.Names()) {
		t.Fatalf("%s: names differ:\n got  %v\n want %v", what, got.Names(), want.Names())
	}
	for _, name := range want.Names() {
		g, w := got[name], want[name]
		if g.DType != w.DType || !slices.Equal(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("%s: %s: got %s %v (%d bytes), want %s %v (%d bytes), equal data %v",
				what, name, g.DType, g.Shape, len(g.Data), w.DType, w.Shape, len(w.Data), bytes.Equal(g.Data, w.Data))
		}
	}
}

func load(t *testing.T, path string, opts checkpoint.Options) (*checkpoint.Checkpoint, weights.StateDict) {
	t.Helper()
	ck, err := checkpoint.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	sd, err := ck.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	return ck, sd
}

// TestFormats writes one model in every supported layout and checks that
// each is detected (from its bytes: the file names are deliberately
// unhelpful) and loads bit-identically.
func TestFormats(t *testing.T) {
	mc, sd := micro(t)
	hfsd, err := hf.FromOpenCLIP(sd)
	if err != nil {
		t.Fatal(err)
	}
	// What OpenCLIP's training loop saves under DDP: module. prefixes, the
	// optimizer, an argparse.Namespace.
	trainCkpt := pytorchtest.NewDict(
		"epoch", 32, "name", "bmc-clip",
		"state_dict", pytorchtest.StateDict(sd, "module."),
		"optimizer", pytorchtest.NewDict("state", pytorchtest.NewDict("0", pytorchtest.NewDict("exp_avg", sd["visual.proj"])), "param_groups", pytorchtest.Tuple{}),
		"args", pytorchtest.Object{Module: "argparse", Name: "Namespace", State: pytorchtest.NewDict("lr", 1e-6)},
	)
	compiled := pytorchtest.StateDict(sd, "module._orig_mod.") // torch.compile under DDP
	st := func(c checkpoint.Container, l checkpoint.Layout) checkpoint.Format {
		return checkpoint.Format{Container: c, Layout: l}
	}
	legacy := pytorchtest.Options{Legacy: true}
	for _, tc := range []struct {
		name   string
		root   any // a weights.StateDict is written as safetensors, anything else with torch.save's layout
		opts   pytorchtest.Options
		format checkpoint.Format
	}{
		{"openclip.safetensors", sd, pytorchtest.Options{}, st(checkpoint.Safetensors, checkpoint.OpenCLIP)},
		{"hf.safetensors", hfsd, pytorchtest.Options{}, st(checkpoint.Safetensors, checkpoint.HF)},
		{"bare.pt", pytorchtest.StateDict(sd, ""), pytorchtest.Options{}, st(checkpoint.PyTorchZip, checkpoint.OpenCLIP)},
		{"train.pt", trainCkpt, pytorchtest.Options{}, st(checkpoint.PyTorchZip, checkpoint.OpenCLIP)},
		{"legacy.pth", trainCkpt, legacy, st(checkpoint.PyTorchLegacy, checkpoint.OpenCLIP)},
		{"compiled.bin", compiled, pytorchtest.Options{}, st(checkpoint.PyTorchZip, checkpoint.OpenCLIP)},
		{"hf.bin", pytorchtest.StateDict(hfsd, ""), pytorchtest.Options{}, st(checkpoint.PyTorchZip, checkpoint.HF)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "weights.dat")
			var err error
			if w, ok := tc.root.(weights.StateDict); ok {
				err = weights.WriteFile(path, w, map[string]string{"format": "pt"})
			} else {
				err = pytorchtest.WriteFile(path, tc.root, tc.opts)
			}
			if err != nil {
				t.Fatal(err)
			}
			writeConfig(t, dir, mc)
			ck, got := load(t, path, checkpoint.Options{})
			if ck.Format != tc.format {
				t.Errorf("detected %s, want %s", ck.Format, tc.format)
			}
			sameStateDict(t, tc.name, got, sd)
		})
	}
}

// TestShardedHF loads a transformers checkpoint split over two files by a
// model.safetensors.index.json, found by giving the directory.
func TestShardedHF(t *testing.T) {
	mc, sd := micro(t)
	hfsd, _ := hf.FromOpenCLIP(sd)
	dir := t.TempDir()
	shards := []weights.StateDict{{}, {}}
	weightMap := map[string]string{}
	for i, name := range hfsd.Names() {
		shards[i%2][name] = hfsd[name]
		weightMap[name] = []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i%2]
	}
	for i, s := range shards {
		if err := weights.WriteFile(filepath.Join(dir, []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i]), s, nil); err != nil {
			t.Fatal(err)
		}
	}
	index, _ := json.Marshal(map[string]any{"metadata": map[string]any{}, "weight_map": weightMap})
	os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), index, 0o644)
	cfgJSON, _ := hf.ConfigJSON(mc.Config, weights.F32)
	os.WriteFile(filepath.Join(dir, "config.json"), cfgJSON, 0o644)
	ck, got := load(t, dir, checkpoint.Options{})
	if ck.Format.Layout != checkpoint.HF || ck.Model.Source != filepath.Join(dir, "config.json") {
		t.Errorf("format %s, config from %s", ck.Format, ck.Model.Source)
	}
	sameStateDict(t, "sharded", got, sd)
}

// TestStrictErrors: every missing, unexpected and mis-shaped tensor is in
// one error; a partial load accepts the first two and reports them.
func TestStrictErrors(t *testing.T) {
	mc, sd := micro(t)
	broken := weights.StateDict{}
	for k, v := range sd {
		broken[k] = v
	}
	delete(broken, "ln_final.bias")
	delete(broken, "visual.transformer.resblocks.1.mlp.c_fc.weight")
	broken["visual.head.weight"] = weights.FromFloat32s([]int{2}, []float32{1, 2})
	broken["input_resolution"] = weights.FromInt64s(nil, []int64{8}) // OpenAI's buffer: ignored
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	if err := weights.WriteFile(path, broken, nil); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, mc)
	_, err := checkpoint.Open(path, checkpoint.Options{})
	var mm *checkpoint.MismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("error %v, want a *MismatchError", err)
	}
	if !slices.Equal(mm.Missing, []string{"visual.transformer.resblocks.1.mlp.c_fc.weight", "ln_final.bias"}) ||
		!slices.Equal(mm.Unexpected, []string{"visual.head.weight"}) || len(mm.Mismatched) != 0 {
		t.Errorf("missing %v, unexpected %v, mismatched %v", mm.Missing, mm.Unexpected, mm.Mismatched)
	}
	for _, want := range []string{"missing (2)", "unexpected (1): visual.head.weight", path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%v", want, err)
		}
	}

	ck, got := load(t, path, checkpoint.Options{Partial: true})
	if len(ck.Missing) != 2 || len(ck.Unexpected) != 1 {
		t.Errorf("partial: missing %v unexpected %v", ck.Missing, ck.Unexpected)
	}
	if v, _ := got["ln_final.bias"].Float32s(); len(v) != 8 || slices.ContainsFunc(v, func(x float32) bool { return x != 0 }) {
		t.Errorf("missing LayerNorm bias should initialise to zeros, got %v", v)
	}
	if !bytes.Equal(got["visual.proj"].Data, sd["visual.proj"].Data) {
		t.Error("partial load changed a present tensor")
	}

	// A wrong shape is an error even for a partial load, named with both shapes.
	broken = weights.StateDict{}
	for k, v := range sd {
		broken[k] = v
	}
	broken["visual.proj"] = weights.FromFloat32s([]int{6, 8}, make([]float32, 48))
	broken["positional_embedding"] = weights.FromInt64s([]int{5, 8}, make([]int64, 40))
	if err := weights.WriteFile(path, broken, nil); err != nil {
		t.Fatal(err)
	}
	_, err = checkpoint.Open(path, checkpoint.Options{Partial: true})
	if !errors.As(err, &mm) || len(mm.Mismatched) != 2 ||
		!strings.Contains(err.Error(), "visual.proj: checkpoint [6 8], model [8 6]") ||
		!strings.Contains(err.Error(), "positional_embedding: dtype I64") {
		t.Errorf("mis-shaped: %v", err)
	}
}

// TestHFMismatchNamesHFTensors: errors in a transformers checkpoint name its
// own tensors.
func TestHFMismatchNamesHFTensors(t *testing.T) {
	mc, sd := micro(t)
	hfsd, _ := hf.FromOpenCLIP(sd)
	delete(hfsd, "vision_model.encoder.layers.1.self_attn.k_proj.bias")
	hfsd["visual_projection.weight"] = weights.FromFloat32s([]int{8, 8}, make([]float32, 64))
	hfsd["text_model.embeddings.position_ids"] = weights.FromInt64s([]int{1, 5}, []int64{0, 1, 2, 3, 4}) // ignored buffer
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	weights.WriteFile(path, hfsd, nil)
	writeConfig(t, dir, mc)
	_, err := checkpoint.Open(dir, checkpoint.Options{})
	var mm *checkpoint.MismatchError
	if !errors.As(err, &mm) || !slices.Equal(mm.Missing, []string{"vision_model.encoder.layers.1.self_attn.k_proj.bias"}) ||
		len(mm.Unexpected) != 0 || len(mm.Mismatched) != 1 || !strings.Contains(mm.Mismatched[0], "visual_projection.weight (visual.proj): checkpoint [8 8], model [8 6]") {
		t.Errorf("got %v", err)
	}
}

func TestLogitScaleOneElement(t *testing.T) {
	mc, sd := micro(t)
	sd["logit_scale"] = weights.FromFloat32s([]int{1}, []float32{4.6})
	dir := t.TempDir()
	weights.WriteFile(filepath.Join(dir, "open_clip_model.safetensors"), sd, nil)
	writeConfig(t, dir, mc)
	_, got := load(t, dir, checkpoint.Options{})
	if s := got["logit_scale"]; len(s.Shape) != 0 {
		t.Errorf("logit_scale shape %v, want a scalar", s.Shape)
	}
}

func TestConfigDiscovery(t *testing.T) {
	mc, sd := micro(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.pt")
	if err := pytorchtest.WriteFile(path, pytorchtest.StateDict(sd, ""), pytorchtest.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := checkpoint.Open(path, checkpoint.Options{}); !errors.Is(err, checkpoint.ErrNoConfig) {
		t.Errorf("no config: %v", err)
	}
	ck, _ := load(t, path, checkpoint.Options{ModelConfig: &mc})
	if ck.Model.Source != "test" {
		t.Errorf("config from %q", ck.Model.Source)
	}
	// A config of another model: every difference is listed.
	other := mc
	other.TextCfg.Layers = 1
	_, err := checkpoint.Open(path, checkpoint.Options{ModelConfig: &other})
	var mm *checkpoint.MismatchError
	if !errors.As(err, &mm) || len(mm.Unexpected) != 12 {
		t.Errorf("a 1-layer config on a 2-layer checkpoint: %v", err)
	}
	// Built-in names, with OpenCLIP's -quickgelu suffix.
	b, err := checkpoint.ReadModelConfig("ViT-B-16-quickgelu")
	if err != nil || !b.QuickGELU || b.VisionCfg.PatchSize != 16 {
		t.Errorf("ViT-B-16-quickgelu: %+v, %v", b.Config, err)
	}
	if _, err := checkpoint.ReadModelConfig("ViT-Q-99"); err == nil || !strings.Contains(err.Error(), "ViT-L-14") {
		t.Errorf("unknown name: %v", err)
	}
}

func TestUnrecognized(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "model.safetensors")
	os.WriteFile(junk, []byte("<html>not found</html>"), 0o644)
	if _, err := checkpoint.Open(junk, checkpoint.Options{}); !errors.Is(err, checkpoint.ErrUnrecognized) {
		t.Errorf("junk: %v", err)
	}
	if checkpoint.IsCheckpoint(junk) || checkpoint.IsCheckpoint(t.TempDir()) {
		t.Error("IsCheckpoint accepted junk or an empty directory")
	}
	jit := filepath.Join(dir, "ViT-B-32.pt")
	pytorchtest.WriteFile(jit, pytorchtest.NewDict(), pytorchtest.Options{TorchScript: true})
	mc, _ := micro(t)
	if _, err := checkpoint.Open(jit, checkpoint.Options{ModelConfig: &mc}); err == nil || !strings.Contains(err.Error(), "TorchScript") {
		t.Errorf("TorchScript: %v", err)
	}
	notSD := filepath.Join(dir, "list.pt")
	pytorchtest.WriteFile(notSD, pytorchtest.NewDict("state_dict", pytorchtest.NewDict("w", 3)), pytorchtest.Options{})
	if _, err := checkpoint.Open(notSD, checkpoint.Options{ModelConfig: &mc}); err == nil || !strings.Contains(err.Error(), "w (int)") {
		t.Errorf("non-tensor entry: %v", err)
	}
}

// TestRoundTrip: load → export → load is bit-identical for both export
// layouts and every dtype, and exporting an export reproduces its files
// byte for byte.
func TestRoundTrip(t *testing.T) {
	mc, sd := micro(t)
	src := t.TempDir()
	writeOpenCLIPDir(t, src, mc, sd)
	for _, format := range []checkpoint.ExportFormat{checkpoint.ExportOpenCLIP, checkpoint.ExportHF} {
		for _, dtype := range []weights.DType{"", weights.F16, weights.BF16} {
			ck, _ := load(t, src, checkpoint.Options{})
			out := t.TempDir()
			files, err := ck.Export(out, checkpoint.ExportOptions{Format: format, DType: dtype})
			if err != nil {
				t.Fatal(err)
			}
			want := sd
			if dtype != "" {
				want = weights.StateDict{}
				for k, v := range sd {
					want[k], _ = v.To(dtype)
				}
			}
			back, got := load(t, out, checkpoint.Options{})
			sameStateDict(t, string(format)+"/"+string(dtype), got, want)
			if back.Model.Config.VisionCfg.WithDefaults() != mc.VisionCfg.WithDefaults() || back.Model.EmbedDim != mc.EmbedDim {
				t.Errorf("%s: config came back as %+v", format, back.Model.Config)
			}
			again := t.TempDir()
			files2, err := back.Export(again, checkpoint.ExportOptions{Format: format})
			if err != nil {
				t.Fatal(err)
			}
			for i := range files {
				a, _ := os.ReadFile(files[i])
				b, _ := os.ReadFile(files2[i])
				if !bytes.Equal(a, b) {
					t.Errorf("%s/%s: re-exporting changed %s", format, dtype, filepath.Base(files[i]))
				}
			}
		}
	}
}

// TestReferenceExports: exporting each OpenCLIP reference model reproduces
// its weights.safetensors exactly: names, shapes, dtypes and bytes. The
// reference folders hold a bare model config as config.json, found next to
// the weights.
func TestReferenceExports(t *testing.T) {
	for _, name := range []string{"tiny", "tiny-quickgelu", "tiny-perturbed", "b16-shape"} {
		t.Run(name, func(t *testing.T) {
			dir := testshared.Path(t, "reference/openclip/"+name)
			ref, _, err := weights.ReadFile(filepath.Join(dir, "weights.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			ck, err := checkpoint.Open(filepath.Join(dir, "weights.safetensors"), checkpoint.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			out := t.TempDir()
			if _, err := ck.Export(out, checkpoint.ExportOptions{}); err != nil {
				t.Fatal(err)
			}
			got, meta, err := weights.ReadFile(filepath.Join(out, checkpoint.OpenCLIPWeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			sameStateDict(t, name, got, ref)
			if meta["format"] != "pt" {
				t.Errorf("metadata %v", meta)
			}
			cfgData, _ := os.ReadFile(filepath.Join(dir, "config.json"))
			want, _ := clip.ParseConfigJSON(cfgData)
			back, err := checkpoint.ReadModelConfig(filepath.Join(out, checkpoint.OpenCLIPConfigFile))
			if err != nil || back.Config.VisionCfg != want.VisionCfg || back.Config.TextCfg != want.TextCfg ||
				back.EmbedDim != want.EmbedDim || back.QuickGELU != want.QuickGELU || back.Preprocess != clip.OpenAIPreprocess {
				t.Errorf("open_clip_config.json gives %+v (%v), want %+v", back, err, want)
			}
		})
	}
}
