package train

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bmca/bmca/model/clip"
)

// TestSaveKeepsTheNewest: keep = N leaves the newest N checkpoints; keep =
// 0 deletes none, as OpenCLIP keeps every checkpoint unless asked.
func TestSaveKeepsTheNewest(t *testing.T) {
	cfg := tinyConfig()
	weights := clip.Init(cfg, 1)
	for _, tc := range []struct {
		keep int
		want []string
	}{
		{0, []string{StepDirName(1), StepDirName(2), StepDirName(3)}},
		{2, []string{StepDirName(2), StepDirName(3)}},
	} {
		root := t.TempDir()
		for step := 1; step <= 3; step++ {
			if _, err := Save(root, tc.keep, &Checkpoint{ModelConfig: cfg, Weights: weights, State: State{Step: step}}); err != nil {
				t.Fatal(err)
			}
		}
		entries, err := os.ReadDir(filepath.Join(root, CheckpointsDir))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range entries {
			if e.IsDir() {
				got = append(got, e.Name())
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("keep %d: %v, want %v", tc.keep, got, tc.want)
		}
	}
}
