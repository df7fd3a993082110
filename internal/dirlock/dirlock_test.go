package dirlock_test

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/dirlock"
)

func TestSecondAcquireNamesTheHolder(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock: the lock does not exclude on Windows")
	}
	dir := t.TempDir()
	first, err := dirlock.Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = dirlock.Acquire(dir)
	var held *dirlock.HeldError
	if !errors.As(err, &held) || !errors.Is(err, dirlock.ErrHeld) {
		t.Fatalf("second Acquire: %v, want a HeldError", err)
	}
	host, _ := os.Hostname()
	if held.Holder.PID != os.Getpid() || held.Holder.Host != host || held.Holder.Started.IsZero() {
		t.Errorf("holder %+v, want pid %d on %s with a start time", held.Holder, os.Getpid(), host)
	}
	if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("process %d on %s since ", os.Getpid(), host)) || !strings.Contains(msg, dir) {
		t.Errorf("message %q does not name the folder and the holder", msg)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	again, err := dirlock.Acquire(dir)
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	again.Release()
}
