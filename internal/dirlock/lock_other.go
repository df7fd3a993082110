//go:build !unix

package dirlock

import "os"

// tryLock cannot exclude anyone where flock is unavailable; do not point
// two runs at one folder there.
func tryLock(f *os.File) (held bool, err error) { return false, nil }

func unlock(f *os.File) {}
