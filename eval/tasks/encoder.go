package tasks

import (
	"context"
	"fmt"
	"math"

	"github.com/bmca/bmca/text/tokenizer"
)

// TextEncoder maps n token rows (row-major [n, context_length]) to features
// [n, dim], not normalised. *clip.Encoder satisfies it.
type TextEncoder interface {
	EncodeTexts(tokens []int32, n int) ([]float32, error)
}

// ImageEncoder maps n preprocessed images (row-major [n, 3, H, W]) to
// features [n, dim], not normalised. *clip.Encoder satisfies it.
type ImageEncoder interface {
	EncodeImages(pixels []float32, n int) ([]float32, error)
}

// Encoder is the model under evaluation: both towers.
type Encoder interface {
	ImageEncoder
	TextEncoder
}

// TokenizeFunc encodes texts into len(texts) rows of context-length ids,
// row-major.
type TokenizeFunc func(texts []string) ([]int32, error)

// ImageFunc decodes and preprocesses one encoded image (JPEG, PNG, …) into
// [3, H, W] float32 values, e.g. data/preprocess Config.Apply. Run calls it
// from several goroutines at once.
type ImageFunc func(encoded []byte) ([]float32, error)

// FromTokenizer adapts a Tokenizer to a TokenizeFunc.
func FromTokenizer(tok tokenizer.Tokenizer) TokenizeFunc {
	return func(texts []string) ([]int32, error) {
		return tokenizer.EncodeBatch(tok, texts), nil
	}
}

// normalizeEps is torch.nn.functional.normalize's default eps.
const normalizeEps = 1e-12

// normalizeRows L2-normalises each row of x [n, dim] in place, as
// F.normalize(x, dim=-1) does: x / max(‖x‖, 1e-12).
func normalizeRows(x []float32, dim int) {
	for r := 0; r+dim <= len(x); r += dim {
		row := x[r : r+dim]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		inv := 1 / max(math.Sqrt(ss), normalizeEps)
		for i, v := range row {
			row[i] = float32(float64(v) * inv)
		}
	}
}

// encodeTextsBatched encodes n token rows in batches of batchSize and
// returns the features [n, dim] and dim.
func encodeTextsBatched(ctx context.Context, enc TextEncoder, tokens []int32, n, batchSize int) ([]float32, int, error) {
	if n == 0 {
		return nil, 0, nil
	}
	if len(tokens)%n != 0 {
		return nil, 0, fmt.Errorf("%d token ids do not split into %d rows", len(tokens), n)
	}
	rowLen := len(tokens) / n
	var out []float32
	dim := 0
	for start := 0; start < n; start += batchSize {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		end := min(start+batchSize, n)
		f, err := enc.EncodeTexts(tokens[start*rowLen:end*rowLen], end-start)
		if err != nil {
			return nil, 0, fmt.Errorf("encode texts %d..%d: %w", start, end-1, err)
		}
		d, err := featureDim(f, end-start)
		if err != nil {
			return nil, 0, fmt.Errorf("encode texts: %w", err)
		}
		if dim != 0 && d != dim {
			return nil, 0, fmt.Errorf("encode texts: feature size changed from %d to %d", dim, d)
		}
		dim = d
		out = append(out, f...)
	}
	return out, dim, nil
}

// featureDim checks that f holds n equal rows and returns their length.
func featureDim(f []float32, n int) (int, error) {
	if n <= 0 || len(f) == 0 || len(f)%n != 0 {
		return 0, fmt.Errorf("encoder returned %d values for %d rows", len(f), n)
	}
	return len(f) / n, nil
}
