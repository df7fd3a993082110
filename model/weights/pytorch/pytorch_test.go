package pytorch_test

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/model/weights/pytorch"
	"github.com/bmca/bmca/model/weights/pytorch/pytorchtest"
)

// TestRealTorchFiles reads tensors that PyTorch itself saved, in both the
// zip and the legacy layout and several pickle protocols (testdata/README.md).
func TestRealTorchFiles(t *testing.T) {
	floats := []float64{1.2, -3.4, 5.6, -7.8}
	for _, tc := range []struct {
		file  string
		dtype weights.DType
	}{
		{"tensor_float32_proto2_zip.pt", weights.F32},
		{"tensor_float32_proto2.pt", weights.F32},
		{"tensor_float16_proto4_zip.pt", weights.F16},
		{"tensor_bfloat16_proto5_zip.pt", weights.BF16},
		{"tensor_bfloat16_proto4.pt", weights.BF16},
		{"tensor_float64_proto3.pt", weights.F64},
		{"tensor_int64_proto5_zip.pt", weights.I64},
		{"tensor_bool_proto2_zip.pt", weights.BOOL},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := pytorch.Open(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			pt, ok := f.Root().(*pytorch.Tensor)
			if !ok {
				t.Fatalf("root is %s, want a tensor", pytorch.TypeName(f.Root()))
			}
			got, err := pt.Read()
			if err != nil {
				t.Fatal(err)
			}
			if got.DType != tc.dtype || !slices.Equal(got.Shape, []int{4}) {
				t.Fatalf("got %s %v, want %s [4]", got.DType, got.Shape, tc.dtype)
			}
			switch tc.dtype {
			case weights.I64:
				v, _ := got.Int64s()
				if !slices.Equal(v, []int64{1, -2, 3, -4}) {
					t.Errorf("values %v", v)
				}
			case weights.BOOL:
				if !slices.Equal(got.Data, []byte{1, 0, 1, 0}) {
					t.Errorf("values %v", got.Data)
				}
			default:
				// The file holds the values rounded to its dtype; compare
				// with the same rounding.
				want, _ := weights.FromFloat32s([]int{4}, []float32{1.2, -3.4, 5.6, -7.8}).To(tc.dtype)
				if tc.dtype == weights.F64 {
					v, _ := got.To(weights.F64)
					for i, x := range floats {
						if g := math.Float64frombits(leUint64(v.Data[8*i:])); g != x {
							t.Errorf("element %d = %v, want %v", i, g, x)
						}
					}
					return
				}
				if !slices.Equal(got.Data, want.Data) {
					t.Errorf("bytes %v, want %v", got.Data, want.Data)
				}
			}
		})
	}
}

func leUint64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

// TestUnsupportedDType decodes a torch.int16 tensor (no safetensors dtype
// here) and refuses only to read it, naming the storage type.
func TestUnsupportedDType(t *testing.T) {
	f, err := pytorch.Open("testdata/tensor_int16_proto2_zip.pt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pt := f.Root().(*pytorch.Tensor)
	if pt.StorageType != "ShortStorage" || pt.DType != "" {
		t.Fatalf("storage %q dtype %q", pt.StorageType, pt.DType)
	}
	if _, err := pt.Read(); err == nil {
		t.Fatal("reading an int16 tensor succeeded")
	}
}

func tensor(shape []int, v ...float32) weights.Tensor { return weights.FromFloat32s(shape, v) }

// TestWrittenCheckpoints round-trips an OpenCLIP-style training checkpoint
// (nested dicts, a DDP "module." prefix, an argparse.Namespace, strided
// views sharing a storage) through both layouts.
func TestWrittenCheckpoints(t *testing.T) {
	base := tensor([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	sd := pytorchtest.NewOrderedDict(
		"module.a", tensor([]int{2, 2}, 1, 2, 3, 4),
		"module.scalar", tensor(nil, 2.5),
		"module.t", pytorchtest.View{Base: &base, Shape: []int{3, 2}, Stride: []int{1, 3}}, // base.T
		"module.row", pytorchtest.View{Base: &base, Offset: 3, Shape: []int{3}, Stride: []int{1}}, // base[1]
		"module.empty", tensor([]int{0, 4}),
	)
	root := pytorchtest.NewDict(
		"epoch", 7,
		"name", "run",
		"args", pytorchtest.Object{Module: "argparse", Name: "Namespace", State: pytorchtest.NewDict("lr", 1e-6)},
		"state_dict", sd,
		"optimizer", pytorchtest.NewDict("state", pytorchtest.NewDict(), "param_groups", pytorchtest.Tuple{}),
	)
	want := map[string][]float32{
		"module.a": {1, 2, 3, 4}, "module.scalar": {2.5}, "module.t": {1, 4, 2, 5, 3, 6},
		"module.row": {4, 5, 6}, "module.empty": {},
	}
	for _, opts := range []pytorchtest.Options{{}, {Legacy: true}, {Deflate: true}} {
		path := filepath.Join(t.TempDir(), "epoch_7.pt")
		if err := pytorchtest.WriteFile(path, root, opts); err != nil {
			t.Fatal(err)
		}
		f, err := pytorch.Open(path)
		if err != nil {
			t.Fatalf("%+v: %v", opts, err)
		}
		items, ok := pytorch.DictEntries(f.Root())
		if !ok || len(items) != 5 {
			t.Fatalf("%+v: root %s with %d items", opts, pytorch.TypeName(f.Root()), len(items))
		}
		if items[0].Key != "epoch" || items[0].Value != 7 || items[1].Value != "run" {
			t.Errorf("%+v: items %v", opts, items[:2])
		}
		if ns, ok := items[2].Value.(*pytorch.Object); !ok || ns.Name != "Namespace" {
			t.Errorf("%+v: args decoded as %s", opts, pytorch.TypeName(items[2].Value))
		}
		entries, ok := pytorch.DictEntries(items[3].Value)
		if !ok || len(entries) != len(want) {
			t.Fatalf("%+v: state_dict %s", opts, pytorch.TypeName(items[3].Value))
		}
		for _, e := range entries {
			pt := e.Value.(*pytorch.Tensor)
			got, err := pt.Read()
			if err != nil {
				t.Fatalf("%+v: %s: %v", opts, e.Key, err)
			}
			v, _ := got.Float32s()
			if !slices.Equal(v, want[e.Key.(string)]) {
				t.Errorf("%+v: %s = %v, want %v", opts, e.Key, v, want[e.Key.(string)])
			}
		}
		f.Close()
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	ts := filepath.Join(dir, "jit.pt")
	if err := pytorchtest.WriteFile(ts, pytorchtest.NewDict(), pytorchtest.Options{TorchScript: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := pytorch.Open(ts); !errors.Is(err, pytorch.ErrTorchScript) {
		t.Errorf("TorchScript archive: %v", err)
	}
	junk := filepath.Join(dir, "junk.bin")
	if err := os.WriteFile(junk, []byte("not a checkpoint at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pytorch.Open(junk); !errors.Is(err, pytorch.ErrNotPyTorch) {
		t.Errorf("junk: %v", err)
	}
	// A zip checkpoint cut short loses its central directory.
	full := filepath.Join(dir, "full.pt")
	if err := pytorchtest.WriteFile(full, pytorchtest.NewOrderedDict("w", tensor([]int{64}, make([]float32, 64)...)), pytorchtest.Options{}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(full)
	cut := filepath.Join(dir, "cut.pt")
	os.WriteFile(cut, data[:len(data)/2], 0o644)
	if _, err := pytorch.Open(cut); err == nil {
		t.Error("truncated zip opened")
	}
	// A legacy file cut inside its storages.
	legacy := filepath.Join(dir, "legacy.pt")
	if err := pytorchtest.WriteFile(legacy, pytorchtest.NewOrderedDict("w", tensor([]int{64}, make([]float32, 64)...)), pytorchtest.Options{Legacy: true}); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(legacy)
	os.WriteFile(cut, data[:len(data)-10], 0o644)
	if _, err := pytorch.Open(cut); err == nil {
		t.Error("truncated legacy file opened")
	}
}

// TestDeclaredLengthsAreChecked: a pickle declares the length of each
// string or bytes argument, and the unpickler allocates it before reading.
// A file that claims more than it holds (here 2^50 bytes, in 60 bytes of
// pickle) is refused instead of exhausting memory, in both layouts.
func TestDeclaredLengthsAreChecked(t *testing.T) {
	huge := append([]byte{0x80, 2, 0x8e}, binary.LittleEndian.AppendUint64(nil, 1<<50)...) // BINBYTES8
	huge = append(huge, "xyz."...)
	dir := t.TempDir()

	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "archive/data.pkl", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(huge)
	zw.Close()

	// The legacy stream: magic, protocol version, system info, then the object.
	var legacy bytes.Buffer
	if err := pytorchtest.Write(&legacy, pytorchtest.NewDict(), pytorchtest.Options{Legacy: true}); err != nil {
		t.Fatal(err)
	}
	head := legacy.Bytes()
	stops := 0
	for i, b := range head { // keep the first three pickles
		if b == '.' {
			if stops++; stops == 3 {
				head = head[:i+1]
				break
			}
		}
	}
	for name, data := range map[string][]byte{"zip.pt": zipped.Bytes(), "legacy.pt": append(head, huge...)} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := pytorch.Open(p); !errors.Is(err, pytorch.ErrNotPyTorch) || !strings.Contains(err.Error(), "past the end") {
			t.Errorf("%s: %v, want a refusal naming the length past the end", name, err)
		}
	}
}
