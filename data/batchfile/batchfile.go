// Package batchfile replays ready-made training batches from one safetensors
// file, so that a run of another trainer (OpenCLIP's, say) can be repeated
// batch for batch, or a divergence narrowed down on fixed inputs.
//
// The file holds two tensors: "pixels" [S,B,3,H,W] float32, already
// preprocessed, and "tokens" [S,B,L] int64 or int32 (OpenCLIP's tokenizer
// output). Optimiser step s trains on batch s, in order, without
// augmentation or shuffling. With gradient accumulation each batch is split
// into consecutive micro-batches, so the accumulated step sees exactly the
// file's batch. The stream position stored in a checkpoint is the index of
// the next batch, so a resumed run continues where it stopped. Batches are
// read one at a time; the file never has to fit in memory.
//
//	f, err := batchfile.Open("batches.safetensors", batchfile.Shape{ImageSize: 224, ContextLength: 77, VocabSize: 49408})
//	defer f.Close()
//	for b, err := range f.Batches(ctx, batchfile.Position{}, 2) {
//		if err != nil { ... }
//		step(b.Pixels, b.Tokens) // then save b.Next with the checkpoint
//	}
package batchfile

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/bmca/bmca/model/weights"
)

// Tensor names in the file.
const (
	PixelsName = "pixels"
	TokensName = "tokens"
)

// Shape is what the model takes: the file's batches must match it.
type Shape struct {
	// ImageSize is H = W of the pixels.
	ImageSize int
	// ContextLength is L of the tokens.
	ContextLength int
	// VocabSize bounds the token ids: each must be in [0, VocabSize).
	VocabSize int
}

// File is an open batch file whose layout has been checked.
type File struct {
	path         string
	f            *weights.File
	shape        Shape
	steps, batch int
}

// Open opens a batch file and checks its tensors against the model's shape:
// names, dtypes, ranks, and that pixels and tokens hold the same number of
// batches of the same size. Errors name the file and the tensor.
func Open(path string, want Shape) (*File, error) {
	wf, err := weights.Open(path)
	if err != nil {
		return nil, err
	}
	f := &File{path: path, f: wf, shape: want}
	if err := f.check(); err != nil {
		wf.Close()
		return nil, err
	}
	return f, nil
}

func (f *File) check() error {
	info := func(name string, dtypes ...weights.DType) (weights.DType, []int, error) {
		dtype, shape, ok := f.f.Info(name)
		if !ok {
			return "", nil, fmt.Errorf("%s: no tensor %q (the file holds: %s); a batch file needs %q [S,B,3,H,W] float32 and %q [S,B,L] int64 or int32",
				f.path, name, strings.Join(f.f.Names(), ", "), PixelsName, TokensName)
		}
		if !slices.Contains(dtypes, dtype) {
			return "", nil, fmt.Errorf("%s: tensor %q is %s, want %s", f.path, name, dtype, dtypeList(dtypes))
		}
		return dtype, shape, nil
	}
	_, px, err := info(PixelsName, weights.F32)
	if err != nil {
		return err
	}
	_, tok, err := info(TokensName, weights.I64, weights.I32)
	if err != nil {
		return err
	}
	s := f.shape
	if len(px) != 5 || px[2] != 3 || px[3] != s.ImageSize || px[4] != s.ImageSize {
		return fmt.Errorf("%s: tensor %q has shape %v, want [S,B,3,%d,%d] (the model's image_size is %d)", f.path, PixelsName, px, s.ImageSize, s.ImageSize, s.ImageSize)
	}
	if len(tok) != 3 || tok[2] != s.ContextLength {
		return fmt.Errorf("%s: tensor %q has shape %v, want [S,B,%d] (the model's context_length is %d)", f.path, TokensName, tok, s.ContextLength, s.ContextLength)
	}
	if px[0] != tok[0] || px[1] != tok[1] {
		return fmt.Errorf("%s: tensor %q holds %d batches of %d, tensor %q %d batches of %d; they must agree", f.path, PixelsName, px[0], px[1], TokensName, tok[0], tok[1])
	}
	if px[0] < 1 {
		return fmt.Errorf("%s: tensor %q holds no batches", f.path, PixelsName)
	}
	if px[1] < 2 {
		return fmt.Errorf("%s: tensor %q has batches of %d; a contrastive loss needs at least 2 pairs", f.path, PixelsName, px[1])
	}
	f.steps, f.batch = px[0], px[1]
	return nil
}

func dtypeList(ds []weights.DType) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = string(d)
	}
	return strings.Join(s, " or ")
}

// Close releases the file.
func (f *File) Close() error { return f.f.Close() }

// Path is the file's path, as opened.
func (f *File) Path() string { return f.path }

// Steps is the number of batches S: a run can take at most this many steps.
func (f *File) Steps() int { return f.steps }

// BatchSize is the number of pairs B per batch (per optimiser step).
func (f *File) BatchSize() int { return f.batch }

// Position is where a replay stands: the next batch to read and, within it,
// the next of its micro-batches. After a whole optimiser step Part is 0 and
// Step is the number of steps taken.
type Position struct {
	Step int `json:"step"`
	Part int `json:"part,omitempty"`
}

// Batch is one micro-batch of a file batch.
type Batch struct {
	// Pixels are [Size,3,H,W], row-major.
	Pixels []float32
	// Tokens are [Size,L], row-major.
	Tokens []int32
	// Size is the number of pairs: the file's B divided by the number of parts.
	Size int
	// Next is the position right after this micro-batch.
	Next Position
}

// Batches yields the file's batches from position from on, each split into
// parts consecutive micro-batches of B/parts pairs (parts = 1: whole
// batches). It ends after the last batch; a token id outside the
// vocabulary or a read failure ends it with an error.
func (f *File) Batches(ctx context.Context, from Position, parts int) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		if parts < 1 || f.batch%parts != 0 {
			yield(Batch{}, fmt.Errorf("%s: batches of %d pairs do not split into %d equal micro-batches (train.accum_freq); choose an accum_freq that divides %d", f.path, f.batch, parts, f.batch))
			return
		}
		if from.Step < 0 || from.Step > f.steps || from.Part < 0 || from.Part >= parts {
			yield(Batch{}, fmt.Errorf("%s: position %+v is outside the file's %d batches of %d micro-batches", f.path, from, f.steps, parts))
			return
		}
		micro := f.batch / parts
		for step := from.Step; step < f.steps; step++ {
			if err := ctx.Err(); err != nil {
				yield(Batch{}, err)
				return
			}
			pixels, tokens, err := f.read(step)
			if err != nil {
				yield(Batch{}, err)
				return
			}
			first := 0
			if step == from.Step {
				first = from.Part
			}
			pixSize, tokSize := len(pixels)/f.batch, len(tokens)/f.batch
			for part := first; part < parts; part++ {
				next := Position{Step: step, Part: part + 1}
				if part+1 == parts {
					next = Position{Step: step + 1}
				}
				b := Batch{
					Pixels: pixels[part*micro*pixSize : (part+1)*micro*pixSize],
					Tokens: tokens[part*micro*tokSize : (part+1)*micro*tokSize],
					Size:   micro, Next: next,
				}
				if !yield(b, nil) {
					return
				}
			}
		}
	}
}

// read loads batch step and checks its token ids.
func (f *File) read(step int) ([]float32, []int32, error) {
	pt, err := f.f.Rows(PixelsName, step, 1)
	if err != nil {
		return nil, nil, err
	}
	pixels, err := pt.Float32s()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: tensor %q, batch %d: %w", f.path, PixelsName, step, err)
	}
	tt, err := f.f.Rows(TokensName, step, 1)
	if err != nil {
		return nil, nil, err
	}
	ids, err := tt.Int64s()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: tensor %q, batch %d: %w", f.path, TokensName, step, err)
	}
	tokens := make([]int32, len(ids))
	for i, id := range ids {
		if id < 0 || id >= int64(f.shape.VocabSize) {
			l := f.shape.ContextLength
			return nil, nil, fmt.Errorf("%s: tensor %q, batch %d, row %d, position %d: id %d is outside the model's vocabulary [0, %d)",
				f.path, TokensName, step, i/l, i%l, id, f.shape.VocabSize)
		}
		tokens[i] = int32(id)
	}
	return pixels, tokens, nil
}
