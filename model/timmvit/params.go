package timmvit

import (
	"fmt"
	"math"

	"github.com/bmca/bmca/model/transformer"
)

// Params lists the tower's state-dict entries under prefix (normally
// "visual") in timm's registration order, initialised as timm's
// init_weights_vit_timm does (truncated normals as plain normals of the
// same scale): matrices and the position embedding N(0, 0.02²), the class
// token N(0, 1e-12), biases zero, LayerNorm gains one; OpenCLIP's head
// Linears keep torch's default (kaiming-uniform, as the normal of equal
// variance).
func Params(prefix string, t Tower) []transformer.ParamSpec {
	w, e, ps := t.Width, t.EmbedDim, t.PatchSize
	tr := prefix + ".trunk."
	normal := func(name string, std float64, shape ...int) transformer.ParamSpec {
		return transformer.ParamSpec{Name: name, Shape: shape, Init: transformer.InitNormal, Std: std}
	}
	zeros := func(name string, n int) transformer.ParamSpec {
		return transformer.ParamSpec{Name: name, Shape: []int{n}, Init: transformer.InitZeros}
	}
	linear := func(name string, out, in int) []transformer.ParamSpec {
		return []transformer.ParamSpec{normal(name+".weight", 0.02, out, in), zeros(name+".bias", out)}
	}
	out := []transformer.ParamSpec{
		normal(tr+"cls_token", 1e-6, 1, 1, w),
		normal(tr+"pos_embed", 0.02, 1, t.Tokens(), w),
		normal(tr+"patch_embed.proj.weight", fanIn(3*ps*ps), w, 3, ps, ps),
		zeros(tr+"patch_embed.proj.bias", w),
	}
	for i := range t.Depth {
		b := fmt.Sprintf("%sblocks.%d.", tr, i)
		out = append(out, transformer.LayerNormParams(b+"norm1", w)...)
		out = append(out, linear(b+"attn.qkv", 3*w, w)...)
		out = append(out, linear(b+"attn.proj", w, w)...)
		out = append(out, transformer.LayerNormParams(b+"norm2", w)...)
		out = append(out, linear(b+"mlp.fc1", t.MLPWidth(), w)...)
		out = append(out, linear(b+"mlp.fc2", w, t.MLPWidth())...)
	}
	if t.FCNorm {
		out = append(out, transformer.LayerNormParams(tr+"fc_norm", w)...)
	} else {
		out = append(out, transformer.LayerNormParams(tr+"norm", w)...)
	}
	head := prefix + ".head."
	switch t.Head {
	case HeadTrunk:
		out = append(out, linear(tr+"head", e, w)...)
	case HeadLinear:
		out = append(out, normal(head+"proj.weight", fanIn(w), e, w))
		if t.ProjBias {
			out = append(out, zeros(head+"proj.bias", e))
		}
	case HeadMLP:
		out = append(out, normal(head+"mlp.fc1.weight", fanIn(w), 2*e, w), zeros(head+"mlp.fc1.bias", 2*e),
			normal(head+"mlp.fc2.weight", fanIn(2*e), e, 2*e))
		if t.ProjBias {
			out = append(out, zeros(head+"mlp.fc2.bias", e))
		}
	}
	return out
}

// fanIn is the standard deviation of torch's default Linear/Conv2d
// initialisation, uniform(±1/√fan_in), which is 1/√(3·fan_in).
func fanIn(n int) float64 { return 1 / math.Sqrt(3*float64(n)) }
