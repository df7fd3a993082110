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
// variable as the canonical flag, that repeating one spelling keeps the
// last value, and that two spellings with different values are refused.
func TestAliasesShareTheValue(t *testing.T) {
	parse := func(args ...string) (string, int, error) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var out string
		var batch int
		Output(fs, &out, "output `DIR`")
		BatchSize(fs, &batch, 8, "pairs per step (`N`)")
		err := fs.Parse(args)
		return out, batch, err
	}
	if out, batch, err := parse(); err != nil || out != "" || batch != 8 {
		t.Fatalf("defaults: out %q, batch %d, %v; want \"\", 8", out, batch, err)
	}
	if out, batch, err := parse("--out", "a", "--batch", "3"); err != nil || out != "a" || batch != 3 {
		t.Errorf("--out a --batch 3: out %q, batch %d, %v", out, batch, err)
	}
	if out, batch, err := parse("--output", "a", "--output", "b", "--batch-size", "5"); err != nil || out != "b" || batch != 5 {
		t.Errorf("--output a --output b --batch-size 5: out %q, batch %d, %v", out, batch, err)
	}
	if out, _, err := parse("--out", "a", "--output", "a"); err != nil || out != "a" {
		t.Errorf("--out a --output a: out %q, %v; the same value twice is fine", out, err)
	}
	if _, _, err := parse("--out", "a", "--output", "b"); err == nil || !strings.Contains(err.Error(), "--out a and --output b") {
		t.Errorf("--out a --output b: %v; want both spellings named", err)
	}
	if _, _, err := parse("--batch-size", "4", "--batch", "6"); err == nil || !strings.Contains(err.Error(), "--batch-size 4 and --batch 6") {
		t.Errorf("--batch-size 4 --batch 6: %v; want both spellings named", err)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var out string
	var batch int
	Output(fs, &out, "output `DIR`")
	BatchSize(fs, &batch, 8, "pairs per step (`N`)")
	if got, want := fs.Lookup("out").Usage, "alias of --output `DIR`"; got != want {
		t.Errorf("--out's help %q, want %q", got, want)
	}
	if got, want := fs.Lookup("batch").Usage, "alias of --batch-size `N`"; got != want {
		t.Errorf("--batch's help %q, want %q", got, want)
	}
}
