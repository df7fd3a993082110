package train

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
)

// TestEvaluationFollowsTheRunsPrecision checks that an evaluation inside a
// bf16-mixed run computes in bf16 (its features are those of a bf16
// encoder over the saved weights, not of an f32 one), without gradient
// checkpointing, and that metrics.jsonl says which precision ran; an f32
// run's evaluation line says f32.
func TestEvaluationFollowsTheRunsPrecision(t *testing.T) {
	be := graphtest.Backend(t)
	src := newCyclingSource(tinyConfig(), 2, 4)
	pixels := src.pixels[0]
	for _, rt := range []transformer.Runtime{{}, {Precision: transformer.BFloat16Mixed, GradCheckpointing: true}} {
		t.Run(rt.Precision.String(), func(t *testing.T) {
			cfg := tinyConfig()
			cfg.Runtime = rt
			opts := testOptions(t, cfg, 2)
			opts.EvalEvery = 1
			var seen clip.Config
			var features []float32
			res, err := Loop(context.Background(), be, cfg, opts, src, Hooks{
				Evaluate: func(_ context.Context, step int, enc *clip.Encoder) (map[string]float64, error) {
					seen = enc.Config()
					var err error
					features, err = enc.EncodeImages(pixels, 4)
					return map[string]float64{"step_seen": float64(step)}, err
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if seen.Precision != rt.Precision || seen.GradCheckpointing {
				t.Errorf("the evaluation's encoder runs %s with gradient checkpointing %v; want %s without", seen.Precision, seen.GradCheckpointing, rt.Precision)
			}

			// The last evaluation ran on the final weights: recompute its
			// features from the checkpoint in both precisions.
			ckpt, err := Load(res.Checkpoint)
			if err != nil {
				t.Fatal(err)
			}
			encode := func(p transformer.Precision) []float32 {
				store, err := clip.NewStore(ckpt.ModelConfig, ckpt.Weights)
				if err != nil {
					t.Fatal(err)
				}
				c := ckpt.ModelConfig
				c.Precision = p
				enc, err := clip.NewEncoder(be, store, c)
				if err != nil {
					t.Fatal(err)
				}
				defer enc.Finalize()
				f, err := enc.EncodeImages(pixels, 4)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
			same, other := encode(rt.Precision), encode(transformer.BFloat16Mixed)
			if rt.Precision == transformer.BFloat16Mixed {
				other = encode(transformer.Float32)
			}
			if d, _ := graphtest.MaxAbsDiff(features, same); d != 0 {
				t.Errorf("evaluation features differ from a %s encoder's by %g", rt.Precision, d)
			}
			if d, _ := graphtest.MaxAbsDiff(features, other); d == 0 {
				t.Errorf("evaluation features equal the other precision's too: the test cannot tell them apart")
			}

			f, err := os.Open(filepath.Join(opts.Output, MetricsFile))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			evals := 0
			for sc := bufio.NewScanner(f); sc.Scan(); {
				var rec struct {
					Kind, Precision string
					StepSeen        float64 `json:"step_seen"`
				}
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					t.Fatal(err)
				}
				if rec.Kind != "eval" {
					continue
				}
				evals++
				if rec.Precision != rt.Precision.String() || rec.StepSeen == 0 {
					t.Errorf("eval line %s: precision %q, want %q", sc.Text(), rec.Precision, rt.Precision)
				}
			}
			if evals != 2 {
				t.Errorf("%d eval lines, want 2 (step 1, and the final evaluation)", evals)
			}
		})
	}
}
