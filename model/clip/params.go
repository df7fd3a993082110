package clip

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/bmca/bmca/model/hftext"
	"github.com/bmca/bmca/model/textenc"
	"github.com/bmca/bmca/model/timmvit"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/vit"
	"github.com/bmca/bmca/model/weights"
)

// LogitScaleName is the state-dict name of the temperature parameter.
const LogitScaleName = "logit_scale"

// Params lists every state-dict entry of the model, with OpenCLIP's names,
// shapes and initialisation, in the order OpenCLIP's state dict has them.
// It is the checkpoint layout. c must be valid (Validate).
func Params(c Config) []transformer.ParamSpec {
	logitScale := transformer.ParamSpec{Name: LogitScaleName, Shape: []int{}, Init: transformer.InitConstant, Value: c.LogitScaleInit()}
	if c.TextCfg.IsHF() { // CustomTextCLIP: logit_scale, visual.*, text.*
		out := append([]transformer.ParamSpec{logitScale}, visualParams(c)...)
		return append(out, hftext.Params("text", mustHF(c))...)
	}
	text := textenc.Params(c.TextCfg.Config, c.EmbedDim)
	out := append(text[:2:2], logitScale) // positional_embedding, text_projection, logit_scale
	out = append(out, visualParams(c)...)
	return append(out, text[2:]...)
}

// visualParams lists the image tower's entries under "visual".
func visualParams(c Config) []transformer.ParamSpec {
	if c.VisionCfg.IsTimm() {
		return timmvit.Params("visual", mustTimm(c))
	}
	return vit.Params("visual", c.VisionCfg.Config, c.EmbedDim)
}

// NumParams counts the model's scalar parameters (logit_scale included, as
// OpenCLIP's counts do).
func NumParams(c Config) int {
	n := 0
	for _, p := range Params(c) {
		n += p.NumElements()
	}
	return n
}

// Init draws a fresh model from seed with OpenCLIP's initialisation. The
// same seed always gives the same weights.
func Init(c Config, seed uint64) weights.StateDict {
	rng := rand.New(rand.NewPCG(seed, 0x62_6d_63_61)) // "bmca"
	sd := make(weights.StateDict)
	for _, p := range Params(c) {
		sd[p.Name] = InitTensor(p, rng)
	}
	return sd
}

// InitTensor draws one parameter as its spec says (normal, ones, zeros or
// a constant) from rng.
func InitTensor(p transformer.ParamSpec, rng *rand.Rand) weights.Tensor {
	v := make([]float32, p.NumElements())
	switch p.Init {
	case transformer.InitNormal:
		for i := range v {
			v[i] = float32(rng.NormFloat64() * p.Std)
		}
	case transformer.InitOnes:
		for i := range v {
			v[i] = 1
		}
	case transformer.InitConstant:
		for i := range v {
			v[i] = float32(p.Value)
		}
	}
	return weights.FromFloat32s(p.Shape, v)
}

// CheckStateDict compares a state dict with the layout of c, as PyTorch's
// load_state_dict(strict=True) does, and reports every missing, unexpected
// and mis-shaped tensor in one error.
func CheckStateDict(c Config, sd weights.StateDict) error {
	var missing, unexpected, misshaped []string
	want := make(map[string]bool)
	for _, p := range Params(c) {
		want[p.Name] = true
		t, ok := sd[p.Name]
		if !ok {
			missing = append(missing, p.Name)
			continue
		}
		if !slices.Equal(t.Shape, p.Shape) {
			misshaped = append(misshaped, fmt.Sprintf("%s: checkpoint %v, model %v", p.Name, t.Shape, p.Shape))
		}
	}
	for name := range sd {
		if !want[name] {
			unexpected = append(unexpected, name)
		}
	}
	if len(missing)+len(unexpected)+len(misshaped) == 0 {
		return nil
	}
	sort.Strings(unexpected)
	var b strings.Builder
	b.WriteString("state dict does not match the model config")
	for _, part := range []struct {
		label string
		names []string
	}{{"missing", missing}, {"unexpected", unexpected}, {"size mismatch", misshaped}} {
		if len(part.names) > 0 {
			fmt.Fprintf(&b, "\n  %s (%d): %s", part.label, len(part.names), strings.Join(part.names, ", "))
		}
	}
	return fmt.Errorf("%s", b.String())
}

// NoWeightDecay reports whether OpenCLIP excludes a parameter from weight
// decay: every tensor of rank ≤ 1 (gains, biases, logit_scale,
// class_embedding) plus the positional embeddings (OpenCLIP's
// no_weight_decay()). A timm tower's pos_embed and cls_token are decayed:
// open_clip 2.32.0's TimmModel has no no_weight_decay(), so
// CustomTextCLIP's finds nothing there.
func NoWeightDecay(p transformer.ParamSpec) bool {
	if len(p.Shape) <= 1 {
		return true
	}
	switch p.Name {
	case "positional_embedding", "visual.positional_embedding", "visual.class_embedding":
		return true
	}
	return false
}
