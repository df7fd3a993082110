package cli

import (
	"flag"
	"io"
	"path/filepath"
	"testing"

	"github.com/bmca/bmca/model/transformer"
)

// TestRuntimeFlagsOverrideTheConfig checks train's --backend and
// --precision: given, they replace the config's values (after --set, in
// OpenCLIP's spellings too); not given, the config's values stay.
func TestRuntimeFlagsOverrideTheConfig(t *testing.T) {
	cfgPath := filepath.Join("..", "..", "configs", "demo.yaml")
	parse := func(args ...string) *ConfigFlags {
		t.Helper()
		var f ConfigFlags
		fs := flag.NewFlagSet("train", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		f.Register(fs, cfgPath)
		f.RegisterPrecision(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		return &f
	}
	cfg, err := parse("--set", "train.precision=bf16", "--set", "backend=go:parallelism=1").Load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Train.Precision != transformer.BFloat16Mixed || cfg.Backend != "go:parallelism=1" {
		t.Fatalf("without the flags: precision %s, backend %q; want the --set values", cfg.Train.Precision, cfg.Backend)
	}
	cfg, err = parse("--set", "train.precision=bf16", "--precision", "fp32", "--backend", "go:parallelism=-1").Load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Train.Precision != transformer.Float32 || cfg.Backend != "go:parallelism=-1" {
		t.Errorf("--precision fp32 --backend go:parallelism=-1: precision %s, backend %q", cfg.Train.Precision, cfg.Backend)
	}
	cfg, err = parse("--precision", "amp_bf16").Load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Train.Precision != transformer.BFloat16Mixed {
		t.Errorf("--precision amp_bf16: precision %s, want bf16", cfg.Train.Precision)
	}
}
