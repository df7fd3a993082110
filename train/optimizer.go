package train

import (
	"fmt"

	"github.com/bmca/bmca/model/transformer"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/model"
)

// AdamW holds the recipe's optimiser hyperparameters (torch.optim.AdamW
// semantics). Its YAML keys are those of a run config's train section.
type AdamW struct {
	// Beta1 is the first-moment decay (OpenCLIP's --beta1).
	Beta1 float64 `yaml:"beta1"`
	// Beta2 is the second-moment decay (OpenCLIP's --beta2).
	Beta2 float64 `yaml:"beta2"`
	// Eps is the denominator's epsilon (OpenCLIP's --eps).
	Eps float64 `yaml:"eps"`
	// WeightDecay is the decoupled weight decay (OpenCLIP's --wd), applied
	// to the parameters DecayRule leaves in the decayed group.
	WeightDecay float64 `yaml:"weight_decay"`
	// DecayRule picks the parameters WeightDecay applies to, a rule
	// OpenCLIP changed between versions (empty: openclip4). A run that
	// continues another's training uses that run's rule.
	DecayRule DecayRule `yaml:"wd_exclude"`
	// ClipNorm clips the global L2 norm of all gradients first (0 = off),
	// as torch.nn.utils.clip_grad_norm_ does (OpenCLIP's --grad-clip-norm).
	ClipNorm float64 `yaml:"grad_clip_norm"`
}

// Validate reports a hyperparameter out of range, naming it by its YAML key.
func (o AdamW) Validate() error {
	switch {
	case !(o.Beta1 >= 0 && o.Beta1 < 1):
		return fmt.Errorf("beta1: must be in [0,1), got %g", o.Beta1)
	case !(o.Beta2 >= 0 && o.Beta2 < 1):
		return fmt.Errorf("beta2: must be in [0,1), got %g", o.Beta2)
	case !(o.Eps > 0):
		return fmt.Errorf("eps: must be positive, got %g", o.Eps)
	case !(o.WeightDecay >= 0):
		return fmt.Errorf("weight_decay: must be ≥ 0, got %g", o.WeightDecay)
	case !(o.ClipNorm >= 0):
		return fmt.Errorf("grad_clip_norm: must be ≥ 0 (0 = off), got %g", o.ClipNorm)
	}
	if _, err := ParseDecayRule(string(o.DecayRule)); err != nil {
		return fmt.Errorf("wd_exclude: %w", err)
	}
	return nil
}

// Optimizer-state variables live under these scopes, named like the
// parameter they belong to, so they can be saved next to the weights.
const (
	expAvgScope   = "/optimizer/exp_avg"
	expAvgSqScope = "/optimizer/exp_avg_sq"
)

// trainedParam is one parameter with its optimiser state.
type trainedParam struct {
	spec          transformer.ParamSpec
	param         *model.Variable
	expAvg, expSq *model.Variable
	// gradAcc sums micro-batch gradients when accumulating.
	gradAcc *model.Variable
	decay   bool
}

// stepHyper are the per-step scalars computed in Go so the schedule and the
// bias corrections are exact float64 arithmetic, not graph state.
type stepHyper struct {
	lr, biasCorrection1, biasCorrection2 *Node
}

// update builds one AdamW step over all params and returns the global
// gradient norm before clipping.
func (o AdamW) update(params []trainedParam, grads []*Node, h stepHyper) *Node {
	g := grads[0].Graph()
	var sumSquares *Node
	for _, gr := range grads {
		s := ReduceAllSum(Square(gr))
		if sumSquares == nil {
			sumSquares = s
		} else {
			sumSquares = Add(sumSquares, s)
		}
	}
	norm := Sqrt(sumSquares)
	if o.ClipNorm > 0 {
		// torch: coef = max_norm / (norm + 1e-6), applied only when < 1.
		coef := Div(Scalar(g, norm.DType(), o.ClipNorm), AddScalar(norm, 1e-6))
		coef = Min(coef, ScalarOne(g, norm.DType()))
		for i := range grads {
			grads[i] = Mul(grads[i], coef)
		}
	}
	stepSize := Div(h.lr, h.biasCorrection1)
	sqrtBC2 := Sqrt(h.biasCorrection2)
	for i, p := range params {
		grad := grads[i]
		value := p.param.NodeValue(g)
		if p.decay && o.WeightDecay > 0 {
			value = Mul(value, OneMinus(MulScalar(h.lr, o.WeightDecay)))
		}
		m := Add(MulScalar(p.expAvg.NodeValue(g), o.Beta1), MulScalar(grad, 1-o.Beta1))
		v := Add(MulScalar(p.expSq.NodeValue(g), o.Beta2), MulScalar(Square(grad), 1-o.Beta2))
		denom := AddScalar(Div(Sqrt(v), sqrtBC2), o.Eps)
		value = Sub(value, Mul(stepSize, Div(m, denom)))
		p.expAvg.SetNodeValue(m)
		p.expSq.SetNodeValue(v)
		p.param.SetNodeValue(value)
	}
	return norm
}
