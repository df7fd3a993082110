//go:build xla

package backend

import (
	"github.com/gomlx/compute"
	"github.com/gomlx/go-xla/compute/xla"
)

// setFloat32Products sets XLA's TF32 switch, which its DotGeneral reads
// when a graph is built: off, every float32 product carries precision
// HIGHEST; on, only CUDA uses it (the XLA CPU plugin has no TF32 and would
// be handed a dot algorithm it may not support).
func setFloat32Products(b compute.Backend, products Float32Products) {
	x, ok := b.(*xla.Backend)
	if !ok {
		return
	}
	switch products {
	case ExactFloat32:
		x.DotGeneralUseTF32 = false
	case AllowTF32:
		x.DotGeneralUseTF32 = x.IsCUDA()
	}
}
