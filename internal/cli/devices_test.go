package cli

import (
	"strings"
	"testing"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/internal/graphtest"
)

// TestTrainDevicesOnOneDeviceBackend resolves train.devices on the pure-Go
// backend, which has one device: 0 and 1 run the plain program, more is an
// error that names the key and the backend's count.
func TestTrainDevicesOnOneDeviceBackend(t *testing.T) {
	be := graphtest.Backend(t)
	cfg := config.Default()
	for _, devices := range []int{0, 1} {
		cfg.Train.Devices = devices
		n, mesh, err := trainDevices(&cfg, be)
		if err != nil || n != 1 || mesh != 0 {
			t.Errorf("train.devices=%d: got %d devices, mesh %d, %v; want 1 device without a mesh", devices, n, mesh, err)
		}
	}
	cfg.Train.Devices = 2
	if _, _, err := trainDevices(&cfg, be); err == nil || !strings.Contains(err.Error(), "train.devices") || !strings.Contains(err.Error(), "has 1") {
		t.Errorf("train.devices=2 on a one-device backend: %v", err)
	}
}

// TestBatchDescriptionShowsTheGlobalBatch checks the start line's batch:
// the effective batch first, then how it is made up.
func TestBatchDescriptionShowsTheGlobalBatch(t *testing.T) {
	cfg := config.Default()
	for _, tc := range []struct {
		batch, accum, devices int
		want                  string
	}{
		{64, 1, 1, "64"},
		{1024, 2, 1, "2048 (1024 × accum 2)"},
		{4096, 2, 4, "8192 (4096 × accum 2; 1024 per device on 4 devices)"},
		{256, 1, 8, "256 (32 per device on 8 devices)"},
	} {
		cfg.Train.BatchSize, cfg.Train.AccumFreq = tc.batch, tc.accum
		if got := batchDesc(&cfg, tc.devices); got != tc.want {
			t.Errorf("batch %d, accum %d, %d devices: %q, want %q", tc.batch, tc.accum, tc.devices, got, tc.want)
		}
	}
}
