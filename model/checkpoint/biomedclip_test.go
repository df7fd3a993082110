package checkpoint_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/hftext"
	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/model/weights/pytorch/pytorchtest"
)

// biomedTiny is the committed BiomedCLIP-shaped reference: an OpenCLIP
// checkpoint (timm ViT + BERT text tower) saved by open_clip 2.32.0, with
// its inputs and outputs (see model/clip/testdata/biomedclip).
var biomedTiny = filepath.Join("..", "clip", "testdata", "biomedclip", "tiny")

// checkFeatures runs the checkpoint's model through clip.Encoder on the
// reference inputs and compares with OpenCLIP's features.
func checkFeatures(t *testing.T, what string, ck *checkpoint.Checkpoint) {
	t.Helper()
	cases, _, err := weights.ReadFile(filepath.Join(biomedTiny, "cases.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := ck.NewStore()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := clip.NewEncoder(graphtest.Backend(t), store, ck.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Finalize()
	pixels, _ := cases["pixels"].Float32s()
	ids, _ := cases["tokens"].Int64s()
	tokens := make([]int32, len(ids))
	for i, id := range ids {
		tokens[i] = int32(id)
	}
	img, err := enc.EncodeImages(pixels, cases["pixels"].Shape[0])
	if err != nil {
		t.Fatal(err)
	}
	txt, err := enc.EncodeTexts(tokens, cases["tokens"].Shape[0])
	if err != nil {
		t.Fatal(err)
	}
	wantImg, _ := cases["image_features"].Float32s()
	wantTxt, _ := cases["text_features"].Float32s()
	graphtest.CheckClose(t, what+" image_features", img, wantImg, 1e-4)
	graphtest.CheckClose(t, what+" text_features", txt, wantTxt, 1e-4)
}

// TestBiomedCLIPShapedCheckpoint opens the reference folder as the
// OpenCLIP checkpoint it is, exports it in OpenCLIP's layout and opens the
// export again: same tensors, same model, same features.
func TestBiomedCLIPShapedCheckpoint(t *testing.T) {
	ck, sd := load(t, biomedTiny, checkpoint.Options{})
	if want := (checkpoint.Format{Container: checkpoint.Safetensors, Layout: checkpoint.OpenCLIP}); ck.Format != want {
		t.Errorf("detected %s, want %s", ck.Format, want)
	}
	if ck.Model.Preprocess.Mean != clip.OpenAIPreprocess.Mean || ck.Model.Preprocess.Interpolation != "bicubic" {
		t.Errorf("preprocess_cfg with only mean and std: %+v", ck.Model.Preprocess)
	}
	checkFeatures(t, "reference", ck)

	out := t.TempDir()
	if _, err := ck.Export(out, checkpoint.ExportOptions{}); err != nil {
		t.Fatal(err)
	}
	back, backSD := load(t, out, checkpoint.Options{})
	sameStateDict(t, "export", backSD, sd)
	if a, b := mustJSON(t, back.Config()), mustJSON(t, ck.Config()); a != b {
		t.Errorf("exported config reads back as\n%s\nnot\n%s", a, b)
	}
	checkFeatures(t, "export", back)

	_, err := ck.Export(t.TempDir(), checkpoint.ExportOptions{Format: checkpoint.ExportHF})
	if err == nil || !strings.Contains(err.Error(), "OpenCLIP's layout") {
		t.Errorf("exporting a BERT/timm model as a transformers CLIPModel: %v", err)
	}
}

// TestBiomedCLIPHubLayout loads the model as BiomedCLIP is published: a
// torch.save state dict (open_clip_pytorch_model.bin, here with the
// position_ids buffer transformers < 4.31 saved and OpenCLIP drops) next to
// an open_clip_config.json that names the text model but does not hold
// its config.json, which the caller then supplies.
func TestBiomedCLIPHubLayout(t *testing.T) {
	ref, sd := load(t, biomedTiny, checkpoint.Options{})
	raw, err := os.ReadFile(filepath.Join(biomedTiny, checkpoint.OpenCLIPConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	bertConfig := cfg[hftext.ConfigKey]
	delete(cfg, hftext.ConfigKey)
	hubConfig, _ := json.Marshal(cfg)

	dir := t.TempDir()
	withBuffer := weights.StateDict{"text.transformer.embeddings.position_ids": weights.FromInt64s([]int{1, 24}, make([]int64, 24))}
	for name, x := range sd {
		withBuffer[name] = x
	}
	if err := pytorchtest.WriteFile(filepath.Join(dir, "open_clip_pytorch_model.bin"), pytorchtest.StateDict(withBuffer, ""), pytorchtest.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, checkpoint.OpenCLIPConfigFile), hubConfig, 0o644); err != nil {
		t.Fatal(err)
	}

	if _, err := checkpoint.Open(dir, checkpoint.Options{}); err == nil || !strings.Contains(err.Error(), "needs this model's config.json") {
		t.Errorf("without the text model's config.json: %v", err)
	}
	var asked []string
	ck, got := load(t, dir, checkpoint.Options{HFConfigs: func(name string) ([]byte, error) {
		asked = append(asked, name)
		if name != "bmca-tiny-bert" {
			return nil, errors.New("unknown model")
		}
		return bertConfig, nil
	}})
	if len(asked) != 1 {
		t.Errorf("asked for %v, want the text model once", asked)
	}
	if want := (checkpoint.Format{Container: checkpoint.PyTorchZip, Layout: checkpoint.OpenCLIP}); ck.Format != want {
		t.Errorf("detected %s, want %s", ck.Format, want)
	}
	sameStateDict(t, "hub layout", got, sd)
	if mustJSON(t, ck.Config()) != mustJSON(t, ref.Config()) {
		t.Error("the supplied config.json must give the model the reference's config.json gives")
	}
	checkFeatures(t, "hub layout", ck)
}

func mustJSON(t *testing.T, c clip.Config) string {
	t.Helper()
	data, err := c.OpenCLIPConfigJSON(clip.OpenAIPreprocess)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
