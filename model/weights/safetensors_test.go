package weights

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/testshared"
)

// sampleStateDict holds one tensor of every dtype, a 0-d tensor, an empty
// tensor and a name that needs JSON escaping.
func sampleStateDict() StateDict {
	seq := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7 + 3)
		}
		return b
	}
	return StateDict{
		"visual.conv1.weight":  FromFloat32s([]int{2, 3, 1, 1}, []float32{1, -2.5, 0.1, float32(math.Inf(1)), 0, float32(math.Copysign(0, -1))}),
		"logit_scale":          FromFloat32s([]int{}, []float32{2.6592600}),
		"half":                 {DType: F16, Shape: []int{3}, Data: seq(6)},
		"brain":                {DType: BF16, Shape: []int{2, 2}, Data: seq(8)},
		"double":               {DType: F64, Shape: []int{2}, Data: seq(16)},
		"tokens":               FromInt64s([]int{1, 3}, []int64{49406, 320, 49407}),
		"int32":                {DType: I32, Shape: []int{1}, Data: seq(4)},
		"bytes":                {DType: U8, Shape: []int{5}, Data: seq(5)},
		"signed":               {DType: I8, Shape: []int{5, 1}, Data: seq(5)},
		"mask":                 {DType: BOOL, Shape: []int{2}, Data: []byte{1, 0}},
		"empty":                {DType: F32, Shape: []int{0, 4}, Data: []byte{}},
		"odd \"name\"\n\\ é ✓": FromFloat32s([]int{1}, []float32{7}),
	}
}

func equalTensors(a, b Tensor) bool {
	return a.DType == b.DType && slices.Equal(a.Shape, b.Shape) && bytes.Equal(a.Data, b.Data)
}

func checkSameStateDict(t *testing.T, got, want StateDict) {
	t.Helper()
	if !slices.Equal(got.Names(), want.Names()) {
		t.Fatalf("names = %v, want %v", got.Names(), want.Names())
	}
	for name, w := range want {
		if g := got[name]; !equalTensors(g, w) {
			t.Errorf("tensor %q = %s %v %d bytes, want %s %v %d bytes", name, g.DType, g.Shape, len(g.Data), w.DType, w.Shape, len(w.Data))
		}
	}
}

func TestRoundTripEveryDType(t *testing.T) {
	sd := sampleStateDict()
	meta := map[string]string{"format": "pt", "note": "ünïcode \"quoted\""}
	path := filepath.Join(t.TempDir(), "open_clip_model.safetensors")
	if err := WriteFile(path, sd, meta); err != nil {
		t.Fatal(err)
	}
	got, gotMeta, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkSameStateDict(t, got, sd)
	if !maps.Equal(gotMeta, meta) {
		t.Errorf("metadata = %v, want %v", gotMeta, meta)
	}

	// The same input gives the same bytes, whatever the map order.
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		var buf bytes.Buffer
		if err := Write(&buf, maps.Clone(sd), maps.Clone(meta)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), first) {
			t.Fatal("Write output differs between runs")
		}
	}
	hlen := binary.LittleEndian.Uint64(first)
	if hlen%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", hlen)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}

	// Read from an io.ReaderAt, and without metadata.
	var buf bytes.Buffer
	if err := Write(&buf, sd, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), metadataKey) {
		t.Error("empty metadata should leave __metadata__ out")
	}
	got, gotMeta, err = Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	checkSameStateDict(t, got, sd)
	if len(gotMeta) != 0 {
		t.Errorf("metadata = %v, want none", gotMeta)
	}
}

func TestEmptyStateDict(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, StateDict{}, nil); err != nil {
		t.Fatal(err)
	}
	if want := "\x08\x00\x00\x00\x00\x00\x00\x00{}      "; buf.String() != want {
		t.Errorf("empty file = %q, want %q", buf.String(), want)
	}
	sd, _, err := Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil || len(sd) != 0 {
		t.Errorf("Read = %v, %v", sd, err)
	}
}

func TestWriteRejectsBadTensors(t *testing.T) {
	tests := map[string]StateDict{
		"unknown dtype":      {"a": {DType: "F8_E4M3", Shape: []int{1}, Data: []byte{0}}},
		"needs 16 bytes":     {"a": {DType: F32, Shape: []int{2, 2}, Data: make([]byte, 12)}},
		"negative dimension": {"a": {DType: F32, Shape: []int{-1}, Data: nil}},
		"reserved":           {metadataKey: FromFloat32s([]int{1}, []float32{1})},
		"not valid UTF-8":    {"a\xff": FromFloat32s([]int{1}, []float32{1})},
	}
	for want, sd := range tests {
		path := filepath.Join(t.TempDir(), "w.safetensors")
		err := WriteFile(path, sd, nil)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("WriteFile error = %v, want one naming %s and saying %q", err, path, want)
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 0 {
			t.Errorf("%s: files left behind: %v", want, entries)
		}
	}
}

func TestOpenLazy(t *testing.T) {
	sd := sampleStateDict()
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := WriteFile(path, sd, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !slices.Equal(f.Names(), sd.Names()) {
		t.Errorf("Names = %v", f.Names())
	}
	dt, shape, ok := f.Info("visual.conv1.weight")
	if !ok || dt != F32 || !slices.Equal(shape, []int{2, 3, 1, 1}) {
		t.Errorf("Info = %s %v %v", dt, shape, ok)
	}
	if _, _, ok := f.Info("nope"); ok {
		t.Error("Info of a missing name said ok")
	}
	tensor, err := f.Tensor("tokens")
	if err != nil || !equalTensors(tensor, sd["tokens"]) {
		t.Errorf("Tensor(tokens) = %v, %v", tensor, err)
	}
	_, err = f.Tensor("nope")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Tensor(nope) error = %v", err)
	}
	if f.Metadata()["format"] != "pt" {
		t.Errorf("Metadata = %v", f.Metadata())
	}
}

func TestReferenceTinyWeights(t *testing.T) {
	path := testshared.Path(t, "reference/openclip/tiny/weights.safetensors")
	sd, meta, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(sd) != 62 {
		t.Errorf("%d tensors, want 62", len(sd))
	}
	if !maps.Equal(meta, map[string]string{"format": "pt"}) {
		t.Errorf("metadata = %v", meta)
	}
	shapes := map[string][]int{
		"visual.conv1.weight":                              {64, 3, 8, 8},
		"token_embedding.weight":                           {49408, 64},
		"logit_scale":                                      {},
		"text_projection":                                  {64, 32},
		"visual.proj":                                      {64, 32},
		"visual.class_embedding":                           {64},
		"visual.positional_embedding":                      {17, 64},
		"positional_embedding":                             {77, 64},
		"transformer.resblocks.0.attn.in_proj_weight":      {192, 64},
		"visual.transformer.resblocks.1.mlp.c_proj.weight": {64, 256},
	}
	for name, shape := range shapes {
		tensor, ok := sd[name]
		if !ok || tensor.DType != F32 || !slices.Equal(tensor.Shape, shape) {
			t.Errorf("%s: %s %v (present %v), want F32 %v", name, tensor.DType, tensor.Shape, ok, shape)
		}
	}
	scale, err := sd["logit_scale"].Float32s()
	if err != nil || len(scale) != 1 || math.Float32bits(scale[0]) != 0x402a3151 {
		t.Fatalf("logit_scale = %v, %v; want [2.65926] (log(1/0.07), bits 0x402a3151)", scale, err)
	}
	// Bit patterns read independently from the file with Python's struct.
	conv, _ := sd["visual.conv1.weight"].Float32s()
	emb, _ := sd["token_embedding.weight"].Float32s()
	for _, c := range []struct {
		name string
		got  float32
		want uint32
	}{
		{"conv1[0]", conv[0], 0x3d620009},
		{"conv1[2]", conv[2], 0xbc8a80e2},
		{"conv1[last]", conv[len(conv)-1], 0xbd2bb883},
		{"token_embedding[last]", emb[len(emb)-1], 0x3c01d77d},
	} {
		if math.Float32bits(c.got) != c.want {
			t.Errorf("%s = %#08x, want %#08x", c.name, math.Float32bits(c.got), c.want)
		}
	}

	// Writing it back reproduces PyTorch/safetensors' file byte for byte.
	original, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, sd, meta); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), original) {
		t.Errorf("re-written file differs from the reference (%d vs %d bytes)", buf.Len(), len(original))
	}
	out := filepath.Join(t.TempDir(), "open_clip_model.safetensors")
	if err := WriteFile(out, sd, meta); err != nil {
		t.Fatal(err)
	}
	again, meta2, err := ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	checkSameStateDict(t, again, sd)
	if !maps.Equal(meta2, meta) {
		t.Errorf("metadata after rewrite = %v", meta2)
	}
}

func TestReferenceTinyCases(t *testing.T) {
	path := testshared.Path(t, "reference/openclip/tiny/cases.safetensors")
	sd, _, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tokens := sd["tokens"]
	if tokens.DType != I64 || !slices.Equal(tokens.Shape, []int{5, 77}) {
		t.Fatalf("tokens: %s %v, want I64 [5 77]", tokens.DType, tokens.Shape)
	}
	ids, err := tokens.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids[:4], []int64{49406, 24092, 33396, 38431}) || !slices.Equal(ids[77:81], []int64{49406, 13731, 928, 734}) {
		t.Errorf("tokens start %v / %v", ids[:4], ids[77:81])
	}
	pool, _ := sd["text_pool_index"].Int64s()
	if !slices.Equal(pool, []int64{31, 76, 67, 19, 25}) {
		t.Errorf("text_pool_index = %v", pool)
	}
	edge, _ := sd["text_pool_index_edge"].Int64s()
	if !slices.Equal(edge, []int64{1, 6, 76}) {
		t.Errorf("text_pool_index_edge = %v", edge)
	}
	for _, name := range []string{"pixels", "image_features", "logits_per_image"} {
		if sd[name].DType != F32 {
			t.Errorf("%s dtype %s, want F32", name, sd[name].DType)
		}
	}
	ls, _ := sd["logit_scale"].Float32s()
	if len(ls) != 1 || math.Abs(float64(ls[0])-1/0.07) > 1e-5 {
		t.Errorf("logit_scale = %v, want [14.285714]", ls)
	}
	original, _ := os.ReadFile(path)
	var buf bytes.Buffer
	if err := Write(&buf, sd, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), original) {
		t.Error("re-written cases.safetensors differs from the reference")
	}
}

// rawFile assembles a safetensors file from a literal header and data.
func rawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func TestCorruptFiles(t *testing.T) {
	good := func() []byte {
		var buf bytes.Buffer
		sd := StateDict{
			"a": FromFloat32s([]int{2}, []float32{1, 2}),
			"b": FromFloat32s([]int{1}, []float32{3}),
		}
		if err := Write(&buf, sd, nil); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}()
	data12 := make([]byte, 12)
	tests := []struct {
		name    string
		file    []byte
		tensor  string // expected in the message, "" for none
		message string
	}{
		{"empty file", nil, "", "too short for the 8-byte header length"},
		{"truncated data", good[:len(good)-2], "b", "reach past the end of the data"},
		{"truncated header", good[:20], "", "is beyond the end of the file (20 bytes, so at most 12)"},
		{"header too long", binary.LittleEndian.AppendUint64(nil, 1<<40), "", "beyond the end of the file"},
		{"not JSON", rawFile("hello!!!", nil), "", "header is not a JSON object"},
		{"JSON array", rawFile("[1,2,3] ", nil), "", "header is not a JSON object"},
		{"bad JSON", rawFile(`{"a":{"dtype":"F32",`, nil), "a", "bad JSON in header entry"},
		{"trailing JSON", rawFile(`{}{}`, nil), "", "unexpected data after"},
		{"invalid UTF-8", rawFile("{\"\xff\":1}", nil), "", "not valid UTF-8"},
		{"unknown dtype", rawFile(`{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}`, []byte{0}), "a", `unknown dtype "F8_E4M3"`},
		{"missing shape", rawFile(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, data12[:4]), "a", `no "shape"`},
		{"unknown field", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, data12[:4]), "a", `unknown field "x"`},
		{"negative dim", rawFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, data12[:4]), "a", "invalid dimension -1"},
		{"fractional dim", rawFile(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, data12[:4]), "a", "bad JSON in header entry"},
		{"three offsets", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, data12[:4]), "a", "must be two numbers"},
		{"reversed offsets", rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, data12[:4]), "a", "not an ordered range"},
		{"size mismatch", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}}`, data12), "a", "hold 12 bytes, but F32 shape [2] needs 8"},
		{"out of range", rawFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, data12), "a", "reach past the end of the data (12 bytes)"},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, data12), "b", `overlap those of tensor "a" [0,8]`},
		{"same range twice", rawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}`, data12), "b", `overlap those of tensor "a"`},
		{"hole", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, data12), "b", `hole of 4 bytes after tensor "a"`},
		{"gap at start", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, data12), "a", "leave the first 4 bytes"},
		{"trailing bytes", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, data12), "", "the last 4 bytes of the data belong to no tensor"},
		{"duplicate name", rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, data12[:8]), "a", "appears twice"},
		{"metadata not strings", rawFile(`{"__metadata__":{"n":1}}`, nil), "", "must map strings to strings"},
	}
	dir := t.TempDir()
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("case%d.safetensors", i))
			if err := os.WriteFile(path, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err := ReadFile(path)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("ReadFile error = %v, want a *FormatError", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, tc.message) {
				t.Errorf("error %q should contain the path and %q", msg, tc.message)
			}
			if fe.Tensor != tc.tensor {
				t.Errorf("error names tensor %q, want %q", fe.Tensor, tc.tensor)
			}
			// The same problem through Read, which has no path.
			osf, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer osf.Close()
			st, _ := osf.Stat()
			if _, _, err := Read(osf, st.Size()); err == nil || !strings.Contains(err.Error(), tc.message) {
				t.Errorf("Read error = %v, want one saying %q", err, tc.message)
			}
		})
	}
}

func TestHeaderOverLimit(t *testing.T) {
	// A sparse 1 GiB file whose header length claims just over 100 MB.
	path := filepath.Join(t.TempDir(), "huge.safetensors")
	if err := os.WriteFile(path, binary.LittleEndian.AppendUint64(nil, maxHeaderSize+8), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 1<<30); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	want := "header length 100000008 exceeds the 100000000-byte limit"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
		t.Errorf("Open error = %v, want one with the path and %q", err, want)
	}
}

// failingReaderAt serves the header but fails reading tensor data.
type failingReaderAt struct {
	b      []byte
	failAt int64
}

func (r failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.failAt {
		return 0, errors.New("disk on fire")
	}
	return bytes.NewReader(r.b).ReadAt(p, off)
}

func TestReadIOError(t *testing.T) {
	var buf bytes.Buffer
	if err := Write(&buf, StateDict{"w": FromFloat32s([]int{1}, []float32{1})}, nil); err != nil {
		t.Fatal(err)
	}
	_, _, err := Read(failingReaderAt{buf.Bytes(), int64(buf.Len() - 4)}, int64(buf.Len()))
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), `"w"`) {
		t.Errorf("error = %v", err)
	}
}

// TestWriteFileKeepsOldFileOnError: invalid tensors fail before anything
// is written, and the previous file stays (the atomic replacement itself
// is package atomicfile's, tested there).
func TestWriteFileKeepsOldFileOnError(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "open_clip_model.safetensors")
	old := []byte("the previous checkpoint")
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := StateDict{"a": {DType: F32, Shape: []int{3}, Data: []byte{1}}}
	if err := WriteFile(path, bad, nil); err == nil {
		t.Fatal("WriteFile of a bad tensor succeeded")
	}
	checkDir(t, dir, path, old)
}

// checkDir asserts that dir holds exactly path, with content want.
func checkDir(t *testing.T, dir, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s = %q, %v; want %q", path, got, err, want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != filepath.Base(path) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only %s", names, filepath.Base(path))
	}
}

func TestRows(t *testing.T) {
	values := make([]float32, 4*2*3)
	for i := range values {
		values[i] = float32(i)
	}
	sd := StateDict{"batches": FromFloat32s([]int{4, 2, 3}, values), "scalar": FromFloat32s([]int{}, []float32{1}), "before": FromInt64s([]int{2}, []int64{5, 6})}
	path := filepath.Join(t.TempDir(), "b.safetensors")
	if err := WriteFile(path, sd, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, c := range []struct{ first, count int }{{0, 4}, {1, 2}, {3, 1}, {2, 0}} {
		got, err := f.Rows("batches", c.first, c.count)
		if err != nil {
			t.Fatalf("Rows(%d, %d): %v", c.first, c.count, err)
		}
		want := FromFloat32s([]int{c.count, 2, 3}, values[c.first*6:(c.first+c.count)*6])
		if !equalTensors(got, want) {
			t.Errorf("Rows(%d, %d) = %v, want %v", c.first, c.count, got, want)
		}
	}
	for _, c := range []struct {
		name         string
		first, count int
	}{{"batches", 3, 2}, {"batches", -1, 1}, {"scalar", 0, 1}, {"nope", 0, 1}} {
		if _, err := f.Rows(c.name, c.first, c.count); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("Rows(%s, %d, %d) error = %v, want one naming the file and tensor", c.name, c.first, c.count, err)
		}
	}
}
