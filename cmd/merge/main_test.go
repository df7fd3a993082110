package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/cmd/internal/modelflag"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/textenc"
	"github.com/bmca/bmca/model/vit"
	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/train"
)

func microConfig() clip.Config {
	return clip.Config{
		EmbedDim:  6,
		VisionCfg: clip.VisionConfig{Config: vit.Config{ImageSize: 8, PatchSize: 4, Width: 8, Layers: 2, HeadWidth: 4}},
		TextCfg:   clip.TextConfig{Config: textenc.Config{ContextLength: 5, VocabSize: 11, Width: 8, Heads: 2, Layers: 2}},
	}
}

// saveRun writes a training run with one checkpoint of cfg, initialised
// with seed, and returns the run directory.
func saveRun(t *testing.T, cfg clip.Config, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	_, err := train.Save(dir, 1, &train.Checkpoint{ModelConfig: cfg, Weights: clip.Init(cfg, seed),
		State: train.State{Step: 7, Seed: seed, RunConfig: json.RawMessage(`{"tokenizer":{"name":"byte-level"}}`)}})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func merged(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

func readWeights(t *testing.T, dir string) weights.StateDict {
	t.Helper()
	sd, _, err := weights.ReadFile(filepath.Join(dir, train.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

func TestMerge(t *testing.T) {
	cfg := microConfig()
	base, other := saveRun(t, cfg, 1), saveRun(t, cfg, 2)
	baseSD, otherSD := clip.Init(cfg, 1), clip.Init(cfg, 2)
	outs := t.TempDir()
	for _, alpha := range []string{"0", "1", "0.5"} {
		out := filepath.Join(outs, alpha)
		// Flags before, between and after the paths.
		if log, err := merged(t, base, "--alpha", alpha, other, "--out", out); err != nil {
			t.Fatalf("alpha %s: %v\n%s", alpha, err, log)
		}
		got := readWeights(t, out)
		if len(got) != len(baseSD) {
			t.Fatalf("alpha %s: %d tensors, want %d", alpha, len(got), len(baseSD))
		}
		for name, b := range baseSD {
			g := got[name]
			switch alpha {
			case "0", "1":
				want := b
				if alpha == "1" {
					want = otherSD[name]
				}
				if !bytes.Equal(g.Data, want.Data) || g.DType != want.DType {
					t.Errorf("alpha %s, %s: not bit-identical to the input", alpha, name)
				}
			case "0.5":
				bv, _ := b.Float32s()
				ov, _ := otherSD[name].Float32s()
				gv, _ := g.Float32s()
				for i := range bv {
					if mean := float32((float64(bv[i]) + float64(ov[i])) / 2); gv[i] != mean {
						t.Fatalf("alpha 0.5, %s[%d] = %v, the mean is %v", name, i, gv[i], mean)
					}
				}
			}
		}
		// Every command opens it: eval's path (train.Load, with the run
		// config for the tokenizer) and export/embed's (modelflag).
		ck, err := train.Load(out)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(ck.State.RunConfig), "byte-level") || ck.ModelConfig.VisionCfg.Width != cfg.VisionCfg.Width {
			t.Errorf("alpha %s: loaded config %+v, run config %s", alpha, ck.ModelConfig, ck.State.RunConfig)
		}
		opened, err := (&modelflag.Flags{Checkpoint: out}).Open(context.Background(), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		opened.Close()
		var prov provenance
		data, err := os.ReadFile(filepath.Join(out, MergeFile))
		if err != nil || json.Unmarshal(data, &prov) != nil || prov.Method != "wise-ft" || prov.Base != base || prov.Other != other {
			t.Errorf("merge.json %s (%v)", data, err)
		}
	}
	// The base's checkpoint directory itself is not overwritten.
	dir, _ := train.Resolve(base)
	if _, err := merged(t, "--alpha", "0.5", base, other, "--out", dir); err == nil || !strings.Contains(err.Error(), "write the merge elsewhere") {
		t.Errorf("--out into the base: %v", err)
	}
}

func TestMergeRefusesOtherArchitectures(t *testing.T) {
	cfg := microConfig()
	wide := microConfig()
	wide.VisionCfg.Width, wide.TextCfg.Layers = 16, 3
	_, err := merged(t, "--alpha", "0.5", saveRun(t, cfg, 1), saveRun(t, wide, 2), "--out", t.TempDir())
	if err == nil {
		t.Fatal("merged two architectures")
	}
	for _, want := range []string{"different architectures", "vision_cfg.width: 8 ≠ 16", "text_cfg.layers: 2 ≠ 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	for _, args := range [][]string{
		{"--alpha", "0.5", "a", "--out", "o"},
		{"a", "b", "--out", "o"},
		{"--alpha", "half", "a", "b", "--out", "o"},
	} {
		if _, err := merged(t, args...); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}
