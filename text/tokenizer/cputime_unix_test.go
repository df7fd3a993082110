//go:build unix

package tokenizer

import "syscall"

// processCPUSeconds is the user+system CPU time of the whole process (GC
// included). On a loaded machine it measures the work of a benchmark more
// faithfully than wall time.
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
