package preprocess

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"
)

// tensor is one entry of a safetensors file, raw little-endian bytes.
type tensor struct {
	DType   string `json:"dtype"`
	Shape   []int  `json:"shape"`
	Offsets [2]int `json:"data_offsets"`
	data    []byte
}

// float32s decodes an F32 tensor.
func (t tensor) float32s() ([]float32, error) {
	if t.DType != "F32" || len(t.data)%4 != 0 {
		return nil, fmt.Errorf("tensor is %s with %d bytes, want F32", t.DType, len(t.data))
	}
	out := make([]float32, len(t.data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.data[4*i:]))
	}
	return out, nil
}

// readSafetensors is the minimal reader the tests need: an 8-byte
// little-endian header length, a JSON header {name: {dtype, shape,
// data_offsets}} (plus "__metadata__"), then the data block the offsets index.
func readSafetensors(t testing.TB, path string) map[string]tensor {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 8 {
		t.Fatalf("%s: %d bytes, too short for a safetensors header", path, len(raw))
	}
	n := binary.LittleEndian.Uint64(raw[:8])
	if n > uint64(len(raw)-8) {
		t.Fatalf("%s: header length %d exceeds file size %d", path, n, len(raw))
	}
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	data := raw[8+n:]
	out := make(map[string]tensor, len(header))
	for name, msg := range header {
		if name == "__metadata__" {
			continue
		}
		var tt tensor
		if err := json.Unmarshal(msg, &tt); err != nil {
			t.Fatalf("%s: tensor %q: %v", path, name, err)
		}
		if tt.Offsets[0] < 0 || tt.Offsets[0] > tt.Offsets[1] || tt.Offsets[1] > len(data) {
			t.Fatalf("%s: tensor %q: offsets %v outside data of %d bytes", path, name, tt.Offsets, len(data))
		}
		tt.data = data[tt.Offsets[0]:tt.Offsets[1]]
		out[name] = tt
	}
	return out
}
