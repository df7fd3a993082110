// Package merge interpolates CLIP weights: the weight-space ensembles of
// WiSE-FT (Wortsman et al., CVPR 2022), θ = (1−α)·θ_base + α·θ_other, which
// BIOMEDICA's best models are (the continued model mixed with its starting
// point). It works on state dicts with OpenCLIP names and knows nothing of
// files.
//
//	if diffs := merge.ConfigDiff(base.Config, other.Config); len(diffs) > 0 { … refuse … }
//	mixed, err := merge.Interpolate(baseWeights, otherWeights, 0.5)
package merge

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/weights"
)

// ErrMismatch is wrapped by Interpolate's error when the two state dicts
// are not of one architecture.
var ErrMismatch = errors.New("the models differ in architecture")

// ConfigDiff lists where two model configs differ, one "key: a ≠ b" per
// field (OpenCLIP's keys, dotted for the towers); empty when they are the
// same architecture.
func ConfigDiff(a, b clip.Config) []string {
	fa, fb := flatConfig(a), flatConfig(b)
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var out []string
	for _, k := range sortedKeys(keys) {
		va, oka := fa[k]
		vb, okb := fb[k]
		if !oka {
			va = "(unset)"
		}
		if !okb {
			vb = "(unset)"
		}
		if va != vb {
			out = append(out, fmt.Sprintf("%s: %s ≠ %s", k, va, vb))
		}
	}
	return out
}

// flatConfig writes c's JSON fields as dotted keys with JSON values.
func flatConfig(c clip.Config) map[string]string {
	data, err := json.Marshal(c)
	if err != nil {
		return map[string]string{"(config)": err.Error()}
	}
	var tree map[string]any
	if err := json.Unmarshal(data, &tree); err != nil {
		return map[string]string{"(config)": err.Error()}
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				walk(strings.TrimPrefix(prefix+"."+k, "."), x)
			}
			return
		}
		js, _ := json.Marshal(v)
		out[prefix] = string(js)
	}
	walk("", tree)
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TensorDiff lists where two state dicts differ in names, shapes or
// (integer tensors being copied, not interpolated) integer dtypes; empty
// when every tensor can be interpolated.
func TensorDiff(base, other weights.StateDict) []string {
	var out []string
	for _, name := range base.Names() {
		o, ok := other[name]
		b := base[name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: only in the base", name))
		case !slices.Equal(b.Shape, o.Shape):
			out = append(out, fmt.Sprintf("%s: shape %v ≠ %v", name, b.Shape, o.Shape))
		case isFloat(b.DType) != isFloat(o.DType):
			out = append(out, fmt.Sprintf("%s: dtype %s ≠ %s", name, b.DType, o.DType))
		}
	}
	for _, name := range other.Names() {
		if _, ok := base[name]; !ok {
			out = append(out, fmt.Sprintf("%s: only in the other model", name))
		}
	}
	return out
}

func isFloat(d weights.DType) bool {
	return d == weights.F32 || d == weights.F16 || d == weights.BF16 || d == weights.F64
}

// Interpolate returns (1−alpha)·base + alpha·other for every tensor, in the
// base's dtypes. Each element is computed in float64 and rounded once to
// float32 (then to F16/BF16 for such tensors), so alpha 0.5 of two float32
// tensors is their exact mean, correctly rounded; alpha 0 returns the base's tensors and alpha 1 the other's
// (converted to the base's dtype when it differs), bit for bit — also for
// −0.0, which the arithmetic would turn into +0.0. alpha outside [0, 1]
// extrapolates. Integer tensors (none in a CLIP model) must be equal and
// are copied. The state dicts must have the same names and shapes (see
// TensorDiff); the error wraps ErrMismatch and lists every difference.
func Interpolate(base, other weights.StateDict, alpha float64) (weights.StateDict, error) {
	if math.IsNaN(alpha) || math.IsInf(alpha, 0) {
		return nil, fmt.Errorf("merge: alpha %v is not a finite number", alpha)
	}
	if diffs := TensorDiff(base, other); len(diffs) > 0 {
		return nil, fmt.Errorf("merge: %w: %d tensors differ:\n  %s", ErrMismatch, len(diffs), strings.Join(diffs, "\n  "))
	}
	out := make(weights.StateDict, len(base))
	for _, name := range base.Names() {
		b, o := base[name], other[name]
		t, err := mix(b, o, alpha)
		if err != nil {
			return nil, fmt.Errorf("merge: %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// mix interpolates one tensor pair.
func mix(b, o weights.Tensor, alpha float64) (weights.Tensor, error) {
	if !isFloat(b.DType) {
		if b.DType != o.DType || !bytes.Equal(b.Data, o.Data) {
			return weights.Tensor{}, fmt.Errorf("%s tensors differ and integers are not interpolated", b.DType)
		}
		return clone(b), nil
	}
	switch alpha {
	case 0:
		return clone(b), nil
	case 1:
		t, err := o.To(b.DType)
		return clone(t), err
	}
	wb, err := b.To(weights.F64)
	if err != nil {
		return weights.Tensor{}, err
	}
	wo, err := o.To(weights.F64)
	if err != nil {
		return weights.Tensor{}, err
	}
	mixed := weights.Tensor{DType: weights.F64, Shape: slices.Clone(b.Shape), Data: make([]byte, len(wb.Data))}
	for i := 0; i < len(wb.Data); i += 8 {
		x := math.Float64frombits(binary.LittleEndian.Uint64(wb.Data[i:]))
		y := math.Float64frombits(binary.LittleEndian.Uint64(wo.Data[i:]))
		binary.LittleEndian.PutUint64(mixed.Data[i:], math.Float64bits((1-alpha)*x+alpha*y))
	}
	return mixed.To(b.DType)
}

func clone(t weights.Tensor) weights.Tensor {
	return weights.Tensor{DType: t.DType, Shape: slices.Clone(t.Shape), Data: bytes.Clone(t.Data)}
}
