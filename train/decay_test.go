package train

import (
	"testing"

	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/textenc"
	"github.com/bmca/bmca/model/vit"
)

// TestDecayRulesCountAsOpenCLIP compares the decayed group with OpenCLIP's
// for the reference "tiny" model: the counts come from open_clip 2.32.0's
// named_parameters() under each rule (main.py's 2.x lambda; 4.x's
// p.ndim <= 1 or no_weight_decay()), with and without --lock-image.
func TestDecayRulesCountAsOpenCLIP(t *testing.T) {
	tiny := clip.Config{
		EmbedDim:  32,
		VisionCfg: clip.VisionConfig{Config: vit.Config{ImageSize: 32, PatchSize: 8, Width: 64, Layers: 2, HeadWidth: 32}},
		TextCfg:   clip.TextConfig{Config: textenc.Config{ContextLength: 77, VocabSize: 49408, Width: 64, Heads: 2, Layers: 2}},
	}
	cases := []struct {
		rule DecayRule
		lock bool
		want DecayCount
	}{
		{DecayOpenCLIP2, false, DecayCount{22, 3381120, 62, 3384897}},
		{DecayOpenCLIP2, true, DecayCount{11, 3267392, 30, 3269185}},
		{DecayOpenCLIP4, false, DecayCount{20, 3375104, 62, 3384897}},
		{DecayOpenCLIP4, true, DecayCount{10, 3262464, 30, 3269185}},
		{"", false, DecayCount{20, 3375104, 62, 3384897}}, // the default is openclip4
	}
	for _, c := range cases {
		r := Recipe{AdamW: AdamW{WeightDecay: 0.2, DecayRule: c.rule}, LockImage: c.lock}
		if got := DecayedParams(tiny, r); got != c.want {
			t.Errorf("%s, lock_image %v: %+v, want %+v", c.rule, c.lock, got, c.want)
		}
	}
	// The two rules differ exactly in the positional embeddings.
	var differ []string
	for _, p := range clip.Params(tiny) {
		if DecayOpenCLIP2.Decays(p) != DecayOpenCLIP4.Decays(p) {
			differ = append(differ, p.Name)
		}
	}
	if len(differ) != 2 || differ[0] != "positional_embedding" || differ[1] != "visual.positional_embedding" {
		t.Errorf("the rules differ on %v, want the two positional embeddings", differ)
	}
	if got := DecayedParams(tiny, Recipe{AdamW: AdamW{DecayRule: DecayOpenCLIP2}}); got.Tensors != 0 || got.Params != 0 {
		t.Errorf("weight decay 0 still decays %+v", got)
	}
}

func TestParseDecayRule(t *testing.T) {
	for in, want := range map[string]DecayRule{"": DecayOpenCLIP4, "openclip4": DecayOpenCLIP4, "openclip2": DecayOpenCLIP2} {
		if got, err := ParseDecayRule(in); err != nil || got != want {
			t.Errorf("ParseDecayRule(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseDecayRule("openclip3"); err == nil {
		t.Error("openclip3 accepted")
	}
}
