package merge

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bmca/bmca/configs"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/weights"
)

func randomDict(seed uint64, names map[string][]int) weights.StateDict {
	rng := rand.New(rand.NewPCG(seed, 1))
	sd := weights.StateDict{}
	for name, shape := range names {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		v[0] = float32(math.Copysign(0, -1)) // −0.0 must survive α = 0 and 1
		sd[name] = weights.FromFloat32s(shape, v)
	}
	return sd
}

var shapes = map[string][]int{"visual.proj": {4, 3}, "logit_scale": {}, "text_projection": {5, 2}}

func TestInterpolate(t *testing.T) {
	base, other := randomDict(1, shapes), randomDict(2, shapes)
	for alpha, want := range map[float64]weights.StateDict{0: base, 1: other} {
		got, err := Interpolate(base, other, alpha)
		if err != nil {
			t.Fatal(err)
		}
		for name, w := range want {
			if string(got[name].Data) != string(w.Data) || got[name].DType != w.DType {
				t.Errorf("alpha %v, %s: not bit-identical to the input", alpha, name)
			}
		}
	}
	half, err := Interpolate(base, other, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	quarter, err := Interpolate(base, other, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	for name := range shapes {
		b, _ := base[name].Float32s()
		o, _ := other[name].Float32s()
		h, _ := half[name].Float32s()
		q, _ := quarter[name].Float32s()
		for i := range b {
			if mean := float32((float64(b[i]) + float64(o[i])) / 2); h[i] != mean {
				t.Errorf("%s[%d]: alpha 0.5 gives %v, the mean is %v", name, i, h[i], mean)
			}
			if want := float32(0.75*float64(b[i]) + 0.25*float64(o[i])); q[i] != want {
				t.Errorf("%s[%d]: alpha 0.25 gives %v, want %v", name, i, q[i], want)
			}
		}
	}
	// The base's dtype is kept: a bf16 base mixed with an f32 other.
	bf := weights.StateDict{}
	for name, tensor := range base {
		bf[name], _ = tensor.To(weights.BF16)
	}
	mixed, err := Interpolate(bf, other, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := other["visual.proj"].To(weights.BF16); mixed["visual.proj"].DType != weights.BF16 || string(mixed["visual.proj"].Data) != string(want.Data) {
		t.Errorf("bf16 base, alpha 1: %v", mixed["visual.proj"].DType)
	}
	if _, err := Interpolate(base, other, math.NaN()); err == nil {
		t.Error("NaN alpha accepted")
	}
}

func TestInterpolateRefusesOtherArchitectures(t *testing.T) {
	base := randomDict(1, shapes)
	wider := randomDict(2, map[string][]int{"visual.proj": {4, 4}, "logit_scale": {}, "text_projection": {5, 2}, "extra": {1}})
	_, err := Interpolate(base, wider, 0.5)
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("error %v, want ErrMismatch", err)
	}
	for _, want := range []string{"2 tensors differ", "visual.proj: shape [4 3] ≠ [4 4]", "extra: only in the other model"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestConfigDiff(t *testing.T) {
	data, err := configs.Model("tiny")
	if err != nil {
		t.Fatal(err)
	}
	a, err := clip.ParseConfigJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if d := ConfigDiff(a, a); len(d) != 0 {
		t.Errorf("a config differs from itself: %q", d)
	}
	b := a
	b.VisionCfg.Width *= 2
	b.QuickGELU = !a.QuickGELU
	d := ConfigDiff(a, b)
	if len(d) != 2 || !strings.Contains(strings.Join(d, "\n"), "vision_cfg.width: 64 ≠ 128") || !strings.Contains(strings.Join(d, "\n"), "quick_gelu") {
		t.Errorf("diff %q", d)
	}
}
