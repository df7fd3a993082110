package cli

import (
	"fmt"

	"github.com/bmca/bmca/config"
	"github.com/gomlx/compute"
)

// trainDevices resolves train.devices against the backend (0: every device
// it has) and checks that the micro-batch splits evenly over them. It
// returns the device count and the train.Recipe's Devices: 0 for one
// device, which runs the plain single-device program.
func trainDevices(cfg *config.Config, be compute.Backend) (n, meshSize int, err error) {
	have := be.NumDevices()
	n = cfg.Train.Devices
	if n == 0 {
		n = have
	}
	if n > have {
		return 0, 0, fmt.Errorf("train.devices: %d asked for, but backend %s has %d", n, be.Name(), have)
	}
	if b := cfg.Train.BatchSize; b%n != 0 {
		return 0, 0, fmt.Errorf("train.batch_size: %d pairs per micro-batch do not split over %d devices; use a multiple of %d (or set train.devices)", b, n, n)
	}
	if n == 1 {
		return 1, 0, nil
	}
	return n, n, nil
}
