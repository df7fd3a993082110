// Package atomicfile replaces files so that a crash never leaves a mix of
// old and new content: checkpoints, configs, manifests, results, caches.
// What is written goes to a temporary file next to the target, which is
// fsynced and renamed over it, and then the directory is fsynced.
//
//	err := atomicfile.Write("out/model.safetensors", func(w io.Writer) error { … })
//	err = atomicfile.WriteFile("out/config.json", data, 0o644)
//
// A process killed mid-write (SIGKILL, power loss) leaves its temporary
// file behind; IsTemp recognises those names and RemoveLeftovers deletes
// them, for a command to call at its next start while it holds the folder
// (see package dirlock).
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"syscall"
)

// Write creates or replaces the file at path with what write writes, so
// that path holds either its old content or the complete new content,
// never a mix, even after a crash. When write (or any step) fails or
// panics, the temporary file is removed and path is untouched. The new
// file has mode 0666 less the umask, as os.Create gives. If path is a
// symbolic link, the link itself is replaced.
func Write(path string, write func(w io.Writer) error) error {
	return writeAtomic(path, 0o666, write)
}

// WriteFile is Write for content already in memory, with the mode of the
// new file perm less the umask, as os.WriteFile gives.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return writeAtomic(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// tempPattern is the name of a temporary file: "." + the target's name +
// ".tmp-" + a random number.
var tempPattern = regexp.MustCompile(`^\..+\.tmp-[0-9]+$`)

// IsTemp reports whether a file name is one of this package's temporary
// files.
func IsTemp(name string) bool { return tempPattern.MatchString(name) }

// createTemp creates a new, empty temporary file for path. Unlike
// os.CreateTemp (always 0600) it applies perm through the umask.
func createTemp(path string, perm os.FileMode) (*os.File, error) {
	dir, base := filepath.Split(path)
	for range 100 {
		name := filepath.Join(dir, "."+base+".tmp-"+strconv.FormatUint(uint64(rand.Uint32()), 10))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if !errors.Is(err, os.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("no unused temporary name next to %s", path)
}

func writeAtomic(path string, perm os.FileMode, write func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := createTemp(path, perm)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done { // also runs when write panics
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	fail := func(step string, err error) error {
		return fmt.Errorf("writing %s: %s: %w", path, step, err)
	}
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(bw); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fail("flush", err)
	}
	if err := tmp.Sync(); err != nil {
		return fail("fsync", err)
	}
	if err := tmp.Close(); err != nil {
		return fail("close", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fail("rename", err)
	}
	done = true
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("%s was replaced, but syncing its directory failed: %w", path, err)
	}
	return nil
}

// SyncDir makes a rename in dir durable. Windows cannot fsync a directory,
// and some file systems refuse to; there is nothing more to do in both cases.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	return err
}

// RemoveLeftovers deletes the temporary files a killed writer left in dir
// (not in its subdirectories) and returns their paths. Call it only while
// no other process writes to dir: a live writer's temporary file looks the
// same.
func RemoveLeftovers(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		if e.Type().IsRegular() && IsTemp(e.Name()) {
			p := filepath.Join(dir, e.Name())
			if err := os.Remove(p); err != nil {
				return removed, err
			}
			removed = append(removed, p)
		}
	}
	return removed, nil
}
