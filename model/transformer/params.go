package transformer

import (
	"fmt"
	"math"
)

// Init says how OpenCLIP initialises a parameter.
type Init int

const (
	// InitNormal draws from N(0, Std²).
	InitNormal Init = iota
	// InitZeros sets every element to 0 (biases).
	InitZeros
	// InitOnes sets every element to 1 (LayerNorm gains).
	InitOnes
	// InitConstant sets every element to Value (logit_scale).
	InitConstant
)

// ParamSpec describes one state-dict entry: its OpenCLIP name, shape and
// initialisation. The list of specs is the model's checkpoint API.
type ParamSpec struct {
	Name  string
	Shape []int
	Init  Init
	Std   float64
	Value float64
}

// NumElements is the product of the shape (1 for a scalar).
func (p ParamSpec) NumElements() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// Std gives the standard deviations OpenCLIP uses for a stack's weights.
// The text tower uses an explicit scheme (init_parameters); the vision tower
// keeps PyTorch defaults, which Params approximates with the same scheme
// because OpenAI defined no ViT initialisation either.
type Std struct {
	Attn, OutProj, FC, Proj float64
}

// DefaultStd is OpenCLIP's text-tower initialisation for a given stack.
func DefaultStd(c Config) Std {
	w := float64(c.Width)
	projStd := math.Pow(w, -0.5) * math.Pow(2*float64(max(c.Layers, 1)), -0.5)
	return Std{
		Attn:    math.Pow(w, -0.5),
		OutProj: projStd,
		FC:      math.Pow(2*w, -0.5),
		Proj:    projStd,
	}
}

// Params lists the state-dict entries of a stack rooted at prefix
// (for example "visual.transformer"), in OpenCLIP's registration order.
func Params(prefix string, c Config, std Std) []ParamSpec {
	w, h := c.Width, c.MLPWidth()
	var out []ParamSpec
	for i := 0; i < c.Layers; i++ {
		p := fmt.Sprintf("%s.resblocks.%d.", prefix, i)
		out = append(out,
			ParamSpec{Name: p + "ln_1.weight", Shape: []int{w}, Init: InitOnes},
			ParamSpec{Name: p + "ln_1.bias", Shape: []int{w}, Init: InitZeros},
			ParamSpec{Name: p + "attn.in_proj_weight", Shape: []int{3 * w, w}, Init: InitNormal, Std: std.Attn},
			ParamSpec{Name: p + "attn.in_proj_bias", Shape: []int{3 * w}, Init: InitZeros},
			ParamSpec{Name: p + "attn.out_proj.weight", Shape: []int{w, w}, Init: InitNormal, Std: std.OutProj},
			ParamSpec{Name: p + "attn.out_proj.bias", Shape: []int{w}, Init: InitZeros},
			ParamSpec{Name: p + "ln_2.weight", Shape: []int{w}, Init: InitOnes},
			ParamSpec{Name: p + "ln_2.bias", Shape: []int{w}, Init: InitZeros},
			ParamSpec{Name: p + "mlp.c_fc.weight", Shape: []int{h, w}, Init: InitNormal, Std: std.FC},
			ParamSpec{Name: p + "mlp.c_fc.bias", Shape: []int{h}, Init: InitZeros},
			ParamSpec{Name: p + "mlp.c_proj.weight", Shape: []int{w, h}, Init: InitNormal, Std: std.Proj},
			ParamSpec{Name: p + "mlp.c_proj.bias", Shape: []int{w}, Init: InitZeros},
		)
	}
	return out
}

// LayerNormParams lists the two entries of a LayerNorm called name.
func LayerNormParams(name string, width int) []ParamSpec {
	return []ParamSpec{
		{Name: name + ".weight", Shape: []int{width}, Init: InitOnes},
		{Name: name + ".bias", Shape: []int{width}, Init: InitZeros},
	}
}
