package train

import (
	"fmt"
	"strings"

	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
)

// DecayRule is the rule by which AdamW's weight decay skips parameters.
// OpenCLIP changed it between versions, and a run that continues another's
// training must use the rule that run used.
type DecayRule string

const (
	// DecayOpenCLIP4 is open_clip 4.x: no decay for tensors of rank ≤ 1
	// and the model's no_weight_decay() names (positional_embedding,
	// visual.positional_embedding, visual.class_embedding). The default
	// (also when empty).
	DecayOpenCLIP4 DecayRule = "openclip4"
	// DecayOpenCLIP2 is open_clip 2.x and 3.x (the fork BMC-CLIP was trained
	// with): no decay for tensors of rank < 2 and names containing "bn",
	// "ln", "bias" or "logit_scale", so both positional embeddings are
	// decayed.
	DecayOpenCLIP2 DecayRule = "openclip2"
)

// DecayRules lists the rules, for help texts and errors.
var DecayRules = []DecayRule{DecayOpenCLIP2, DecayOpenCLIP4}

// ParseDecayRule checks a rule's name ("" is the default, openclip4).
func ParseDecayRule(s string) (DecayRule, error) {
	switch r := DecayRule(s); r {
	case "":
		return DecayOpenCLIP4, nil
	case DecayOpenCLIP2, DecayOpenCLIP4:
		return r, nil
	}
	return "", fmt.Errorf("%q is not one of %s, %s", s, DecayOpenCLIP2, DecayOpenCLIP4)
}

// Decays reports whether the rule puts p in AdamW's decayed group.
func (r DecayRule) Decays(p transformer.ParamSpec) bool {
	if r == DecayOpenCLIP2 {
		// open_clip 2.x main.py: exclude = p.ndim < 2 or "bn" in n or "ln"
		// in n or "bias" in n or "logit_scale" in n.
		if len(p.Shape) < 2 {
			return false
		}
		for _, s := range []string{"bn", "ln", "bias", "logit_scale"} {
			if strings.Contains(p.Name, s) {
				return false
			}
		}
		return true
	}
	return !clip.NoWeightDecay(p)
}

// String is the rule's config name.
func (r DecayRule) String() string {
	if r == "" {
		return string(DecayOpenCLIP4)
	}
	return string(r)
}

// trainedSpec is one parameter the recipe trains, and whether AdamW decays it.
type trainedSpec struct {
	spec  transformer.ParamSpec
	decay bool
}

// trainedSpecs lists the parameters the recipe trains (all but a locked
// image tower), in checkpoint order, with their decay group. NewStepper
// builds the optimiser from it and DecayedParams counts from it, so the
// start line describes the update that runs.
func trainedSpecs(c clip.Config, r Recipe) []trainedSpec {
	var out []trainedSpec
	for _, spec := range clip.Params(c) {
		if r.LockImage && strings.HasPrefix(spec.Name, "visual.") {
			continue
		}
		out = append(out, trainedSpec{spec: spec, decay: r.AdamW.WeightDecay > 0 && r.AdamW.DecayRule.Decays(spec)})
	}
	return out
}

// DecayCount says what weight decay applies to.
type DecayCount struct {
	// Tensors and Params are the decayed parameter tensors and their scalars.
	Tensors, Params int
	// TrainedTensors and TrainedParams are all trained ones.
	TrainedTensors, TrainedParams int
}

// DecayedParams counts the tensors and scalar parameters the recipe's AdamW
// decays (none when the weight decay is 0), out of those it trains.
func DecayedParams(c clip.Config, r Recipe) DecayCount {
	var n DecayCount
	for _, t := range trainedSpecs(c, r) {
		n.TrainedTensors++
		n.TrainedParams += t.spec.NumElements()
		if t.decay {
			n.Tensors++
			n.Params += t.spec.NumElements()
		}
	}
	return n
}
