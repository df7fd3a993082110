package atomicfile_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/atomicfile"
)

func TestWriteKeepsOldFileOnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "open_clip_model.safetensors")
	old := []byte("the previous checkpoint")
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("injected failure")
	err := atomicfile.Write(path, func(w io.Writer) error {
		// More than the 1 MiB buffer, so part of it really reaches the temp file.
		if _, err := w.Write(make([]byte, 3<<20)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Write error = %v, want the injected failure and the path", err)
	}
	checkDir(t, dir, path, old)

	// A panicking writer cleans up too.
	func() {
		defer func() { recover() }()
		atomicfile.Write(path, func(w io.Writer) error {
			w.Write([]byte("partial"))
			panic("writer crashed")
		})
	}()
	checkDir(t, dir, path, old)

	// Success replaces the file and leaves nothing else.
	if err := atomicfile.WriteFile(path, []byte(`{"embed_dim": 32}`), 0o600); err != nil {
		t.Fatal(err)
	}
	checkDir(t, dir, path, []byte(`{"embed_dim": 32}`))
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}

	// A missing directory is an error naming the path.
	missing := filepath.Join(dir, "no", "such", "dir", "x.json")
	if err := atomicfile.WriteFile(missing, nil, 0o644); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("write into a missing directory: %v", err)
	}
}

// checkDir asserts that dir holds exactly path, with content want.
func checkDir(t *testing.T, dir, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s = %q, %v; want %q", path, got, err, want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(path) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only %s", names, filepath.Base(path))
	}
}

// TestRemoveLeftovers: what a writer killed between creating and renaming
// its temporary file leaves is recognised and removed; nothing else is.
func TestRemoveLeftovers(t *testing.T) {
	dir := t.TempDir()
	keep := []string{"latest", "x.tmp-12", ".x.tmp-", ".x.tmp-12a", "metrics.jsonl"}
	for _, name := range append(slices.Clone(keep), ".latest.tmp-3735928559", ".results.json.tmp-17") {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A real leftover: the temporary file of a write whose writer stops.
	stop := errors.New("killed")
	var tmpName string
	atomicfile.Write(filepath.Join(dir, "model.safetensors"), func(w io.Writer) error {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".model.safetensors.tmp-") {
				tmpName = e.Name()
			}
		}
		return stop
	})
	if !atomicfile.IsTemp(tmpName) {
		t.Fatalf("the temporary file %q is not recognised", tmpName)
	}
	removed, err := atomicfile.RemoveLeftovers(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Errorf("removed %v, want the two temporary files", removed)
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	slices.Sort(keep)
	if !slices.Equal(left, keep) {
		t.Errorf("left %v, want %v", left, keep)
	}
}
