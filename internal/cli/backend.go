package cli

import (
	"github.com/bmca/bmca/backend"
	"github.com/bmca/bmca/model/transformer"
	"github.com/gomlx/compute"
)

// OpenBackend opens the backend of a run that computes in precision p, so
// that its float32 matrix products mean what p says: f32 exact (no TF32 on
// a GPU), tf32 with TF32 where the GPU has it, and bf16 leaving the few
// float32 products it keeps to the backend, as before. See
// backend.OpenWith for the rule on an explicit tf32 option in config.
func OpenBackend(config string, p transformer.Precision) (compute.Backend, error) {
	return backend.OpenWith(config, Float32Products(p))
}

// Float32Products is what precision p asks of the backend's float32
// matrix products.
func Float32Products(p transformer.Precision) backend.Float32Products {
	switch p {
	case transformer.Float32:
		return backend.ExactFloat32
	case transformer.TensorFloat32:
		return backend.AllowTF32
	}
	return backend.BackendChoice
}
