//go:build !unix

package tokenizer

// processCPUSeconds is not measured off Unix.
func processCPUSeconds() float64 { return 0 }
