// Package cliflag declares the flags several bmca commands share, once, so
// that a flag means and is spelled the same on every command: --output
// (old spelling --out), --batch-size (old spelling --batch), --backend and
// --precision. It depends on nothing but the standard library, so the ETL
// and tokenizer commands use it without linking the model.
//
//	fs := flag.NewFlagSet("embed", flag.ContinueOnError)
//	cliflag.Output(fs, &out, "output `FILE` (.safetensors): ...")
//	cliflag.BatchSize(fs, &batch, 32, "images or texts encoded at once (`N`)")
//	cliflag.Backend(fs, &backend)
//	cliflag.Precision(fs, &precision) // a transformer.Precision
//
// A command's own wording says what its --output receives and what its
// batch counts; the old spellings are registered as aliases that share the
// flag's value and say "alias of --NAME" in --help, so existing scripts keep
// working and --help shows one canonical spelling.
package cliflag

import (
	"flag"
	"fmt"
)

// Names of the shared flags.
const (
	OutputName    = "output"
	BatchSizeName = "batch-size"
	BackendName   = "backend"
	PrecisionName = "precision"
)

// Aliases are the other spellings the shared flag name accepts: bmca's
// older ones, kept so that scripts written against them still run.
func Aliases(name string) []string {
	switch name {
	case OutputName:
		return []string{"out"}
	case BatchSizeName:
		return []string{"batch"}
	}
	return nil
}

// AliasUsage is the --help text of an alias of the flag name whose own
// help names its value placeholder (DIR, FILE, N), so that --help shows
// the alias with the same placeholder.
func AliasUsage(name, placeholder string) string {
	return "alias of --" + name + " `" + placeholder + "`"
}

// BackendUsage is the --help text of --backend on every command.
const BackendUsage = "GoMLX backend `CONFIG`: go:parallelism=-1 (pure Go, CPU) or xla:/abs/path/xla_cuda_plugin.so[,preallocate=false] on a GPU (a binary built with -tags xla); default: the run config's backend where the command reads one (train, eval), else $GOMLX_BACKEND, else go:parallelism=-1"

// PrecisionUsage is the --help text of --precision on every command. The
// spellings are those transformer.ParsePrecision accepts (its tests check
// that every one listed here parses).
const PrecisionUsage = "arithmetic of the matrix products, `MODE`: f32 (exact float32 products, no TF32 on a GPU; matches OpenCLIP's fp32 outputs), tf32 (float32 with TF32 products on a CUDA GPU, as OpenCLIP's trainer allows; the same as f32 on the CPU; features move by about 1e-3) or bf16 (bf16-mixed, OpenCLIP's amp_bf16: bf16 products on a CUDA GPU's tensor cores, flash attention; features move by about 1e-3); OpenCLIP's spellings fp32, amp_bf16 and amp_bfloat16 are accepted; default f32 (train: the config's train.precision)"

// PrecisionSpellings are the values --precision accepts, as its help
// lists them.
func PrecisionSpellings() []string {
	return []string{"f32", "tf32", "bf16", "fp32", "amp_bf16", "amp_bfloat16"}
}

// Output registers --output, and its alias --out, on p. usage says what
// the command writes there, with the `DIR` or `FILE` placeholder.
func Output(fs *flag.FlagSet, p *string, usage string) {
	fs.StringVar(p, OutputName, "", usage)
	aliases(fs, OutputName)
}

// BatchSize registers --batch-size, and its alias --batch, on p with the
// command's default. usage says what one batch holds, with the `N`
// placeholder.
func BatchSize(fs *flag.FlagSet, p *int, value int, usage string) {
	fs.IntVar(p, BatchSizeName, value, usage)
	aliases(fs, BatchSizeName)
}

// Backend registers --backend on p; empty means the default BackendUsage
// describes.
func Backend(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, BackendName, "", BackendUsage)
}

// Precision registers --precision on v, a transformer.Precision or a
// value that parses the same spellings.
func Precision(fs *flag.FlagSet, v flag.Value) {
	fs.Var(v, PrecisionName, PrecisionUsage)
}

// aliases registers name's aliases on the value already registered as name.
// Both spellings set the same value; giving both with different values is
// an error rather than a silent choice of the last (repeating one spelling
// keeps the flag package's rule: the last wins).
func aliases(fs *flag.FlagSet, name string) {
	f := fs.Lookup(name)
	placeholder, _ := flag.UnquoteUsage(f)
	given := &spellings{}
	shared := f.Value
	f.Value = &spelledValue{Value: shared, spelling: name, given: given}
	for _, a := range Aliases(name) {
		fs.Var(&spelledValue{Value: shared, spelling: a, given: given}, a, AliasUsage(name, placeholder))
	}
}

// spellings remembers which spelling of a flag set it, and to what.
type spellings struct{ by, value string }

// spelledValue is one spelling of a flag whose value it shares with the
// others.
type spelledValue struct {
	flag.Value
	spelling string
	given    *spellings
}

func (v *spelledValue) Set(s string) error {
	if g := v.given; g.by != "" && g.by != v.spelling && g.value != s {
		return fmt.Errorf("--%s %s and --%s %s are the same flag with different values; give one", g.by, g.value, v.spelling, s)
	}
	v.given.by, v.given.value = v.spelling, s
	return v.Value.Set(s)
}

// String is the shared value's; the flag package also calls it on a zero
// spelledValue to find the default, which is then empty.
func (v *spelledValue) String() string {
	if v == nil || v.Value == nil {
		return ""
	}
	return v.Value.String()
}
