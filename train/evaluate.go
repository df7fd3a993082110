package train

import (
	"context"
	"fmt"

	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/ml/model"
)

// evaluator runs Hooks.Evaluate on the weights being trained. Its encoder
// reads the training store directly and computes in the run's precision
// (modelCfg.Runtime): OpenCLIP's evaluate and zero_shot_eval run under the
// training autocast, and a tf32 run's backend computes every float32
// product in TF32 anyway, so an f32 evaluation inside it could not be had.
// The inference graphs are compiled at the first evaluation.
type evaluator struct {
	backend  compute.Backend
	store    *model.Store
	modelCfg clip.Config
	hook     func(ctx context.Context, step int, enc *clip.Encoder) (map[string]float64, error)
	enc      *clip.Encoder
}

// run evaluates at step; ran is false when the run has no evaluation.
func (e *evaluator) run(ctx context.Context, step int) (metrics map[string]float64, ran bool, err error) {
	if e.hook == nil {
		return nil, false, nil
	}
	if e.enc == nil {
		if e.enc, err = clip.NewEncoder(e.backend, e.store, e.modelCfg); err != nil {
			return nil, false, err
		}
	}
	m, err := e.hook(ctx, step, e.enc)
	if err != nil {
		return nil, false, fmt.Errorf("evaluation at step %d: %w", step, err)
	}
	return m, true, nil
}

// precision is the arithmetic the evaluations compute in.
func (e *evaluator) precision() transformer.Precision { return e.modelCfg.Precision }

// close releases the encoder's graphs.
func (e *evaluator) close() {
	if e.enc != nil {
		e.enc.Finalize()
	}
}
