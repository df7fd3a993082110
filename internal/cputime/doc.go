// Package cputime reads the process's CPU time, which benchmarks report
// beside wall time: on a machine shared with other work, work per CPU
// second is the steadier figure (with -cpu 1, the one-core rate).
//
//	cpu0 := cputime.Process()
//	... // the measured loop
//	b.ReportMetric(float64(n)/(cputime.Process()-cpu0).Seconds(), "items/cpu-s")
package cputime
