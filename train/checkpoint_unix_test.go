//go:build unix

package train

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/bmca/bmca/model/clip"
)

// TestCheckpointModesFollowTheUmask: a checkpoint directory and its files
// get the modes mkdir and touch would give under the user's umask (0700
// from a temporary directory kept others on a shared machine out).
func TestCheckpointModesFollowTheUmask(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	cfg := tinyConfig()
	root := t.TempDir()
	dir, err := Save(root, 1, &Checkpoint{ModelConfig: cfg, Weights: clip.Init(cfg, 1), State: State{Step: 1}})
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(filepath.Join(root, CheckpointsDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		want := os.FileMode(0o644)
		if d.IsDir() {
			want = 0o755
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(dir) != StepDirName(1) {
		t.Errorf("saved to %s", dir)
	}
}
