//go:build !xla

package backend

import "github.com/gomlx/compute"

// setFloat32Products has nothing to set without the XLA backend: the pure-Go
// backend computes float32 products in float32 whatever is asked.
func setFloat32Products(compute.Backend, Float32Products) {}
