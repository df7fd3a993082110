package tasks

import (
	"context"
	"math"
	"testing"
)

func TestFormatTemplate(t *testing.T) {
	for _, tc := range []struct {
		tmpl, want string
		bad        bool
	}{
		{tmpl: "a photo of {c}.", want: "a photo of lung."},
		{tmpl: "a histopathology image of {}.", want: "a histopathology image of lung."},
		{tmpl: "{0}, {c}", want: "lung, lung"},
		{tmpl: "{{literal}} {c}", want: "{literal} lung"},
		{tmpl: "a {d}", bad: true},
		{tmpl: "a {c", bad: true},
		{tmpl: "a } {c}", bad: true},
	} {
		got, err := FormatTemplate(tc.tmpl, "lung")
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("FormatTemplate(%q) = %q, %v; want %q (error %v)", tc.tmpl, got, err, tc.want, tc.bad)
		}
	}
	if err := checkTemplate("no placeholder"); err == nil {
		t.Error("template without placeholder accepted")
	}
}

// rowEncoder encodes token row r as the feature vectors[row[0]].
type rowEncoder struct {
	vectors [][]float32
	calls   []int // batch sizes seen
}

func (e *rowEncoder) EncodeTexts(tokens []int32, n int) ([]float32, error) {
	e.calls = append(e.calls, n)
	l := len(tokens) / n
	var out []float32
	for r := range n {
		out = append(out, e.vectors[tokens[r*l]]...)
	}
	return out, nil
}

func TestClassifierFromTokens(t *testing.T) {
	// Two classes × two templates, class-major rows. Class 0's prompts
	// encode to (3,0) and (0,5): normalised (1,0), (0,1), mean (.5,.5),
	// renormalised (1/√2, 1/√2). Class 1's to (0,-2) twice: (0,-1).
	enc := &rowEncoder{vectors: [][]float32{{3, 0}, {0, 5}, {0, -2}}}
	tokens := []int32{0, 9, 1, 9, 2, 9, 2, 9} // rows of 2 ids
	c, err := ClassifierFromTokens(context.Background(), enc, tokens, 2, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	s := float32(1 / math.Sqrt2)
	want := []float32{s, 0, s, -1} // [dim 2, classes 2]
	for i := range want {
		if math.Abs(float64(c.Weights[i]-want[i])) > 1e-7 {
			t.Fatalf("weights %v, want %v", c.Weights, want)
		}
	}
	if len(enc.calls) != 2 || enc.calls[0] != 3 || enc.calls[1] != 1 {
		t.Errorf("batches %v, want [3 1]", enc.calls)
	}
	logits, err := c.Logits([]float32{0, -7, 2, 2}, 2)
	if err != nil {
		t.Fatal(err)
	}
	wantLogits := []float32{-100 * s, 100, 100, -100 * s}
	for i := range wantLogits {
		if math.Abs(float64(logits[i]-wantLogits[i])) > 1e-4 {
			t.Fatalf("logits %v, want %v", logits, wantLogits)
		}
	}
}
