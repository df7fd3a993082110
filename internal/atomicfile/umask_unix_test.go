//go:build unix

package atomicfile_test

import (
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/bmca/bmca/internal/atomicfile"
)

// TestModesFollowTheUmask: written files get the modes os.WriteFile and
// os.Create would give, so a group that may read a run folder may read its
// checkpoints.
func TestModesFollowTheUmask(t *testing.T) {
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.safetensors")
	if err := atomicfile.WriteFile(a, []byte("{}"), 0o664); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(b, func(w io.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{a: 0o640, b: 0o640} {
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, st.Mode().Perm(), err, want)
		}
	}
}
