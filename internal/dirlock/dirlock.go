// Package dirlock gives one process at a time a folder to write: a
// training run's output, an ETL run's shards. The lock is an exclusive
// flock on a small file in the folder, held while the process lives, so a
// crash or SIGKILL leaves nothing to clean; the file names the holder
// (process id, host, start time) so that the process refused can say who
// has the folder.
//
//	lock, err := dirlock.Acquire(dir)
//	if err != nil {
//		return err // "runs/x is in use by process 4242 on node7 since …"
//	}
//	defer lock.Release()
//
// On systems without flock (Windows) Acquire records the holder but does
// not exclude anyone.
package dirlock

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Name is the lock file created in the folder.
const Name = ".lock"

// Holder is the process that holds a folder.
type Holder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Started time.Time `json:"started"`
}

// String names the holder for messages: "process 4242 on node7 since …".
func (h Holder) String() string {
	if h.PID == 0 {
		return "another process (it did not record itself)"
	}
	return fmt.Sprintf("process %d on %s since %s", h.PID, h.Host, h.Started.Local().Format("2006-01-02 15:04:05 MST"))
}

// HeldError is Acquire's error when another process holds the folder.
type HeldError struct {
	Dir    string
	Holder Holder
}

// Error names the folder, its holder and what to do.
func (e *HeldError) Error() string {
	return fmt.Sprintf("%s is in use by %s (lock file %s); wait for it to finish, stop it, or choose another folder",
		e.Dir, e.Holder, filepath.Join(e.Dir, Name))
}

// ErrHeld is matched by errors.Is for a *HeldError.
var ErrHeld = errors.New("folder is locked by another process")

// Is makes errors.Is(err, ErrHeld) true.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Lock is a held folder lock.
type Lock struct {
	f   *os.File
	dir string
}

// Acquire locks dir, which must exist, without waiting: when another
// process holds it the error is a *HeldError naming that process.
func Acquire(dir string) (*Lock, error) {
	p := filepath.Join(dir, Name)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	if held {
		h := readHolder(f)
		f.Close()
		return nil, &HeldError{Dir: dir, Holder: h}
	}
	if err := writeHolder(f); err != nil {
		unlock(f)
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", p, err)
	}
	return &Lock{f: f, dir: dir}, nil
}

// Release gives the folder up. The lock file stays (removing it would
// race with a process that just opened it); its content is cleared.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Truncate(0)
	unlock(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

// writeHolder records this process in the lock file.
func writeHolder(f *os.File) error {
	host, _ := os.Hostname()
	data, err := json.Marshal(Holder{PID: os.Getpid(), Host: host, Started: time.Now().UTC().Truncate(time.Second)})
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(append(data, '\n'), 0); err != nil {
		return err
	}
	return f.Sync()
}

// readHolder reads who holds the lock; a zero Holder when the file is
// empty or unreadable (a holder that has just locked and not yet written).
func readHolder(f *os.File) Holder {
	var h Holder
	buf := make([]byte, 4096)
	n, _ := f.ReadAt(buf, 0)
	_ = json.Unmarshal(buf[:n], &h)
	return h
}
