package weights

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
)

// AtomicWrite creates or replaces the file at path with what write writes,
// so that path holds either its old content or the complete new content,
// never a mix, even after a crash: write goes to a temporary file in the same
// directory (buffered), which is fsynced and renamed over path, and then the
// directory is fsynced. When write (or any step) fails or panics, the
// temporary file is removed and path is untouched. The new file has mode
// 0644. If path is a symbolic link, the link itself is replaced.
func AtomicWrite(path string, write func(w io.Writer) error) error {
	return atomicWrite(path, 0o644, write)
}

// AtomicWriteFile is AtomicWrite for content already in memory, such as a
// JSON config written next to the weights. The file gets exactly mode perm
// (the umask does not apply).
func AtomicWriteFile(path string, data []byte, perm os.FileMode) error {
	return atomicWrite(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func atomicWrite(path string, perm os.FileMode, write func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("weights: writing %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done { // also runs when write panics
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	fail := func(step string, err error) error {
		return fmt.Errorf("weights: writing %s: %s: %w", path, step, err)
	}
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(bw); err != nil {
		return fmt.Errorf("weights: writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fail("flush", err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail("chmod", err)
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
		return fmt.Errorf("weights: %s was replaced, but syncing its directory failed: %w", path, err)
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
