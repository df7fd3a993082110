package backend

import (
	"strings"
	"testing"
)

func TestTF32OptionReadsXLASpellings(t *testing.T) {
	for _, c := range []struct {
		config          string
		value, explicit bool
	}{
		{"xla:/abs/xla_cuda_plugin.so,preallocate=false", false, false},
		{"xla:/abs/xla_cuda_plugin.so,tf32", true, true},
		{"xla:/abs/xla_cuda_plugin.so,preallocate=false,tf32=true", true, true},
		{"xla:/abs/xla_cuda_plugin.so,tf32=false", false, true},
		{"xla:/abs/xla_cuda_plugin.so,notf32,preallocate=false", false, true},
		{"stablehlo:cuda,tf32=0", false, true},
		{"xla:cuda", false, false},
		// The plugin name is not an option, and other backends have none.
		{"xla:tf32", false, false},
		{"go:parallelism=-1,tf32", false, false},
	} {
		value, explicit, err := tf32Option(c.config)
		if err != nil || value != c.value || explicit != c.explicit {
			t.Errorf("%q: value %v explicit %v err %v, want %v %v", c.config, value, explicit, err, c.value, c.explicit)
		}
	}
	if _, _, err := tf32Option("xla:cuda,tf32=maybe"); err == nil || !strings.Contains(err.Error(), "tf32") {
		t.Errorf("tf32=maybe: %v, want an error naming the option", err)
	}
}

func TestOpenWithRefusesAContradictingTF32Option(t *testing.T) {
	// Checked before the backend is opened, so these fail the same way
	// with or without the XLA backend compiled in.
	for _, c := range []struct {
		config   string
		products Float32Products
		want     string
	}{
		{"xla:/abs/xla_cuda_plugin.so,tf32", ExactFloat32, "precision f32"},
		{"xla:/abs/xla_cuda_plugin.so,tf32=true", ExactFloat32, "precision f32"},
		{"xla:/abs/xla_cuda_plugin.so,notf32", AllowTF32, "precision tf32"},
	} {
		_, err := OpenWith(c.config, c.products)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "drop the tf32 option") {
			t.Errorf("%q with %d: %v, want a refusal that names %s and the fix", c.config, c.products, err, c.want)
		}
	}
	// Agreeing options, and bf16's backend choice, are not refused.
	for _, c := range []struct {
		config   string
		products Float32Products
	}{
		{"xla:/abs/xla_cuda_plugin.so,tf32=false", ExactFloat32},
		{"xla:/abs/xla_cuda_plugin.so,tf32", AllowTF32},
		{"xla:/abs/xla_cuda_plugin.so,tf32", BackendChoice},
		{"xla:/abs/xla_cuda_plugin.so,notf32", BackendChoice},
	} {
		if _, err := checkProducts(c.config, c.products); err != nil {
			t.Errorf("%q with %d: %v", c.config, c.products, err)
		}
	}
}

func TestOpenWithOnTheCPUBackend(t *testing.T) {
	for _, p := range []Float32Products{BackendChoice, ExactFloat32, AllowTF32} {
		b, err := OpenWith(DefaultCPU, p)
		if err != nil {
			t.Fatalf("%d: %v", p, err)
		}
		if !strings.Contains(b.Description(), "parallelism=-1") {
			t.Errorf("%d: opened %q, not the configured %q", p, b.Description(), DefaultCPU)
		}
	}
}
