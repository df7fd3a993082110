// Package testshared finds the project's shared reference material (real
// third-party data and outputs of the real OpenCLIP code) for tests.
//
// The material lives outside the repository, in a folder named "shared" next
// to the checkout, or wherever $BMCA_SHARED points. Tests call Dir or Path;
// when the folder is absent the test is skipped with a message saying where
// it was looked for, so a checkout without the material still passes.
//
//	vocab := testshared.Path(t, "data/tokenizer/bpe_simple_vocab_16e6.txt.gz")
package testshared

import (
	"os"
	"path/filepath"
	"testing"
)

// EnvVar names the environment variable that overrides the search.
const EnvVar = "BMCA_SHARED"

// Locate returns the shared folder, or "" when none is found. It checks
// $BMCA_SHARED, then "../shared" relative to each parent of the working
// directory (tests run in their package folder, so the repository root is a
// few levels up).
func Locate() string {
	if dir := os.Getenv(EnvVar); dir != "" {
		if isDir(dir) {
			return dir
		}
		return ""
	}
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for dir := wd; ; {
		if fileExists(filepath.Join(dir, "go.mod")) {
			candidate := filepath.Join(filepath.Dir(dir), "shared")
			if isDir(candidate) {
				return candidate
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Dir returns the shared folder or skips the test.
func Dir(t testing.TB) string {
	t.Helper()
	dir := Locate()
	if dir == "" {
		t.Skipf("shared reference material not found: set $%s or place it in ../shared next to the repository root", EnvVar)
	}
	return dir
}

// Path returns a path inside the shared folder, skipping the test when the
// folder or the file is absent.
func Path(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(Dir(t), filepath.FromSlash(rel))
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared file %s not found (%v)", rel, err)
	}
	return p
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// File is one shared file read into memory.
type File struct {
	Name string // the file's base name
	Data []byte
}

// RealJPEGs reads, from the shared folder dir, the figures of the real
// articles with figures (JPEGs of 0.4–2.2 megapixels) and, with medical, the
// real labelled medical JPEGs too, in a fixed order.
func RealJPEGs(t testing.TB, dir string, medical bool) []File {
	t.Helper()
	globs := []string{"data/jats-with-figures/*/*.jpg", "data/jats-with-figures/*/*/*.jpg"}
	if medical {
		globs = append(globs, "data/images/*/*.jp*g")
	}
	var files []File
	for _, g := range globs {
		matches, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(g)))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range matches {
			raw, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, File{Name: filepath.Base(p), Data: raw})
		}
	}
	return files
}
