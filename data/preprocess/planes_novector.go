//go:build !(goexperiment.simd && amd64)

package preprocess

// resampleVector needs GOEXPERIMENT=simd on amd64; elsewhere the scalar
// kernel runs.
func resampleVector(dst, pix []uint8, stride, col0, col1, row0, row1, outW, outH int, s *planeScratch) bool {
	return false
}

// hasVectorResample says whether resamplePlane takes resampleVector here.
func hasVectorResample() bool { return false }
