package train

import (
	"fmt"
	"math"
	"time"

	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/weights"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

// Stepper owns the model and optimiser state of a run and performs one
// optimiser step per call, as one compiled graph: forward, contrastive loss,
// gradients, clipping, AdamW, logit_scale clamp.
type Stepper struct {
	modelCfg clip.Config
	opt      AdamW
	store    *model.Store
	params   []trainedParam
	exec     *model.Exec
	backend  compute.Backend
	// Step counts the optimiser steps already taken.
	Step int
}

// StepStats is what one step reports.
type StepStats struct {
	Loss       float64
	GradNorm   float64
	LogitScale float64 // exp()ed, as OpenCLIP logs "scale"
	LR         float64
	Duration   time.Duration
}

// NewStepper builds the training graph for a model initialised from sd.
// optState, when non-nil, restores the optimiser moments (names
// "exp_avg.<param>" and "exp_avg_sq.<param>"); step is the number of steps
// already taken (for AdamW's bias correction).
func NewStepper(backend compute.Backend, modelCfg clip.Config, sd weights.StateDict, opt AdamW, optState weights.StateDict, step int) (*Stepper, error) {
	store, err := clip.NewStore(modelCfg, sd)
	if err != nil {
		return nil, err
	}
	s := &Stepper{modelCfg: modelCfg, opt: opt, store: store, backend: backend, Step: step}
	for _, spec := range clip.Params(modelCfg) {
		p := trainedParam{spec: spec, param: store.GetVariable(transformer.VariablePath(spec.Name)), decay: !clip.NoWeightDecay(spec)}
		for _, moment := range []struct {
			scope string
			key   string
			dst   **model.Variable
		}{{expAvgScope, "exp_avg." + spec.Name, &p.expAvg}, {expAvgSqScope, "exp_avg_sq." + spec.Name, &p.expSq}} {
			values := make([]float32, spec.NumElements())
			if optState != nil {
				t, ok := optState[moment.key]
				if !ok {
					return nil, fmt.Errorf("optimizer state has no %s", moment.key)
				}
				if values, err = t.Float32s(); err != nil || len(values) != spec.NumElements() {
					return nil, fmt.Errorf("optimizer state %s: wrong size or type (%v)", moment.key, err)
				}
			}
			v, err := store.CreateVariable(moment.scope+transformer.VariablePath(spec.Name), tensors.FromFlatDataAndDimensions(values, spec.Shape...))
			if err != nil {
				return nil, err
			}
			v.SetTrainable(false)
			*moment.dst = v
		}
		s.params = append(s.params, p)
	}
	err = exceptions.TryCatch[error](func() {
		s.exec = model.MustNewExec(backend, store, s.graph)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// graph is the whole training step. Inputs: pixels, tokens, lr, bc1, bc2.
// Outputs: loss, gradient norm, exp(logit_scale) after the clamp.
func (s *Stepper) graph(scope *model.Scope, inputs []*Node) []*Node {
	pixels, tokens := inputs[0], inputs[1]
	hyper := stepHyper{lr: inputs[2], biasCorrection1: inputs[3], biasCorrection2: inputs[4]}
	g := pixels.Graph()
	img := clip.EncodeImage(scope, s.modelCfg, pixels)
	txt := clip.EncodeText(scope, s.modelCfg, tokens)
	loss := clip.ContrastiveLoss(clip.Logits(scope, img, txt))

	values := make([]*Node, len(s.params))
	for i, p := range s.params {
		values[i] = p.param.NodeValue(g)
	}
	grads := Gradient(loss, values...)
	norm := s.opt.update(s.params, grads, hyper)

	// OpenCLIP clamps after the optimiser step: logit_scale.clamp_(0, ln 100).
	scale := s.store.GetVariable(transformer.VariablePath(clip.LogitScaleName))
	clamped := ClipScalar(scale.NodeValue(g), 0, clip.MaxLogitScale)
	scale.SetNodeValue(clamped)
	return []*Node{loss, norm, Exp(clamped)}
}

// TrainStep runs one optimiser step on a batch with learning rate lr.
func (s *Stepper) TrainStep(pixels []float32, tokens []int32, batch int, lr float64) (StepStats, error) {
	start := time.Now()
	size := s.modelCfg.VisionCfg.ImageSize
	ctxLen := s.modelCfg.TextCfg.ContextLength
	if len(pixels) != batch*3*size*size || len(tokens) != batch*ctxLen {
		return StepStats{}, fmt.Errorf("train step: batch of %d needs %d pixels and %d tokens, got %d and %d", batch, batch*3*size*size, batch*ctxLen, len(pixels), len(tokens))
	}
	t := float64(s.Step + 1)
	bc1 := 1 - math.Pow(s.opt.Beta1, t)
	bc2 := 1 - math.Pow(s.opt.Beta2, t)
	outputs, err := s.exec.Call(
		tensors.FromFlatDataAndDimensions(pixels, batch, 3, size, size),
		tensors.FromFlatDataAndDimensions(tokens, batch, ctxLen),
		float32(lr), float32(bc1), float32(bc2),
	)
	if err != nil {
		return StepStats{}, fmt.Errorf("train step %d: %w", s.Step+1, err)
	}
	stats := StepStats{LR: lr}
	for i, dst := range []*float64{&stats.Loss, &stats.GradNorm, &stats.LogitScale} {
		*dst = float64(tensors.MustCopyFlatData[float32](outputs[i])[0])
		outputs[i].FinalizeAll()
	}
	s.Step++
	stats.Duration = time.Since(start)
	return stats, nil
}

// Store is the GoMLX store with the model's (and optimiser's) variables.
func (s *Stepper) Store() *model.Store { return s.store }

// ModelConfig is the architecture being trained.
func (s *Stepper) ModelConfig() clip.Config { return s.modelCfg }

// Backend is the backend the step runs on.
func (s *Stepper) Backend() compute.Backend { return s.backend }

// StateDict copies the model's weights out in OpenCLIP layout.
func (s *Stepper) StateDict() (weights.StateDict, error) {
	return clip.StateDictFromStore(s.store, s.modelCfg)
}

// OptimizerState copies AdamW's moments out, named exp_avg.<param> and
// exp_avg_sq.<param>.
func (s *Stepper) OptimizerState() (weights.StateDict, error) {
	sd := make(weights.StateDict)
	for _, p := range s.params {
		for _, m := range []struct {
			key string
			v   *model.Variable
		}{{"exp_avg." + p.spec.Name, p.expAvg}, {"exp_avg_sq." + p.spec.Name, p.expSq}} {
			t, err := m.v.Value()
			if err != nil {
				return nil, err
			}
			values, err := tensors.CopyFlatData[float32](t)
			if err != nil {
				return nil, err
			}
			sd[m.key] = weights.FromFloat32s(p.spec.Shape, values)
		}
	}
	return sd, nil
}

// Finalize releases the compiled graph.
func (s *Stepper) Finalize() { s.exec.Finalize() }

var _ = dtypes.Float32
