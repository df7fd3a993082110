package pytorch_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/model/weights/pytorch"
	"github.com/bmca/bmca/model/weights/pytorch/pytorchtest"
	"github.com/nlpodyssey/gopickle/types"
)

// FuzzOpen feeds arbitrary bytes to the torch.save reader as a file. It
// must never panic, and every tensor of a file it accepts either reads,
// with as many bytes as its shape needs, or fails with an error.
//
//	go test -fuzz=FuzzOpen -fuzztime=3m ./model/weights/pytorch
func FuzzOpen(f *testing.F) {
	for _, name := range []string{"tensor_float32_proto2_zip.pt", "tensor_float32_proto2.pt", "tensor_bfloat16_proto4.pt",
		"tensor_float64_proto3.pt", "tensor_int64_proto5_zip.pt"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	base := tensor([]int{2, 3}, 1, 2, 3, 4, 5, 6)
	root := pytorchtest.NewDict(
		"epoch", 7,
		"args", pytorchtest.Object{Module: "argparse", Name: "Namespace", State: pytorchtest.NewDict("lr", 1e-6)},
		"state_dict", pytorchtest.NewOrderedDict(
			"module.a", tensor([]int{2, 2}, 1, 2, 3, 4),
			"module.t", pytorchtest.View{Base: &base, Shape: []int{3, 2}, Stride: []int{1, 3}},
			"module.empty", tensor([]int{0, 4}),
		),
	)
	for _, opts := range []pytorchtest.Options{{}, {Legacy: true}, {Deflate: true}, {TorchScript: true}} {
		var buf bytes.Buffer
		if err := pytorchtest.Write(&buf, root, opts); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F', 0})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := os.CreateTemp(dir, "fuzz-*.pt")
		if err != nil {
			t.Fatal(err)
		}
		path := file.Name()
		defer os.Remove(path)
		_, err = file.Write(data)
		if cerr := file.Close(); err != nil || cerr != nil {
			t.Fatal(err, cerr)
		}
		pf, err := pytorch.Open(path)
		if err != nil {
			return
		}
		defer pf.Close()
		walk(pf.Root(), map[any]bool{}, func(pt *pytorch.Tensor) {
			got, err := pt.Read()
			if err != nil {
				return
			}
			if got.DType != pt.DType || len(got.Data) != pt.NumElements()*pt.DType.Size() {
				t.Fatalf("read %s %v with %d bytes from %s %v", got.DType, got.Shape, len(got.Data), pt.DType, pt.Shape)
			}
			if got.DType == weights.F32 || got.DType == weights.F16 || got.DType == weights.BF16 {
				if _, err := got.Float32s(); err != nil {
					t.Fatal(err)
				}
			}
		})
	})
}

// walk calls visit for every tensor in a decoded object tree, once per
// container (pickles can hold cycles).
func walk(v any, seen map[any]bool, visit func(*pytorch.Tensor)) {
	var children []any
	switch x := v.(type) {
	case *pytorch.Tensor:
		visit(x)
		return
	case *types.List:
		if seen[x] {
			return
		}
		seen[x] = true
		children = *x
	case *types.Tuple:
		if seen[x] {
			return
		}
		seen[x] = true
		children = *x
	case *pytorch.Object:
		if seen[x] {
			return
		}
		seen[x] = true
		children = append(append(children, x.Args...), x.State)
	default:
		entries, ok := pytorch.DictEntries(v)
		if !ok || seen[v] {
			return
		}
		seen[v] = true
		for _, e := range entries {
			children = append(children, e.Key, e.Value)
		}
	}
	for _, c := range children {
		walk(c, seen, visit)
	}
}
