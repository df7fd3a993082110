package backend

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gomlx/compute"
)

// Float32Products is how a backend may run matrix products whose operands
// are float32. XLA on a CUDA GPU runs them in TF32 unless told otherwise
// (10-bit mantissa inputs, float32 accumulation); the CPU backends have no
// TF32 and always compute them in full float32.
type Float32Products int

const (
	// BackendChoice leaves the choice to the backend and its options:
	// TF32 on CUDA, float32 elsewhere. bf16-mixed runs use it, so the few
	// float32 products they keep (the loss's logits, the text pooling)
	// compute as they always have.
	BackendChoice Float32Products = iota
	// ExactFloat32 asks for full float32 products everywhere (XLA: precision
	// HIGHEST on every float32 DotGeneral): what train.precision f32 means.
	ExactFloat32
	// AllowTF32 lets a CUDA GPU round float32 operands to TF32, as OpenCLIP's
	// trainer allows (torch.backends.cuda.matmul.allow_tf32). Backends
	// without TF32 compute in float32, so it equals ExactFloat32 there.
	AllowTF32
)

// xlaNames are the names the XLA backend registers itself under.
var xlaNames = []string{"xla", "stablehlo", "hlo", "shlo"}

// tf32Option reads an explicit TF32 choice among the comma-separated options
// that follow the plugin in an XLA configuration ("xla:PLUGIN,opt,opt=v"):
// "tf32", "tf32=<bool>" or "notf32", as the XLA backend spells them.
func tf32Option(config string) (value, explicit bool, err error) {
	name, rest, _ := strings.Cut(config, ":")
	isXLA := false
	for _, n := range xlaNames {
		isXLA = isXLA || name == n
	}
	if !isXLA {
		return false, false, nil
	}
	parts := strings.Split(rest, ",")
	for _, part := range parts[1:] {
		key, val, hasVal := strings.Cut(part, "=")
		switch {
		case key == "notf32":
			value, explicit = false, true
		case key == "tf32" && !hasVal:
			value, explicit = true, true
		case key == "tf32":
			b, perr := strconv.ParseBool(val)
			if perr != nil {
				return false, true, fmt.Errorf("backend %q: option tf32=%q is not a boolean", config, val)
			}
			value, explicit = b, true
		}
	}
	return value, explicit, nil
}

// checkProducts refuses a backend configuration whose explicit tf32 option
// contradicts what the run asks for: a run asked to be exact must not
// silently compute in TF32, and one asked for TF32 must not silently lose
// the speed.
func checkProducts(config string, products Float32Products) (explicit bool, err error) {
	value, explicit, err := tf32Option(config)
	if err != nil || !explicit {
		return explicit, err
	}
	switch {
	case products == ExactFloat32 && value:
		return true, fmt.Errorf("backend %q turns TF32 on, but precision f32 asks for exact float32 products: use precision tf32, or drop the tf32 option", config)
	case products == AllowTF32 && !value:
		return true, fmt.Errorf("backend %q turns TF32 off, but precision tf32 asks for it: use precision f32, or drop the tf32 option", config)
	}
	return true, nil
}

// OpenWith is Open for a run whose float32 matrix products must compute as
// products says. An explicit tf32 option in the configuration that agrees
// is kept, one that contradicts is an error; without one, the backend is
// set up to match (on XLA by the DotGeneral precision it emits).
func OpenWith(config string, products Float32Products) (compute.Backend, error) {
	config = resolve(config)
	explicit, err := checkProducts(config, products)
	if err != nil {
		return nil, err
	}
	b, err := Open(config)
	if err != nil {
		return nil, err
	}
	if !explicit && products != BackendChoice {
		setFloat32Products(b, products)
	}
	return b, nil
}
