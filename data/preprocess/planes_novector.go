//go:build !(goexperiment.simd && amd64)

package preprocess

// resampleVector needs GOEXPERIMENT=simd on amd64; elsewhere the scalar
// kernel runs.
func resampleVector(dst, pix []uint8, stride, col0, col1, row0, row1, outW, outH int, hor, vert *coeffs, hk []int64, vk []int32, s *vectorScratch) bool {
	return false
}

// vectorScratch is empty: this build has no vector kernel.
type vectorScratch struct{}

// hasVectorResample says whether resamplePlane takes resampleVector here.
func hasVectorResample() bool { return false }
