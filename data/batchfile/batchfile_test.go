package batchfile

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/model/weights"
)

var small = Shape{ImageSize: 2, ContextLength: 3, VocabSize: 100}

// numbered is a file of steps batches of batch pairs whose pixel and token
// values encode (step, pair, element), so every read can be checked.
func numbered(steps, batch int) (pixels []float32, tokens []int64) {
	for s := range steps {
		for b := range batch {
			for e := range 3 * 2 * 2 {
				pixels = append(pixels, float32(s*1000+b*100+e))
			}
			for e := range 3 {
				tokens = append(tokens, int64(s*10+b+e))
			}
		}
	}
	return pixels, tokens
}

func write(t *testing.T, sd weights.StateDict) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "batches.safetensors")
	if err := weights.WriteFile(path, sd, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

func goodFile(t *testing.T, tokenDType weights.DType) string {
	pixels, tokens := numbered(3, 4)
	tok := weights.FromInt64s([]int{3, 4, 3}, tokens)
	if tokenDType == weights.I32 {
		ids := make([]int32, len(tokens))
		for i, v := range tokens {
			ids[i] = int32(v)
		}
		tok = weights.Tensor{DType: weights.I32, Shape: []int{3, 4, 3}, Data: int32Bytes(ids)}
	}
	return write(t, weights.StateDict{PixelsName: weights.FromFloat32s([]int{3, 4, 3, 2, 2}, pixels), TokensName: tok})
}

func int32Bytes(v []int32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		u := uint32(x)
		out[4*i], out[4*i+1], out[4*i+2], out[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return out
}

func collect(t *testing.T, f *File, from Position, parts int) []Batch {
	t.Helper()
	var out []Batch
	for b, err := range f.Batches(context.Background(), from, parts) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// TestReplayInOrder checks that every batch comes back whole and in file
// order, split into consecutive micro-batches, with positions that resume.
func TestReplayInOrder(t *testing.T) {
	for _, dtype := range []weights.DType{weights.I64, weights.I32} {
		f, err := Open(goodFile(t, dtype), small)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if f.Steps() != 3 || f.BatchSize() != 4 {
			t.Fatalf("Steps, BatchSize = %d, %d, want 3, 4", f.Steps(), f.BatchSize())
		}
		allPixels, allTokens := numbered(3, 4)
		for _, parts := range []int{1, 2, 4} {
			got := collect(t, f, Position{}, parts)
			if len(got) != 3*parts {
				t.Fatalf("%s, %d parts: %d micro-batches, want %d", dtype, parts, len(got), 3*parts)
			}
			var pixels []float32
			var tokens []int64
			for i, b := range got {
				if b.Size != 4/parts || len(b.Pixels) != b.Size*12 || len(b.Tokens) != b.Size*3 {
					t.Fatalf("micro-batch %d: size %d with %d pixels, %d tokens", i, b.Size, len(b.Pixels), len(b.Tokens))
				}
				pixels = append(pixels, b.Pixels...)
				for _, id := range b.Tokens {
					tokens = append(tokens, int64(id))
				}
				want := Position{Step: i / parts, Part: i%parts + 1}
				if i%parts == parts-1 {
					want = Position{Step: i/parts + 1}
				}
				if b.Next != want {
					t.Errorf("%d parts, micro-batch %d: Next = %+v, want %+v", parts, i, b.Next, want)
				}
			}
			if !slices.Equal(pixels, allPixels) || !slices.Equal(tokens, allTokens) {
				t.Errorf("%s, %d parts: the micro-batches do not concatenate to the file's batches in order", dtype, parts)
			}
			// Resuming from any position gives exactly the rest.
			for i, b := range got {
				rest := collect(t, f, b.Next, parts)
				if len(rest) != len(got)-i-1 {
					t.Fatalf("resume from %+v: %d micro-batches, want %d", b.Next, len(rest), len(got)-i-1)
				}
				if len(rest) > 0 && !slices.Equal(rest[0].Pixels, got[i+1].Pixels) {
					t.Errorf("resume from %+v: first micro-batch differs", b.Next)
				}
			}
		}
	}
}

func TestStopsEarlyAndOnCancel(t *testing.T) {
	f, err := Open(goodFile(t, weights.I64), small)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for range f.Batches(context.Background(), Position{}, 1) {
		n++
		break
	}
	if n != 1 {
		t.Fatal("breaking out of the loop did not stop it")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, err := range f.Batches(ctx, Position{}, 1) {
		if err == nil {
			t.Fatal("a cancelled context still yielded a batch")
		}
		break
	}
}

func TestOpenErrors(t *testing.T) {
	pixels, tokens := numbered(3, 4)
	px := weights.FromFloat32s([]int{3, 4, 3, 2, 2}, pixels)
	tok := weights.FromInt64s([]int{3, 4, 3}, tokens)
	cases := []struct {
		name string
		sd   weights.StateDict
		want []string
	}{
		{"no pixels", weights.StateDict{"images": px, TokensName: tok}, []string{`no tensor "pixels"`, "images"}},
		{"no tokens", weights.StateDict{PixelsName: px}, []string{`no tensor "tokens"`}},
		{"pixels dtype", weights.StateDict{PixelsName: weights.FromInt64s([]int{3, 4, 3, 2, 2}, make([]int64, len(pixels))), TokensName: tok}, []string{`"pixels" is I64, want F32`}},
		{"tokens dtype", weights.StateDict{PixelsName: px, TokensName: weights.FromFloat32s([]int{3, 4, 3}, make([]float32, len(tokens)))}, []string{`"tokens" is F32, want I64 or I32`}},
		{"image size", weights.StateDict{PixelsName: weights.FromFloat32s([]int{3, 4, 3, 1, 4}, pixels), TokensName: tok}, []string{`"pixels" has shape [3 4 3 1 4], want [S,B,3,2,2]`}},
		{"pixels rank", weights.StateDict{PixelsName: weights.FromFloat32s([]int{12, 3, 2, 2}, pixels), TokensName: tok}, []string{`"pixels" has shape [12 3 2 2]`}},
		{"context", weights.StateDict{PixelsName: px, TokensName: weights.FromInt64s([]int{3, 2, 6}, tokens)}, []string{`"tokens" has shape [3 2 6], want [S,B,3]`}},
		{"batches disagree", weights.StateDict{PixelsName: px, TokensName: weights.FromInt64s([]int{2, 6, 3}, tokens)}, []string{"3 batches of 4", "2 batches of 6"}},
		{"batch of one", weights.StateDict{PixelsName: weights.FromFloat32s([]int{12, 1, 3, 2, 2}, pixels), TokensName: weights.FromInt64s([]int{12, 1, 3}, tokens)}, []string{"at least 2 pairs"}},
	}
	for _, c := range cases {
		path := write(t, c.sd)
		f, err := Open(path, small)
		if err == nil {
			f.Close()
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, want := range append(c.want, path) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q lacks %q", c.name, err, want)
			}
		}
	}
}

func TestReadErrors(t *testing.T) {
	pixels, tokens := numbered(3, 4)
	tokens[4*3+2*3+1] = 100 // batch 1, row 2, position 1: one past the vocabulary
	path := write(t, weights.StateDict{PixelsName: weights.FromFloat32s([]int{3, 4, 3, 2, 2}, pixels), TokensName: weights.FromInt64s([]int{3, 4, 3}, tokens)})
	f, err := Open(path, small)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got error
	n := 0
	for _, err := range f.Batches(context.Background(), Position{}, 1) {
		if err != nil {
			got = err
			break
		}
		n++
	}
	if n != 1 || got == nil || !strings.Contains(got.Error(), `"tokens", batch 1, row 2, position 1: id 100 is outside`) || !strings.Contains(got.Error(), path) {
		t.Errorf("after %d batches: error %v, want the bad id named with file, tensor, batch, row and position", n, got)
	}
	for _, c := range []struct {
		from  Position
		parts int
		want  string
	}{{Position{}, 3, "do not split into 3"}, {Position{Step: 4}, 1, "outside the file's 3 batches"}, {Position{Step: 1, Part: 2}, 2, "outside"}} {
		for _, err := range f.Batches(context.Background(), c.from, c.parts) {
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("from %+v in %d parts: error %v, want %q", c.from, c.parts, err, c.want)
			}
			break
		}
	}
}
