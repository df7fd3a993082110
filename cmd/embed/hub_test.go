package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/hub/hubtest"
	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/internal/hubfixture"
	"github.com/bmca/bmca/model/weights"
)

// TestHubBiomedCLIP: embed --checkpoint hf-hub:… on a tiny BiomedCLIP in
// BiomedCLIP's hub layout (.bin only, text model and tokenizer in their
// own repositories): OpenCLIP's features for the reference inputs; an
// image preprocessed with the model's preprocess_cfg; texts through the
// model's WordPiece tokenizer, found without a flag.
func TestHubBiomedCLIP(t *testing.T) {
	srv := hubtest.New()
	defer srv.Close()
	m := hubfixture.PublishBiomedCLIP(t, srv)
	hubfixture.Env(t, srv)
	tmp := t.TempDir()
	cases := filepath.Join(tmp, "cases.safetensors")
	if err := weights.WriteFile(cases, m.Cases, nil); err != nil {
		t.Fatal(err)
	}
	// "a chest ct scan" as BERT's tokenizer gives it from the published
	// vocabulary: [CLS] a chest ct scan [SEP], then [PAD].
	ids := []int64{2}
	for _, w := range []string{"a", "chest", "ct", "scan"} {
		ids = append(ids, int64(slices.Index(m.Vocab, w)))
	}
	ids = append(ids, 3)
	ids = append(ids, make([]int64, 16-len(ids))...)
	hand := filepath.Join(tmp, "hand.safetensors")
	if err := weights.WriteFile(hand, weights.StateDict{"tokens": weights.FromInt64s([]int{1, 16}, ids)}, nil); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(tmp, "img.png")
	writePNG(t, img, 45, 3)
	dump, out := filepath.Join(tmp, "pixels.safetensors"), filepath.Join(tmp, "out.safetensors")

	if log, err := embedCmd(t, "--checkpoint", hubfixture.Ref, "--pixels", cases+":pixels", "--images", img, "--dump-pixels", dump,
		"--tokens", cases+":tokens", "--texts", "A chest CT scan", "--tokens", hand+":tokens", "--out", out); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	got := readOut(t, out)
	n, m2 := m.Cases["pixels"].Shape[0], m.Cases["tokens"].Shape[0]
	e := m.Config.EmbedDim
	imgFeats, txtFeats := f32(t, got, "image_features"), f32(t, got, "text_features")
	graphtest.CheckClose(t, "image_features", imgFeats[:n*e], f32(t, m.Cases, "image_features"), 1e-4)
	graphtest.CheckClose(t, "text_features", txtFeats[:m2*e], f32(t, m.Cases, "text_features"), 1e-4)
	graphtest.CheckClose(t, "the text vs its ids", txtFeats[m2*e:(m2+1)*e], txtFeats[(m2+1)*e:], 1e-6)

	pre := preprocess.Config{ImageSize: m.Config.VisionCfg.ImageSize}
	for i := range 3 {
		pre.Mean[i], pre.Std[i] = float32(hubfixture.Preprocess.Mean[i]), float32(hubfixture.Preprocess.Std[i])
	}
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	want, err := pre.Apply(data)
	if err != nil {
		t.Fatal(err)
	}
	pix, _ := readOut(t, dump)["pixels"].Float32s()
	if row := len(want); !slices.Equal(pix[n*row:], want) {
		t.Error("the image is not preprocessed with the model's preprocess_cfg")
	}
}
