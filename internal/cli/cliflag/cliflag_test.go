package cliflag

import (
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/bmca/bmca/model/transformer"
)

// TestPrecisionSpellingsParse checks that every spelling --precision's
// help lists is one transformer.ParsePrecision accepts, and that the help
// lists each of them.
func TestPrecisionSpellingsParse(t *testing.T) {
	for _, s := range PrecisionSpellings() {
		if _, err := transformer.ParsePrecision(s); err != nil {
			t.Errorf("--precision %s is in the help but does not parse: %v", s, err)
		}
		if !strings.Contains(PrecisionUsage, s) {
			t.Errorf("--precision's help does not mention %s", s)
		}
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var p transformer.Precision
	Precision(fs, &p)
	if err := fs.Parse([]string{"--precision", "amp_bf16"}); err != nil || p != transformer.BFloat16Mixed {
		t.Errorf("--precision amp_bf16: %v, %v; want bf16", p, err)
	}
	if err := fs.Parse([]string{"--precision", "fp16"}); err == nil || !strings.Contains(err.Error(), "loss scaling") {
		t.Errorf("--precision fp16: %v; want the reason it is refused", err)
	}
}

// TestAliasesShareTheValue checks that an old spelling sets the same
// variable as the canonical flag, and that the last one given wins.
func TestAliasesShareTheValue(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var out string
	var batch int
	Output(fs, &out, "output `DIR`")
	BatchSize(fs, &batch, 8, "pairs per step (`N`)")
	if batch != 8 {
		t.Fatalf("default batch size %d, want 8", batch)
	}
	if err := fs.Parse([]string{"--out", "a", "--batch", "3"}); err != nil || out != "a" || batch != 3 {
		t.Errorf("--out a --batch 3: out %q, batch %d, %v", out, batch, err)
	}
	if err := fs.Parse([]string{"--out", "a", "--output", "b", "--batch-size", "5"}); err != nil || out != "b" || batch != 5 {
		t.Errorf("--out a --output b --batch-size 5: out %q, batch %d, %v", out, batch, err)
	}
	if got, want := fs.Lookup("out").Usage, "alias of --output `DIR`"; got != want {
		t.Errorf("--out's help %q, want %q", got, want)
	}
	if got, want := fs.Lookup("batch").Usage, "alias of --batch-size `N`"; got != want {
		t.Errorf("--batch's help %q, want %q", got, want)
	}
}
