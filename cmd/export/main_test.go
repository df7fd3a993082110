package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/hub/hubtest"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/textenc"
	"github.com/bmca/bmca/model/vit"
	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/model/weights/pytorch/pytorchtest"
	"github.com/bmca/bmca/train"
)

func microConfig() clip.Config {
	return clip.Config{
		EmbedDim:  6,
		VisionCfg: clip.VisionConfig{Config: vit.Config{ImageSize: 8, PatchSize: 4, Width: 8, Layers: 2, HeadWidth: 4}},
		TextCfg:   clip.TextConfig{Config: textenc.Config{ContextLength: 5, VocabSize: 11, Width: 8, Heads: 2, Layers: 2}},
	}
}

func export(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

// TestExportTrainingCheckpointIsACopy: a training run's weights are already
// in OpenCLIP's layout, so the default export reproduces both files byte for
// byte (the optimizer and training state are left behind).
func TestExportTrainingCheckpointIsACopy(t *testing.T) {
	cfg := microConfig()
	sd := clip.Init(cfg, 3)
	run := t.TempDir()
	dir, err := train.Save(run, 2, &train.Checkpoint{ModelConfig: cfg, Weights: sd, Optimizer: weights.StateDict{"m": weights.FromFloat32s([]int{1}, []float32{1})},
		State: train.State{Step: 5, Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "exported")
	if log, err := export(t, "--checkpoint", run, "--out", out); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	for _, name := range []string{train.WeightsFile, train.ModelConfigFile} {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from the training checkpoint's (%v)", name, err)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 2 {
		t.Errorf("export wrote %d files, want 2", len(entries))
	}
}

// TestExportPyTorchToHF: a DDP training .pt without a config needs
// --model-config; exported as a bf16 transformers CLIPModel it loads back
// (through train.Load's fallback to package checkpoint) as the bf16 weights.
func TestExportPyTorchToHF(t *testing.T) {
	cfg := microConfig()
	sd := clip.Init(cfg, 4)
	tmp := t.TempDir()
	pt := filepath.Join(tmp, "BMC_CLIP_CF.pt")
	if err := pytorchtest.WriteFile(pt, pytorchtest.NewDict("epoch", 10, "state_dict", pytorchtest.StateDict(sd, "module.")), pytorchtest.Options{}); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(tmp, "model.json")
	data, _ := cfg.OpenCLIPConfigJSON(clip.OpenAIPreprocess)
	os.WriteFile(cfgFile, data, 0o644)
	out := filepath.Join(tmp, "hf")

	if log, err := export(t, "--checkpoint", pt, "--out", out); err == nil || !strings.Contains(err.Error(), "--model-config") {
		t.Errorf("no config: %v\n%s", err, log)
	}
	log, err := export(t, "--checkpoint", pt, "--model-config", cfgFile, "--out", out, "--format", "hf", "--dtype", "bf16")
	if err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	if !strings.Contains(log, "openclip pytorch-zip") || !strings.Contains(log, "model.safetensors") {
		t.Errorf("summary:\n%s", log)
	}
	back, err := train.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range sd.Names() {
		want, _ := sd[name].To(weights.BF16)
		if got := back.Weights[name]; got.DType != weights.BF16 || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("%s: %s, bytes equal %v", name, got.DType, bytes.Equal(got.Data, want.Data))
		}
	}
}

func TestExportFlagErrors(t *testing.T) {
	cfg := microConfig()
	dir := t.TempDir()
	train.Save(dir, 1, &train.Checkpoint{ModelConfig: cfg, Weights: clip.Init(cfg, 1)})
	for _, args := range [][]string{
		{"--checkpoint", dir},
		{"--checkpoint", dir, "--out", t.TempDir(), "--dtype", "f64"},
		{"--checkpoint", dir, "--out", t.TempDir(), "--format", "onnx"},
		{"--checkpoint", filepath.Join(dir, "nope"), "--out", t.TempDir()},
	} {
		if _, err := export(t, args...); err == nil {
			t.Errorf("%q succeeded", args)
		}
	}
}

// TestExportFromHub: --checkpoint hf-hub:ORG/NAME downloads the OpenCLIP
// files from the hub (a local replica) and exports them unchanged; a
// missing repository fails naming the flag and the repository.
func TestExportFromHub(t *testing.T) {
	cfg := microConfig()
	dir, err := train.Save(t.TempDir(), 1, &train.Checkpoint{ModelConfig: cfg, Weights: clip.Init(cfg, 4)})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, name := range []string{train.WeightsFile, train.ModelConfigFile} {
		if files[name], err = os.ReadFile(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	srv := hubtest.New()
	defer srv.Close()
	srv.Push("org/micro", files)
	t.Setenv("HF_ENDPOINT", srv.URL())
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	out := filepath.Join(t.TempDir(), "exported")
	if log, err := export(t, "--checkpoint", "hf-hub:org/micro", "--out", out); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(out, name)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from the hub's (%v)", name, err)
		}
	}
	_, err = export(t, "--checkpoint", "hf-hub:org/missing", "--out", out)
	if err == nil || !strings.Contains(err.Error(), "--checkpoint") || !strings.Contains(err.Error(), "org/missing not found") {
		t.Errorf("missing repository: %v", err)
	}
}
