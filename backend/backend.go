// Package backend opens the GoMLX compute backend a run uses.
//
// The CPU default is GoMLX's pure-Go backend with "parallelism=-1": its own
// default (a worker pool of 4) deadlocks on 2-core machines when matmuls nest
// inside parallel op execution. GPU runs name an XLA PJRT plugin by absolute
// path ("xla:/abs/xla_cuda_plugin.so"), which needs a binary built with the
// xla tag.
//
//	b, err := backend.Open(backend.DefaultCPU)
package backend

import (
	"fmt"
	"os"
	"strings"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // the pure-Go CPU backend, no C library
)

// DefaultCPU is the configuration used when none is given.
const DefaultCPU = "go:parallelism=-1"

// EnvVar overrides the configured backend, as GoMLX's own tools do.
const EnvVar = "GOMLX_BACKEND"

// Open returns the backend named by config ("name:options"); "" means
// $GOMLX_BACKEND if set, else DefaultCPU.
//
// It leaves float32 matrix products to the backend (XLA on CUDA: TF32); a
// run whose precision says how they must compute opens with OpenWith.
func Open(config string) (compute.Backend, error) {
	config = resolve(config)
	name, _, _ := strings.Cut(config, ":")
	available := compute.List()
	found := false
	for _, a := range available {
		found = found || a == name
	}
	if !found {
		hint := ""
		if name == "xla" {
			hint = "; build with -tags xla (cgo) for GPU nodes"
		}
		return nil, fmt.Errorf("backend %q: %q is not compiled in (available: %s)%s", config, name, strings.Join(available, ", "), hint)
	}
	b, err := compute.NewWithConfig(config)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", config, err)
	}
	return b, nil
}

// resolve applies the defaults: "" means $GOMLX_BACKEND if set, else DefaultCPU.
func resolve(config string) string {
	if config == "" {
		config = os.Getenv(EnvVar)
	}
	if config == "" {
		config = DefaultCPU
	}
	return config
}
