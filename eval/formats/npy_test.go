package formats

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestDecodeNPYVector reads files numpy 2.4 wrote with np.save:
// int64 [0,1,0,1,1]; uint8 [[1,0,0,1]]; bool [True,False,True];
// float32 [0,1,-2.5]; int16 [-3,7]; and a 2×3 matrix, which is refused.
func TestDecodeNPYVector(t *testing.T) {
	for name, want := range map[string][]float64{
		"int64": {0, 1, 0, 1, 1}, "uint8_row": {1, 0, 0, 1}, "bool": {1, 0, 1}, "float32": {0, 1, -2.5}, "int16": {-3, 7},
	} {
		data, err := os.ReadFile("testdata/" + name + ".npy")
		if err != nil {
			t.Fatal(err)
		}
		if !IsNPY(data) {
			t.Errorf("%s: not recognised as .npy", name)
		}
		got, err := DecodeNPYVector(data)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, %v; want %v", name, got, err, want)
		}
	}
	data, err := os.ReadFile("testdata/matrix.npy")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeNPYVector(data); err == nil || !strings.Contains(err.Error(), "not a vector") {
		t.Errorf("matrix: %v", err)
	}
	if _, err := DecodeNPYVector(data[:40]); err == nil {
		t.Error("truncated file accepted")
	}
	if IsNPY([]byte("1,0,1")) {
		t.Error("text taken for .npy")
	}
}
