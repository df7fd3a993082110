package main

import (
	"context"
	"image"
	"image/png"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/eval/cache"
	"github.com/bmca/bmca/internal/cli"
	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/clip"
)

// writePNG writes a random size×size RGB image and returns its pixels.
func writePNG(t *testing.T, path string, size int, seed uint64) *image.RGBA {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	for i := range img.Pix {
		img.Pix[i] = byte(r.IntN(256))
		if i%4 == 3 {
			img.Pix[i] = 255
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestCheckpointPreprocessing: a model whose preprocess_cfg normalises
// with mean = std = 0.5 (as SigLIP-style and many fine-tuned models do)
// is fed (x/255 − 0.5)/0.5 by embed, and eval encodes the same images to
// the same features: both take the preprocessing from the checkpoint.
// With OpenAI's mean and std the pixels (and features) would differ.
func TestCheckpointPreprocessing(t *testing.T) {
	dir := t.TempDir()
	mc, err := checkpoint.ReadModelConfig("tiny")
	if err != nil {
		t.Fatal(err)
	}
	half := clip.PreprocessConfig{Mean: [3]float64{0.5, 0.5, 0.5}, Std: [3]float64{0.5, 0.5, 0.5}, Interpolation: "bicubic", ResizeMode: "shortest"}
	model := filepath.Join(dir, "model")
	if _, err := checkpoint.WriteOpenCLIP(model, mc.Config, half, clip.Init(mc.Config, 1)); err != nil {
		t.Fatal(err)
	}
	s := mc.VisionCfg.ImageSize
	images := []string{filepath.Join(dir, "data", "a", "0.png"), filepath.Join(dir, "data", "b", "1.png")}
	var want []float32 // [2,3,s,s], normalised by hand
	for i, p := range images {
		img := writePNG(t, p, s, uint64(i))
		for c := range 3 {
			for y := range s {
				for x := range s {
					v := img.RGBAAt(x, y)
					ch := []uint8{v.R, v.G, v.B}[c]
					want = append(want, (float32(ch)/255-0.5)/0.5)
				}
			}
		}
	}

	pixels, feats := filepath.Join(dir, "pixels.safetensors"), filepath.Join(dir, "feats.safetensors")
	if log, err := embedCmd(t, append([]string{"--checkpoint", model, "--dump-pixels", pixels, "--out", feats, "--images"}, images...)...); err != nil {
		t.Fatalf("%v\n%s", err, log)
	}
	graphtest.CheckClose(t, "embed's pixels", f32(t, readOut(t, pixels), "pixels"), want, 1e-6)
	embedded := f32(t, readOut(t, feats), "image_features")

	// eval, on the same images as a two-class zero-shot task, with a
	// feature cache to read its image features back from.
	suite := filepath.Join(dir, "suite.yaml")
	if err := os.WriteFile(suite, []byte(`name: half
tasks:
  - name: ab
    domain: test
    kind: zeroshot_classification
    format: imagefolder
    data: [data]
    classes: [a thing, b thing]
    labels: [a, b]
    templates: ["{c}"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(run, []byte("model: {name: tiny}\ntokenizer: {name: byte-level}\ndata: {train_shards: [unused.tar]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cacheDir := filepath.Join(dir, "cache")
	if _, err := cli.Eval(context.Background(), cli.EvalArgs{Checkpoint: model, Suite: suite, Config: &cli.ConfigFlags{Path: run},
		CacheDir: cacheDir, Out: io.Discard, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	var evaluated []float32
	err = filepath.WalkDir(cacheDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := cache.New(cacheDir).Load(strings.TrimSuffix(d.Name(), ".feat"))
		if err != nil {
			return err
		}
		evaluated = append(evaluated, f.Images...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	graphtest.CheckClose(t, "eval's image features against embed's", evaluated, embedded, 1e-6)
}
