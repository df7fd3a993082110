// Package hf maps between Hugging Face transformers' CLIPModel checkpoints
// and OpenCLIP's state dict: tensor names, the split q/k/v projections,
// the transposed projection matrices, and the config.json fields that shape
// the model.
//
// transformers' CLIPModel names its tensors vision_model.* and text_model.*
// (modeling_clip.py), keeps separate q_proj/k_proj/v_proj where OpenCLIP
// packs attn.in_proj_weight, and stores visual_projection.weight and
// text_projection.weight as nn.Linear weights [embed_dim, width], the
// transpose of OpenCLIP's visual.proj and text_projection [width,
// embed_dim]. Everything else is a rename; the arithmetic of the two models
// is the same (transformers' own convert_clip_original_pytorch_to_hf.py
// does this mapping in the other direction).
//
//	r, _ := hf.RuleFor("visual.transformer.resblocks.0.attn.in_proj_weight")
//	// r.Sources = [vision_model.encoder.layers.0.self_attn.{q,k,v}_proj.weight], r.Op = hf.ConcatRows
//	hfsd, _ := hf.FromOpenCLIP(sd)  // a CLIPModel state dict
package hf

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bmca/bmca/model/weights"
)

// Op says how an OpenCLIP tensor is made from its Hugging Face sources.
type Op int

const (
	// Copy: the single source is the tensor, unchanged.
	Copy Op = iota
	// Transpose: the single source is the 2-D transpose of the tensor.
	Transpose
	// ConcatRows: the tensor is the three sources (q, k, v) stacked along
	// the first axis, as nn.MultiheadAttention packs in_proj.
	ConcatRows
)

// Rule says which Hugging Face tensors hold one OpenCLIP tensor.
type Rule struct {
	// OpenCLIP is the OpenCLIP state-dict name.
	OpenCLIP string
	// Sources are the transformers CLIPModel names, in order.
	Sources []string
	// Op combines the sources.
	Op Op
}

// Ignored lists tensors transformers checkpoints may hold that are not
// parameters: the position_ids buffers, persistent in transformers before
// 4.31 and dropped by its own loader since.
var Ignored = []string{
	"text_model.embeddings.position_ids",
	"vision_model.embeddings.position_ids",
}

// IsHFName reports whether name belongs to a transformers CLIPModel.
func IsHFName(name string) bool {
	return strings.HasPrefix(name, "vision_model.") || strings.HasPrefix(name, "text_model.") ||
		name == "visual_projection.weight" || name == "text_projection.weight"
}

// RuleFor returns the rule for an OpenCLIP CLIP state-dict name; an error
// for names outside the classic CLIP (ViT image tower, transformer text
// tower) this package maps.
func RuleFor(name string) (Rule, error) {
	r := Rule{OpenCLIP: name}
	one := func(src string, op Op) (Rule, error) {
		r.Sources, r.Op = []string{src}, op
		return r, nil
	}
	switch name {
	case "logit_scale":
		return one("logit_scale", Copy)
	case "text_projection":
		return one("text_projection.weight", Transpose)
	case "visual.proj":
		return one("visual_projection.weight", Transpose)
	case "positional_embedding":
		return one("text_model.embeddings.position_embedding.weight", Copy)
	case "token_embedding.weight":
		return one("text_model.embeddings.token_embedding.weight", Copy)
	case "visual.class_embedding":
		return one("vision_model.embeddings.class_embedding", Copy)
	case "visual.positional_embedding":
		return one("vision_model.embeddings.position_embedding.weight", Copy)
	case "visual.conv1.weight":
		return one("vision_model.embeddings.patch_embedding.weight", Copy)
	}
	for _, p := range []struct{ ours, theirs string }{
		{"ln_final.", "text_model.final_layer_norm."},
		{"visual.ln_pre.", "vision_model.pre_layrnorm."}, // sic: transformers' spelling
		{"visual.ln_post.", "vision_model.post_layernorm."},
	} {
		if rest, ok := strings.CutPrefix(name, p.ours); ok && (rest == "weight" || rest == "bias") {
			return one(p.theirs+rest, Copy)
		}
	}
	for _, p := range []struct{ ours, theirs string }{
		{"visual.transformer.resblocks.", "vision_model.encoder.layers."},
		{"transformer.resblocks.", "text_model.encoder.layers."},
	} {
		rest, ok := strings.CutPrefix(name, p.ours)
		if !ok {
			continue
		}
		layer, param, ok := strings.Cut(rest, ".")
		if !ok || !isIndex(layer) {
			break
		}
		prefix := p.theirs + layer + "."
		switch param {
		case "attn.in_proj_weight", "attn.in_proj_bias":
			kind := strings.TrimPrefix(param, "attn.in_proj_")
			r.Op = ConcatRows
			for _, qkv := range []string{"q", "k", "v"} {
				r.Sources = append(r.Sources, prefix+"self_attn."+qkv+"_proj."+kind)
			}
			return r, nil
		}
		for _, m := range []struct{ ours, theirs string }{
			{"ln_1.", "layer_norm1."},
			{"ln_2.", "layer_norm2."},
			{"attn.out_proj.", "self_attn.out_proj."},
			{"mlp.c_fc.", "mlp.fc1."},
			{"mlp.c_proj.", "mlp.fc2."},
		} {
			if kind, ok := strings.CutPrefix(param, m.ours); ok && (kind == "weight" || kind == "bias") {
				return one(prefix+m.theirs+kind, Copy)
			}
		}
	}
	return Rule{}, fmt.Errorf("hf: OpenCLIP tensor %q has no transformers CLIPModel counterpart", name)
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Shape is the OpenCLIP shape the rule produces from sources of the given
// shapes, or an error naming the mismatch.
func (r Rule) Shape(sources [][]int) ([]int, error) {
	if len(sources) != len(r.Sources) {
		return nil, fmt.Errorf("hf: %s needs %d sources, got %d", r.OpenCLIP, len(r.Sources), len(sources))
	}
	switch r.Op {
	case Transpose:
		s := sources[0]
		if len(s) != 2 {
			return nil, fmt.Errorf("%s has shape %v, a matrix is needed", r.Sources[0], s)
		}
		return []int{s[1], s[0]}, nil
	case ConcatRows:
		first := sources[0]
		for i, s := range sources {
			if len(s) == 0 || !slices.Equal(s[1:], first[1:]) || s[0] != first[0] {
				return nil, fmt.Errorf("%s has shape %v, %s has %v; q, k and v must match", r.Sources[i], s, r.Sources[0], first)
			}
		}
		return append([]int{3 * first[0]}, first[1:]...), nil
	}
	return append([]int(nil), sources[0]...), nil
}

// Apply builds the OpenCLIP tensor from its sources (same dtype).
func (r Rule) Apply(sources []weights.Tensor) (weights.Tensor, error) {
	shapes := make([][]int, len(sources))
	for i, s := range sources {
		shapes[i] = s.Shape
		if s.DType != sources[0].DType {
			return weights.Tensor{}, fmt.Errorf("hf: %s is %s but %s is %s", r.Sources[i], s.DType, r.Sources[0], sources[0].DType)
		}
	}
	shape, err := r.Shape(shapes)
	if err != nil {
		return weights.Tensor{}, fmt.Errorf("hf: %w", err)
	}
	switch r.Op {
	case Transpose:
		return transpose(sources[0]), nil
	case ConcatRows:
		data := make([]byte, 0, 3*len(sources[0].Data))
		for _, s := range sources {
			data = append(data, s.Data...)
		}
		return weights.Tensor{DType: sources[0].DType, Shape: shape, Data: data}, nil
	}
	return sources[0], nil
}

// Invert splits an OpenCLIP tensor into the rule's sources. Split rows
// share t's data rather than copying it.
func (r Rule) Invert(t weights.Tensor) ([]weights.Tensor, error) {
	switch r.Op {
	case Transpose:
		if len(t.Shape) != 2 {
			return nil, fmt.Errorf("hf: %s has shape %v, a matrix is needed", r.OpenCLIP, t.Shape)
		}
		return []weights.Tensor{transpose(t)}, nil
	case ConcatRows:
		if len(t.Shape) == 0 || t.Shape[0]%3 != 0 {
			return nil, fmt.Errorf("hf: %s has shape %v, whose first axis does not split into q, k, v", r.OpenCLIP, t.Shape)
		}
		shape := append([]int{t.Shape[0] / 3}, t.Shape[1:]...)
		n := len(t.Data) / 3
		out := make([]weights.Tensor, 3)
		for i := range out {
			out[i] = weights.Tensor{DType: t.DType, Shape: shape, Data: t.Data[i*n : (i+1)*n : (i+1)*n]}
		}
		return out, nil
	}
	return []weights.Tensor{t}, nil
}

// transpose swaps the two axes of a matrix, whatever its element size.
func transpose(t weights.Tensor) weights.Tensor {
	rows, cols, size := t.Shape[0], t.Shape[1], t.DType.Size()
	data := make([]byte, len(t.Data))
	for i := range rows {
		for j := range cols {
			copy(data[(j*rows+i)*size:(j*rows+i+1)*size], t.Data[(i*cols+j)*size:(i*cols+j+1)*size])
		}
	}
	return weights.Tensor{DType: t.DType, Shape: []int{cols, rows}, Data: data}
}

// FromOpenCLIP converts an OpenCLIP state dict to a CLIPModel one. The
// result shares data with sd wherever no transpose is needed, so it costs
// almost no memory; every name of sd must have a rule.
func FromOpenCLIP(sd weights.StateDict) (weights.StateDict, error) {
	out := make(weights.StateDict, len(sd))
	for _, name := range sd.Names() {
		r, err := RuleFor(name)
		if err != nil {
			return nil, err
		}
		parts, err := r.Invert(sd[name])
		if err != nil {
			return nil, err
		}
		for i, src := range r.Sources {
			out[src] = parts[i]
		}
	}
	return out, nil
}
