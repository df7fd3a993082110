package weights

import (
	"bytes"
	"maps"
	"testing"
)

// FuzzRead feeds arbitrary bytes to the safetensors reader. It must never
// panic or allocate more than the input can describe, and whatever it
// accepts must survive a write and re-read unchanged (the writer's output
// is canonical, so a second round trip is byte-identical).
//
//	go test -fuzz=FuzzRead -fuzztime=3m ./model/weights
func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(&buf, sampleStateDict(), map[string]string{"format": "pt"}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(rawFile(`{}`, nil))
	f.Add(rawFile(`{"__metadata__":{"a":"b"}}`, nil))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}        }`, []byte{0, 0, 0x80, 0x3f}))
	f.Add(rawFile(`{"a":{"dtype":"BF16","shape":[2,0],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}`, []byte{7}))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 'J', 'F', 'I', 'F', 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		sd, meta, err := Read(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for name, tensor := range sd {
			if tensor.NumElements()*tensor.DType.Size() != len(tensor.Data) {
				t.Fatalf("tensor %q: %s %v with %d bytes", name, tensor.DType, tensor.Shape, len(tensor.Data))
			}
			switch tensor.DType {
			case F32, F16, BF16, F64:
				if _, err := tensor.Float32s(); err != nil {
					t.Fatalf("tensor %q: Float32s: %v", name, err)
				}
			}
		}
		var out bytes.Buffer
		if err := Write(&out, sd, meta); err != nil {
			t.Fatalf("an accepted file does not write back: %v", err)
		}
		sd2, meta2, err := Read(bytes.NewReader(out.Bytes()), int64(out.Len()))
		if err != nil {
			t.Fatalf("a written file does not read back: %v", err)
		}
		if !maps.Equal(meta, meta2) {
			t.Fatalf("metadata %v became %v", meta, meta2)
		}
		if len(sd) != len(sd2) {
			t.Fatalf("%d tensors became %d", len(sd), len(sd2))
		}
		for name, want := range sd {
			if !equalTensors(sd2[name], want) {
				t.Fatalf("tensor %q changed in the round trip", name)
			}
		}
	})
}
