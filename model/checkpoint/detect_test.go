package checkpoint_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/model/weights/hf"
	"github.com/bmca/bmca/model/weights/pytorch/pytorchtest"
)

// jpegHead is the start of a JFIF file: what a user who passes an image as
// --checkpoint hands the detector. Its first byte, 0xFF, is a pickle opcode
// that once crashed the legacy torch.save detection.
var jpegHead = []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00}

// paddedSafetensors is a valid safetensors file whose JSON header is
// exactly n bytes long (padded with spaces, as the format allows), holding
// one float32 tensor "a".
func paddedSafetensors(n int) []byte {
	hdr := `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`
	hdr += strings.Repeat(" ", n-len(hdr)-1) + "}"
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	b = append(b, hdr...)
	return append(b, 0, 0, 0x80, 0x3f) // 1.0
}

// TestDetectionNeverPanics: detection reads the first bytes of any file a
// user names. A JPEG is refused as unrecognised, and a valid safetensors
// file is detected as safetensors whatever its header length (the first
// byte of the length is arbitrary; every value from 0x40 to 0xFF is tried,
// including those that are pickle opcodes reading a length).
func TestDetectionNeverPanics(t *testing.T) {
	dir := t.TempDir()
	try := func(name string, data []byte) (err error) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("%s: detection panicked: %v", name, r)
			}
		}()
		mc, _ := micro(t)
		_, err = checkpoint.Open(p, checkpoint.Options{ModelConfig: &mc})
		return err
	}
	jpeg := append(append([]byte(nil), jpegHead...), make([]byte, 300)...)
	if err := try("photo.jpg", jpeg); !errors.Is(err, checkpoint.ErrUnrecognized) {
		t.Errorf("a JPEG given as a checkpoint: %v, want ErrUnrecognized", err)
	}
	for n := 0x40; n <= 0xFF; n++ {
		name := fmt.Sprintf("header-%#x.safetensors", n)
		err := try(name, paddedSafetensors(n))
		// The file holds one tensor, not the model: a mismatch, which
		// means it was detected and read as safetensors.
		var mm *checkpoint.MismatchError
		if !errors.As(err, &mm) || mm.Format.Container != checkpoint.Safetensors {
			t.Errorf("%s: %v, want a safetensors file that does not match the model", name, err)
		}
	}
}

// FuzzOpen feeds arbitrary bytes to format detection and loading, as a
// file a user names with --checkpoint. Detection and Open must never
// panic; a file that opens must read every tensor, or fail with an error.
//
//	go test -fuzz=FuzzOpen -fuzztime=3m ./model/checkpoint
func FuzzOpen(f *testing.F) {
	mc, sd := micro(f)
	hfsd, err := hf.FromOpenCLIP(sd)
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	for _, s := range []weights.StateDict{sd, hfsd} {
		buf.Reset()
		if err := weights.Write(&buf, s, map[string]string{"format": "pt"}); err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.Clone(buf.Bytes()))
	}
	for _, opts := range []pytorchtest.Options{{}, {Legacy: true}} {
		buf.Reset()
		if err := pytorchtest.Write(&buf, pytorchtest.NewDict("epoch", 3, "state_dict", pytorchtest.StateDict(sd, "module.")), opts); err != nil {
			f.Fatal(err)
		}
		f.Add(bytes.Clone(buf.Bytes()))
	}
	f.Add(append(append([]byte(nil), jpegHead...), make([]byte, 64)...))
	f.Add(paddedSafetensors(0x8d))
	f.Add(paddedSafetensors(0xff))
	f.Add([]byte("<html>not found</html>"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := os.CreateTemp(dir, "fuzz-*")
		if err != nil {
			t.Fatal(err)
		}
		path := file.Name()
		defer os.Remove(path)
		_, err = file.Write(data)
		if cerr := file.Close(); err != nil || cerr != nil {
			t.Fatal(err, cerr)
		}
		checkpoint.IsCheckpoint(path)
		ck, err := checkpoint.Open(path, checkpoint.Options{ModelConfig: &mc, Partial: true})
		if err != nil {
			return
		}
		defer ck.Close()
		got, err := ck.StateDict()
		if err != nil {
			return
		}
		for _, p := range clip.Params(mc.Config) {
			if !slices.Equal(got[p.Name].Shape, p.Shape) {
				t.Fatalf("%s: shape %v, the model's is %v", p.Name, got[p.Name].Shape, p.Shape)
			}
		}
	})
}
