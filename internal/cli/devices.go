package cli

import (
	"fmt"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/train"
	"github.com/gomlx/compute"
)

// trainDevices resolves train.devices against the backend (train.MeshSize)
// and checks that the micro-batch splits evenly over them. It returns the
// device count and the train.Recipe's Devices.
func trainDevices(cfg *config.Config, be compute.Backend) (n, meshSize int, err error) {
	n, meshSize, err = train.MeshSize(be, cfg.Train.Devices)
	if err != nil {
		return 0, 0, fmt.Errorf("train.devices: %w", err)
	}
	if b := cfg.Train.BatchSize; b%n != 0 {
		return 0, 0, fmt.Errorf("train.batch_size: %d pairs per micro-batch do not split over %d devices; use a multiple of %d (or set train.devices)", b, n, n)
	}
	return n, meshSize, nil
}
