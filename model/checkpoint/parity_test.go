package checkpoint_test

import (
	"path/filepath"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/internal/reftest"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/weights/hf"
	"github.com/bmca/bmca/model/weights/pytorch/pytorchtest"
)

// TestLoadedModelsReproduceOpenCLIP loads tiny-perturbed (whose LayerNorm
// affines and attention biases are not at their defaults, so a mangled q/k/v
// split or transpose shows) from a transformers .bin and from an OpenCLIP
// DDP training checkpoint, builds the store the encoder uses, and compares
// the features with OpenCLIP's.
func TestLoadedModelsReproduceOpenCLIP(t *testing.T) {
	reference := reftest.Load(t, "tiny-perturbed")
	ref, cases := reference.Weights, reference.Cases
	mc, err := checkpoint.ReadModelConfig(filepath.Join(reference.Dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	hfsd, err := hf.FromOpenCLIP(ref)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	files := map[string]any{
		"pytorch_model.bin": pytorchtest.StateDict(hfsd, ""),
		"epoch_1.pt":        pytorchtest.NewDict("epoch", 1, "state_dict", pytorchtest.StateDict(ref, "module.")),
	}
	pixels, _ := cases["pixels"].Float32s()
	ids, _ := cases["tokens"].Int64s()
	tokens := make([]int32, len(ids))
	for i, id := range ids {
		tokens[i] = int32(id)
	}
	for name, root := range files {
		path := filepath.Join(tmp, name)
		if err := pytorchtest.WriteFile(path, root, pytorchtest.Options{}); err != nil {
			t.Fatal(err)
		}
		ck, err := checkpoint.Open(path, checkpoint.Options{ModelConfig: &mc})
		if err != nil {
			t.Fatal(err)
		}
		store, err := ck.NewStore()
		ck.Close()
		if err != nil {
			t.Fatal(err)
		}
		enc, err := clip.NewEncoder(graphtest.Backend(t), store, mc.Config)
		if err != nil {
			t.Fatal(err)
		}
		img, err := enc.EncodeImages(pixels, cases["pixels"].Shape[0])
		if err != nil {
			t.Fatal(err)
		}
		txt, err := enc.EncodeTexts(tokens, cases["tokens"].Shape[0])
		if err != nil {
			t.Fatal(err)
		}
		enc.Finalize()
		wantImg, _ := cases["image_features"].Float32s()
		wantTxt, _ := cases["text_features"].Float32s()
		graphtest.CheckClose(t, name+" image_features", img, wantImg, 1e-4)
		graphtest.CheckClose(t, name+" text_features", txt, wantTxt, 1e-4)
	}
}
