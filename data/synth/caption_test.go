package synth

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// mentions reports which attributes of a the caption fails to name.
func missingMentions(caption string, a Attributes) []string {
	lc := strings.ToLower(caption)
	words := regexp.MustCompile(`[a-z0-9&-]+`).FindAllString(lc, -1)
	has := func(phrase string) bool {
		p := strings.Fields(strings.ToLower(phrase))
		for i := 0; i+len(p) <= len(words); i++ {
			if strings.Join(words[i:i+len(p)], " ") == strings.Join(p, " ") {
				return true
			}
		}
		return false
	}
	any := func(phrases ...string) bool {
		for _, p := range phrases {
			if has(p) {
				return true
			}
		}
		return false
	}
	var missing []string
	if !any("x-ray", "radiograph", "film", "h&e", "fluorescence", "immunofluorescence", "if") ||
		!any(append(append([]string{adjectives[a.Modality]}, heads[a.Modality]...), objects[a.Modality]...)...) {
		missing = append(missing, "modality")
	}
	if !any(shapeWords[a.Shape]...) {
		missing = append(missing, "shape")
	}
	if !any(countWords[a.Count]...) {
		missing = append(missing, "count")
	}
	if !any(verticalWords[b2i(a.Position.Lower())]...) || !has(horizontalWords[b2i(a.Position.Right())]) {
		missing = append(missing, "position")
	}
	if a.Color != NoColor && !has(colorWords[a.Color]) {
		missing = append(missing, "color")
	}
	// No word of another value of the same attribute may appear.
	for s := range NumShapes {
		if s != a.Shape && any(shapeWords[s]...) {
			missing = append(missing, "shape (contradicted)")
		}
	}
	for c := 1; c <= MaxCount; c++ {
		if c != a.Count && any(countWords[c]...) {
			missing = append(missing, "count (contradicted)")
		}
	}
	if any(verticalWords[1-b2i(a.Position.Lower())]...) || has(horizontalWords[1-b2i(a.Position.Right())]) {
		missing = append(missing, "position (contradicted)")
	}
	return missing
}

func TestCaptionLengthAndMentions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	seen := map[string]bool{}
	for _, a := range allAttributes() {
		for range 60 {
			c := Caption(rng, a)
			seen[c] = true
			if len(c) > MaxCaptionBytes {
				t.Errorf("%q: %d bytes, limit %d", c, len(c), MaxCaptionBytes)
			}
			for i := range len(c) {
				if c[i] < 0x20 || c[i] > 0x7e {
					t.Fatalf("%q: byte %d is not printable ASCII", c, i)
				}
			}
			if m := missingMentions(c, a); len(m) > 0 {
				t.Errorf("%q for %+v: %v", c, a, m)
			}
		}
	}
	if n := len(allAttributes()) * 60; len(seen) < n/2 {
		t.Errorf("only %d distinct captions out of %d", len(seen), n)
	}
}

// TestCompactCaptionFits checks the form Caption falls back on.
func TestCompactCaptionFits(t *testing.T) {
	for _, a := range allAttributes() {
		c := compactCaption(a)
		if len(c) > MaxCaptionBytes {
			t.Errorf("compact caption %q: %d bytes", c, len(c))
		}
		if m := missingMentions(c, a); len(m) > 0 {
			t.Errorf("compact caption %q for %+v: %v", c, a, m)
		}
	}
}

func TestCaptionTemplatesUseEveryPlaceholder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	a := Attributes{Modality: Histology, Shape: Round, Count: 2, Position: UpperLeft}
	for _, tmpl := range captionTemplates {
		if c := fillTemplate(rng, a, tmpl); strings.ContainsAny(c, "{}") {
			t.Errorf("template %q left a placeholder: %q", tmpl, c)
		}
	}
}

func TestPromptsFit(t *testing.T) {
	for _, z := range zeroShotSpecs {
		for _, tmpl := range z.templates {
			if strings.Count(tmpl, Placeholder) != 1 {
				t.Errorf("task %s: template %q needs exactly one %s", z.name, tmpl, Placeholder)
			}
			for _, c := range z.classNames {
				if p := Prompt(tmpl, c); len(p) > MaxCaptionBytes {
					t.Errorf("task %s: prompt %q is %d bytes", z.name, p, len(p))
				}
			}
		}
	}
}

func TestCaptionDeterministic(t *testing.T) {
	a := Attributes{Modality: Fluorescence, Shape: Elongated, Count: 2, Position: UpperRight, Color: Blue}
	for seed := range uint64(20) {
		x := Caption(rand.New(rand.NewPCG(seed, 0)), a)
		y := Caption(rand.New(rand.NewPCG(seed, 0)), a)
		if x != y {
			t.Fatalf("seed %d: %q != %q", seed, x, y)
		}
	}
}
