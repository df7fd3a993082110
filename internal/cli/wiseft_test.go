package cli

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/train"
)

// TestWiseFTSweep sweeps α over two checkpoints of the tiny demo run (steps
// 2 and 4) on its synthetic suite: α = 0 and 1 score exactly as the two
// checkpoints themselves, every α is one column of one leaderboard compared
// with α = 0, and the plot is written.
func TestWiseFTSweep(t *testing.T) {
	d := sharedDemo(t)
	out := filepath.Join(t.TempDir(), "sweep")
	var report bytes.Buffer
	alphas := []float64{0, 0.5, 1}
	swept, err := Eval(context.Background(), EvalArgs{WiseFT: []string{d.step2, d.step4}, Alphas: alphas, Suite: d.suite,
		Output: out, Out: &report, Progress: io.Discard})
	if err != nil {
		t.Fatalf("%v\n%s", err, report.String())
	}
	direct, err := Eval(context.Background(), EvalArgs{Compare: []string{d.step2, d.step4}, Suite: d.suite, Out: io.Discard, Progress: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	n := len(direct) / 2
	if len(swept) != 3*n {
		t.Fatalf("%d results for 3 alphas × %d tasks", len(swept), n)
	}
	for i := range n {
		a0, a1, half := swept[i], swept[2*n+i], swept[n+i]
		if a0.Model != "α=0" || half.Model != "α=0.5" || a1.Model != "α=1" || !strings.Contains(half.Pretrained, "wise-ft α=0.5") {
			t.Errorf("labels %q %q %q, pretrained %q", a0.Model, half.Model, a1.Model, half.Pretrained)
		}
		if !reflect.DeepEqual(a0.Metrics, direct[i].Metrics) || !reflect.DeepEqual(a1.Metrics, direct[n+i].Metrics) {
			t.Errorf("%s: α=0 %v vs step 2 %v; α=1 %v vs step 4 %v", a0.Task, a0.Metrics, direct[i].Metrics, a1.Metrics, direct[n+i].Metrics)
		}
		if half.Failed || half.Skipped || len(half.Metrics) == 0 || half.Paired == nil || half.Paired.Reference != "α=0" {
			t.Errorf("%s at α=0.5: %+v", half.Task, half)
		}
	}
	for _, want := range []string{"WiSE-FT sweep over α = [0 0.5 1]: best overall mean at α =", "α=0.5", "wise-ft.png"} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.String())
		}
	}
	md, _ := os.ReadFile(filepath.Join(out, "leaderboard.md"))
	if !strings.Contains(string(md), "| Task | Domain | Kind | Metric | α=0 | α=0.5 | α=1 |") || !strings.Contains(string(md), "## Paired differences from α=0") {
		t.Errorf("leaderboard.md:\n%s", md)
	}
	f, err := os.Open(filepath.Join(out, WiseFTChart))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if img, err := png.Decode(f); err != nil || img.Bounds().Dx() < 400 {
		t.Errorf("%s: %v", WiseFTChart, err)
	}
}

// TestWiseFTRefusesOtherArchitectures: the sweep stops before evaluating
// when the checkpoints cannot be mixed, naming the differing fields.
func TestWiseFTRefusesOtherArchitectures(t *testing.T) {
	d := sharedDemo(t)
	ck, err := train.Load(d.step2)
	if err != nil {
		t.Fatal(err)
	}
	wide := ck.ModelConfig
	wide.TextCfg.Width *= 2
	other := t.TempDir()
	if _, err := train.Save(other, 1, &train.Checkpoint{ModelConfig: wide, Weights: clip.Init(wide, 1), State: ck.State}); err != nil {
		t.Fatal(err)
	}
	_, err = Eval(context.Background(), EvalArgs{WiseFT: []string{d.step2, other}, Alphas: []float64{0, 1}, Suite: d.suite, Out: io.Discard, Progress: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "different architectures") || !strings.Contains(err.Error(), "text_cfg.width") {
		t.Errorf("error %v", err)
	}
	if _, err := Eval(context.Background(), EvalArgs{WiseFT: []string{d.step2, other}, Checkpoint: d.run, Alphas: []float64{0}, Suite: d.suite, Out: io.Discard}); err == nil {
		t.Error("--wise-ft with --checkpoint accepted")
	}
}

func TestParseAlphas(t *testing.T) {
	for in, want := range map[string][]float64{
		"0:1:0.1":     {0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1},
		"0:1:0.25":    {0, 0.25, 0.5, 0.75, 1},
		"0:1:0.3":     {0, 0.3, 0.6, 0.9},
		"0, 0.5, 1.2": {0, 0.5, 1.2},
		"0.7":         {0.7},
	} {
		got, err := ParseAlphas(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseAlphas(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0:1", "1:0:0.1", "0:1:0", "a,b", "0,0", "0:1:1e-6", "NaN"} {
		if got, err := ParseAlphas(bad); err == nil {
			t.Errorf("ParseAlphas(%q) = %v, want an error", bad, got)
		}
	}
}
