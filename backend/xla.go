//go:build xla

package backend

import (
	"os"

	_ "github.com/gomlx/go-xla/compute/xla" // XLA/PJRT, for GPU nodes (needs cgo)
)

func init() {
	// GoMLX would otherwise download PJRT plugins from the internet for any
	// plugin not named by absolute path; bmca always names the plugin.
	if _, ok := os.LookupEnv("GOMLX_NO_AUTO_INSTALL"); !ok {
		os.Setenv("GOMLX_NO_AUTO_INSTALL", "1")
	}
}
