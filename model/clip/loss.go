package clip

import (
	. "github.com/gomlx/gomlx/core/graph"
)

// ContrastiveLoss is OpenCLIP's ClipLoss on one device: with labels
// arange(N), (CE(logits_per_image) + CE(logits_per_text)) / 2, each cross
// entropy averaged over the batch. logitsPerImage is [N, N].
func ContrastiveLoss(logitsPerImage *Node) *Node {
	imageToText := diagonalMean(LogSoftmax(logitsPerImage, 1))
	textToImage := diagonalMean(LogSoftmax(logitsPerImage, 0))
	return Neg(MulScalar(Add(imageToText, textToImage), 0.5))
}

// diagonalMean averages the matched pairs' log-probabilities. Multiplying by
// an exact identity mask keeps the backward pass a plain elementwise op.
func diagonalMean(logProbs *Node) *Node {
	n := logProbs.Shape().Dim(0)
	identity := ConvertDType(Diagonal(logProbs.Graph(), n), logProbs.DType())
	return DivScalar(ReduceAllSum(Mul(logProbs, identity)), float64(n))
}
