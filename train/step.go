package train

import (
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/weights"
	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

// Recipe is what the step graph needs to know beyond the optimiser. Its
// YAML keys (with AdamW's) are those of a run config's train section. How
// the towers compute (precision, gradient checkpointing) is not part of
// it: that is the model configuration's Runtime, which the step, the
// evaluations inside a run and every command read from the one place.
type Recipe struct {
	// AdamW is the optimiser.
	AdamW `yaml:",inline"`
	// AccumFreq is OpenCLIP's --accum-freq: micro-batches per optimiser
	// step (1 = none). The contrastive loss spans all of them.
	AccumFreq int `yaml:"accum_freq"`
	// LockImage freezes the image tower (OpenCLIP's --lock-image): its
	// weights get no gradient and no update.
	LockImage bool `yaml:"lock_image"`
	// Devices is the size of the data-parallel device mesh: 0 runs the
	// plain single-device program; n ≥ 1 partitions every step over the
	// backend's first n devices, each taking 1/n of every micro-batch
	// (which must split evenly), with the loss and the update those of the
	// whole batch. A mesh of 1 is the partitioned program on one device.
	// A run config's train.devices counts devices differently (0 = all the
	// backend has), so the mesh size is not a config key: MeshSize turns
	// train.devices into it.
	Devices int `yaml:"-"`
}

// Validate reports a recipe that cannot run, naming the field by its YAML
// key.
func (r Recipe) Validate() error {
	if err := r.AdamW.Validate(); err != nil {
		return err
	}
	if r.AccumFreq < 1 {
		return fmt.Errorf("accum_freq: must be ≥ 1 (1 = no accumulation), got %d", r.AccumFreq)
	}
	if r.Devices < 0 {
		return fmt.Errorf("the device mesh size must be ≥ 0, got %d", r.Devices)
	}
	return nil
}

// Stepper owns the model and optimiser state of a run and performs one
// optimiser step per call.
//
// Without accumulation a step is one compiled graph: forward, contrastive
// loss, gradients, clipping, AdamW, logit_scale clamp. With accumulation it
// follows OpenCLIP: every micro-batch is first encoded without gradients and
// its features cached; then each micro-batch is encoded again with
// gradients, its features put into its slot of the cache, the loss taken
// over the whole accumulated batch and the gradients summed; then one
// AdamW step applies them. That sum is the full-batch gradient for every
// parameter but logit_scale, which each micro-batch's loss depends on
// directly: its gradient is counted AccumFreq times, exactly as OpenCLIP's
// accumulation does (the parity tests check the logged gradient norm against
// OpenCLIP's own accumulated run).
type Stepper struct {
	modelCfg clip.Config
	recipe   Recipe
	store    *model.Store
	params   []trainedParam // the trained ones (all but a locked image tower)
	backend  compute.Backend
	dp       *dataParallel // nil: one device, no mesh

	fused    *model.Exec // accum 1: the whole step
	features *model.Exec // accum > 1: encode without gradients
	accum    *model.Exec // accum > 1: gradients of one micro-batch, added to the accumulators
	apply    *model.Exec // accum > 1: clip + AdamW from the accumulators

	// Step counts the optimiser steps already taken.
	Step int
}

// MicroBatch is one batch of image–caption pairs.
type MicroBatch struct {
	Pixels []float32
	Tokens []int32
	Size   int
}

// deviceBatch is a micro-batch's pixels and tokens already on the device,
// put there by upload ahead of the step that uses them.
type deviceBatch struct {
	shards [][]any // per device: pixels, tokens (see dataParallel.shard)
}

// upload puts a micro-batch on the devices (dataParallel.shard) from the
// loop's prefetching goroutine, so that the copy overlaps the step before
// instead of delaying the step that uses it.
func (s *Stepper) upload(m MicroBatch) (deviceBatch, error) {
	shards, err := s.dp.shard(s.backend, m, s.modelCfg.VisionCfg.ImageSize, s.modelCfg.TextCfg.ContextLength)
	if err != nil {
		return deviceBatch{}, fmt.Errorf("copying a batch to the device: %w", err)
	}
	return deviceBatch{shards}, nil
}

// release frees the device buffers at once (a zero deviceBatch holds none).
func (d deviceBatch) release() { finalizeShards(d.shards) }

// stepInputs returns micro-batch i as the step graphs' per-device inputs:
// its upload when the loop made one, else a fresh one. The caller
// finalizes them (finalizeShards) after the step.
func (s *Stepper) stepInputs(micro []MicroBatch, dev []deviceBatch, i int) ([][]any, error) {
	if i < len(dev) && dev[i].shards != nil {
		return dev[i].shards, nil
	}
	return s.dp.shard(s.backend, micro[i], s.modelCfg.VisionCfg.ImageSize, s.modelCfg.TextCfg.ContextLength)
}

// StepStats is what one step reports.
type StepStats struct {
	Loss       float64
	GradNorm   float64
	LogitScale float64 // exp()ed, as OpenCLIP logs "scale"
	LR         float64
	Duration   time.Duration
}

// Scopes of the optimiser's variables, named like the parameter they belong
// to, so they can be saved next to the weights.
const gradAccumScope = "/optimizer/grad_accum"

// optimizerSlot is one optimiser variable of a parameter: where it lives in
// the store and its name in the saved optimizer state ("" = not saved).
type optimizerSlot struct {
	scope, key string
	dst        **model.Variable
}

// NewStepper builds the training graphs for a model initialised from sd.
// modelCfg.Runtime says how the towers compute (OpenCLIP's --precision
// fp32, tf32 or amp_bf16, --grad-checkpointing); weights, gradients and
// AdamW's moments are float32 under every precision, and checkpointing
// leaves the update unchanged. optState, when non-nil, restores the
// optimiser moments (names "exp_avg.<param>" and "exp_avg_sq.<param>");
// step is the number of steps already taken (for AdamW's bias correction).
func NewStepper(backend compute.Backend, modelCfg clip.Config, sd weights.StateDict, recipe Recipe, optState weights.StateDict, step int) (*Stepper, error) {
	if recipe.AccumFreq < 1 {
		recipe.AccumFreq = 1
	}
	store, err := clip.NewStore(modelCfg, sd)
	if err != nil {
		return nil, err
	}
	s := &Stepper{modelCfg: modelCfg, recipe: recipe, store: store, backend: backend, Step: step}
	for _, t := range trainedSpecs(modelCfg, recipe) {
		spec := t.spec
		p := trainedParam{spec: spec, param: store.GetVariable(transformer.VariablePath(spec.Name)), decay: t.decay}
		// Each parameter gets its AdamW moments (restored from optState
		// when resuming) and, when accumulating, a gradient accumulator.
		slots := []optimizerSlot{
			{expAvgScope, "exp_avg." + spec.Name, &p.expAvg},
			{expAvgSqScope, "exp_avg_sq." + spec.Name, &p.expSq},
		}
		if recipe.AccumFreq > 1 {
			slots = append(slots, optimizerSlot{gradAccumScope, "", &p.gradAcc})
		}
		for _, slot := range slots {
			values := make([]float32, spec.NumElements())
			if optState != nil && slot.key != "" {
				t, ok := optState[slot.key]
				if !ok {
					return nil, fmt.Errorf("optimizer state has no %s", slot.key)
				}
				if values, err = t.Float32s(); err != nil || len(values) != spec.NumElements() {
					return nil, fmt.Errorf("optimizer state %s: wrong size or type (%v)", slot.key, err)
				}
			}
			v, err := store.CreateVariable(slot.scope+transformer.VariablePath(spec.Name), tensors.FromFlatDataAndDimensions(values, spec.Shape...))
			if err != nil {
				return nil, err
			}
			v.SetTrainable(false)
			*slot.dst = v
		}
		s.params = append(s.params, p)
	}
	if recipe.Devices > 0 {
		if s.dp, err = newDataParallel(backend, recipe.Devices); err != nil {
			return nil, err
		}
	}
	err = exceptions.TryCatch[error](func() {
		if recipe.AccumFreq == 1 {
			s.fused = s.dp.configure(model.MustNewExec(backend, store, s.fusedGraph), 2, 3)
			return
		}
		s.features = s.dp.configure(model.MustNewExec(backend, store, func(scope *model.Scope, pixels, tokens *Node) (*Node, *Node) {
			return clip.EncodeImage(scope, modelCfg, pixels), clip.EncodeText(scope, modelCfg, tokens)
		}), 2, 0)
		s.accum = s.dp.configure(model.MustNewExec(backend, store, s.accumGraph), 2, 3)
		s.apply = s.dp.configure(model.MustNewExec(backend, store, s.applyGraph), 0, 3)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Stepper) values(g *Graph) []*Node {
	values := make([]*Node, len(s.params))
	for i, p := range s.params {
		values[i] = p.param.NodeValue(g)
	}
	return values
}

// finishUpdate clamps logit_scale as OpenCLIP does after every step
// (logit_scale.clamp_(0, ln 100)) and returns exp of the clamped value.
func (s *Stepper) finishUpdate(g *Graph) *Node {
	scale := s.store.GetVariable(transformer.VariablePath(clip.LogitScaleName))
	clamped := ClipScalar(scale.NodeValue(g), 0, clip.MaxLogitScale)
	scale.SetNodeValue(clamped)
	return Exp(clamped)
}

// fusedGraph is the whole step. Inputs: pixels, tokens, lr, bc1, bc2.
// Outputs: loss, gradient norm, exp(logit_scale) after the clamp.
func (s *Stepper) fusedGraph(scope *model.Scope, inputs []*Node) []*Node {
	pixels, tokens := inputs[0], inputs[1]
	hyper := stepHyper{lr: inputs[2], biasCorrection1: inputs[3], biasCorrection2: inputs[4]}
	g := pixels.Graph()
	loss := clip.ContrastiveLoss(clip.Logits(scope, clip.EncodeImage(scope, s.modelCfg, pixels), clip.EncodeText(scope, s.modelCfg, tokens)))
	grads := Gradient(loss, s.values(g)...)
	norm := s.recipe.AdamW.update(s.params, grads, hyper)
	return []*Node{loss, norm, s.finishUpdate(g)}
}

// accumGraph encodes micro-batch j with gradients and places its features
// into the cached features of the whole accumulated batch. Inputs: pixels,
// tokens [B,…], cached image and text features [N,E] with slot j zeroed,
// placement [N,B] (the identity into slot j). The gradient of the loss over
// all N pairs is added to the accumulators. Output: the loss.
func (s *Stepper) accumGraph(scope *model.Scope, inputs []*Node) []*Node {
	pixels, tokens, cachedImg, cachedTxt, placement := inputs[0], inputs[1], inputs[2], inputs[3], inputs[4]
	g := pixels.Graph()
	img := Add(cachedImg, Dot(placement, clip.EncodeImage(scope, s.modelCfg, pixels)).Product())
	txt := Add(cachedTxt, Dot(placement, clip.EncodeText(scope, s.modelCfg, tokens)).Product())
	loss := clip.ContrastiveLoss(clip.Logits(scope, img, txt))
	grads := Gradient(loss, s.values(g)...)
	for i, p := range s.params {
		p.gradAcc.SetNodeValue(Add(p.gradAcc.NodeValue(g), grads[i]))
	}
	return []*Node{loss}
}

// applyGraph takes the AdamW step from the accumulated gradients and zeroes
// them. Inputs: lr, bc1, bc2. Outputs: gradient norm, exp(logit_scale).
func (s *Stepper) applyGraph(scope *model.Scope, inputs []*Node) []*Node {
	g := inputs[0].Graph()
	grads := make([]*Node, len(s.params))
	for i, p := range s.params {
		grads[i] = p.gradAcc.NodeValue(g)
		p.gradAcc.SetNodeValue(ZerosLike(grads[i]))
	}
	norm := s.recipe.AdamW.update(s.params, grads, stepHyper{lr: inputs[0], biasCorrection1: inputs[1], biasCorrection2: inputs[2]})
	return []*Node{norm, s.finishUpdate(g)}
}

// TrainStep runs one optimiser step with learning rate lr on AccumFreq
// micro-batches of equal size.
func (s *Stepper) TrainStep(micro []MicroBatch, lr float64) (StepStats, error) {
	return s.step(micro, nil, lr)
}

// step is TrainStep with the micro-batches' uploads, when the loop made
// them ahead (dev[i] for micro[i]); it releases them.
func (s *Stepper) step(micro []MicroBatch, dev []deviceBatch, lr float64) (StepStats, error) {
	defer func() {
		for _, d := range dev {
			d.release()
		}
	}()
	start := time.Now()
	if len(micro) != s.recipe.AccumFreq {
		return StepStats{}, fmt.Errorf("train step: got %d micro-batches, accum_freq is %d", len(micro), s.recipe.AccumFreq)
	}
	size := s.modelCfg.VisionCfg.ImageSize
	ctxLen := s.modelCfg.TextCfg.ContextLength
	for i, m := range micro {
		if m.Size != micro[0].Size || len(m.Pixels) != m.Size*3*size*size || len(m.Tokens) != m.Size*ctxLen {
			return StepStats{}, fmt.Errorf("train step: micro-batch %d: %d pairs need %d pixels and %d tokens (and all micro-batches one size), got %d and %d",
				i, m.Size, m.Size*3*size*size, m.Size*ctxLen, len(m.Pixels), len(m.Tokens))
		}
	}
	t := float64(s.Step + 1)
	bc1 := float32(1 - math.Pow(s.recipe.AdamW.Beta1, t))
	bc2 := float32(1 - math.Pow(s.recipe.AdamW.Beta2, t))
	stats := StepStats{LR: lr}
	var outputs []*tensors.Tensor
	var err error
	if s.fused != nil {
		var shards [][]any
		if shards, err = s.stepInputs(micro, dev, 0); err == nil {
			outputs, err = s.dp.call(s.fused, s.dp.args(shards, float32(lr), bc1, bc2))
			finalizeShards(shards)
		}
		if err != nil {
			return StepStats{}, fmt.Errorf("train step %d: %w", s.Step+1, err)
		}
		stats.Loss, stats.GradNorm, stats.LogitScale = scalar(outputs[0]), scalar(outputs[1]), scalar(outputs[2])
	} else {
		if stats.Loss, err = s.accumulate(micro, dev); err != nil {
			return StepStats{}, fmt.Errorf("train step %d: %w", s.Step+1, err)
		}
		if outputs, err = s.dp.call(s.apply, s.dp.args(nil, float32(lr), bc1, bc2)); err != nil {
			return StepStats{}, fmt.Errorf("train step %d: %w", s.Step+1, err)
		}
		stats.GradNorm, stats.LogitScale = scalar(outputs[0]), scalar(outputs[1])
	}
	s.Step++
	stats.Duration = time.Since(start)
	return stats, nil
}

// accumulate caches every micro-batch's features, then adds each
// micro-batch's gradient (against the whole cache) to the accumulators.
func (s *Stepper) accumulate(micro []MicroBatch, dev []deviceBatch) (float64, error) {
	embed := s.modelCfg.EmbedDim
	b := micro[0].Size
	n := b * len(micro)
	inputs := make([][][]any, len(micro))
	defer func() {
		for _, in := range inputs {
			finalizeShards(in)
		}
	}()
	cachedImg := make([]float32, 0, n*embed)
	cachedTxt := make([]float32, 0, n*embed)
	for i := range micro {
		var err error
		if inputs[i], err = s.stepInputs(micro, dev, i); err != nil {
			return 0, err
		}
		out, err := s.dp.call(s.features, s.dp.args(inputs[i]))
		if err != nil {
			return 0, err
		}
		cachedImg = append(cachedImg, tensors.MustCopyFlatData[float32](out[0])...)
		cachedTxt = append(cachedTxt, tensors.MustCopyFlatData[float32](out[1])...)
		finalize(out)
	}
	var loss float64
	for j := range micro {
		img, txt := zeroSlot(cachedImg, j, b, embed), zeroSlot(cachedTxt, j, b, embed)
		placement := make([]float32, n*b)
		for r := 0; r < b; r++ {
			placement[(j*b+r)*b+r] = 1
		}
		out, err := s.dp.call(s.accum, s.dp.args(inputs[j],
			replicatedArray{img, []int{n, embed}}, replicatedArray{txt, []int{n, embed}}, replicatedArray{placement, []int{n, b}}))
		if err != nil {
			return 0, err
		}
		if j == 0 {
			loss = scalar(out[0])
		} else {
			finalize(out)
		}
	}
	return loss, nil
}

// deviceTensor makes a tensor of dims on one of backend's devices from
// data, which must have exactly that many elements. The flat slice goes
// straight into a backend buffer (one copy, or one host-to-device
// transfer): a tensor built from a Go slice first copies it into a new
// zeroed host tensor and then copies that again to the device, 154 MB each
// way per ViT-B-16 batch of 256. Callers finalize it after the step, so the
// device memory is freed at once rather than when Go's collector, which
// does not see it, gets round to it.
func deviceTensor[T float32 | int32](backend compute.Backend, device compute.DeviceNum, data []T, dims ...int) (*tensors.Tensor, error) {
	shape := shapes.Make(dtypes.FromGenericsType[T](), dims...)
	if len(data) != shape.Size() || len(data) == 0 {
		return nil, fmt.Errorf("input %s needs %d values, got %d", shape, shape.Size(), len(data))
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(data))), len(data)*int(unsafe.Sizeof(data[0])))
	t, err := tensors.FromRaw(backend, device, shape, raw)
	if err != nil {
		return nil, fmt.Errorf("input %s: %w", shape, err)
	}
	return t, nil
}

func zeroSlot(features []float32, slot, batch, embed int) []float32 {
	out := append([]float32(nil), features...)
	clear(out[slot*batch*embed : (slot+1)*batch*embed])
	return out
}

func scalar(t *tensors.Tensor) float64 {
	v := float64(tensors.MustCopyFlatData[float32](t)[0])
	t.FinalizeAll()
	return v
}

func finalize(ts []*tensors.Tensor) {
	for _, t := range ts {
		t.FinalizeAll()
	}
}

// Store is the GoMLX store with the model's (and optimiser's) variables.
func (s *Stepper) Store() *model.Store { return s.store }

// StateDict copies the model's weights out in OpenCLIP layout.
func (s *Stepper) StateDict() (weights.StateDict, error) {
	return clip.StateDictFromStore(s.store, s.modelCfg)
}

// OptimizerState copies AdamW's moments out, named exp_avg.<param> and
// exp_avg_sq.<param> (only trained parameters have them).
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

// Finalize releases the compiled graphs.
func (s *Stepper) Finalize() {
	for _, e := range []*model.Exec{s.fused, s.features, s.accum, s.apply} {
		if e != nil {
			e.Finalize()
		}
	}
}
