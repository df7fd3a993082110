//go:build xla

package backend

import (
	"testing"

	"github.com/gomlx/go-xla/compute/xla"
)

// Without a PJRT plugin no XLA backend can be opened, but the switch that
// OpenWith sets can: a CUDA backend starts with TF32 on.
func TestExactFloat32TurnsXLATF32Off(t *testing.T) {
	b := &xla.Backend{DotGeneralUseTF32: true}
	setFloat32Products(b, ExactFloat32)
	if b.DotGeneralUseTF32 {
		t.Error("ExactFloat32 left TF32 on")
	}
	b.DotGeneralUseTF32 = true
	setFloat32Products(b, BackendChoice)
	if !b.DotGeneralUseTF32 {
		t.Error("BackendChoice changed the backend's TF32 setting")
	}
}
