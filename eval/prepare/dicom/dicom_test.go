package dicom

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reference is what pydicom read from each test file
// (scripts/dicom-reference).
type reference struct {
	Rows           int     `json:"rows"`
	Columns        int     `json:"columns"`
	TransferSyntax string  `json:"transfer_syntax"`
	StoredSHA256   string  `json:"stored_sha256"`
	ModalityMin    float64 `json:"modality_min"`
	ModalityMax    float64 `json:"modality_max"`
	Rendering      string  `json:"rendering"`
}

func loadReference(t *testing.T) map[string]reference {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "reference", "reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var refs map[string]reference
	if err := json.Unmarshal(data, &refs); err != nil {
		t.Fatal(err)
	}
	return refs
}

func decodeFile(t *testing.T, name string) *Image {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	im, err := Decode(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return im
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestMatchesPydicom checks the stored values, modality range and 8-bit
// rendering of real files against pydicom's reading of them.
func TestMatchesPydicom(t *testing.T) {
	for name, ref := range loadReference(t) {
		t.Run(name, func(t *testing.T) {
			im := decodeFile(t, name)
			if im.Rows != ref.Rows || im.Columns != ref.Columns || im.TransferSyntax != ref.TransferSyntax {
				t.Fatalf("got %d×%d %s, pydicom %d×%d %s", im.Columns, im.Rows, im.TransferSyntax, ref.Columns, ref.Rows, ref.TransferSyntax)
			}
			if ref.StoredSHA256 != "" {
				buf := make([]byte, 4*len(im.StoredValues()))
				for i, v := range im.StoredValues() {
					binary.LittleEndian.PutUint32(buf[4*i:], uint32(v))
				}
				sum := sha256.Sum256(buf)
				if got := hex.EncodeToString(sum[:]); got != ref.StoredSHA256 {
					t.Errorf("stored values differ from pydicom's pixel_array (sha256 %s, want %s)", got, ref.StoredSHA256)
				}
				lo, hi := im.ModalityValues()[0], im.ModalityValues()[0]
				for _, v := range im.ModalityValues() {
					lo, hi = min(lo, v), max(hi, v)
				}
				if lo != ref.ModalityMin || hi != ref.ModalityMax {
					t.Errorf("modality range [%v, %v], pydicom [%v, %v]", lo, hi, ref.ModalityMin, ref.ModalityMax)
				}
			}
			got, err := im.Render()
			if err != nil {
				t.Fatal(err)
			}
			want := readPNG(t, filepath.Join("testdata", "reference", strings.TrimSuffix(name, ".dcm")+".png"))
			// Windowing rounds the same formula in another order (±1);
			// JPEG decoders differ in IDCT and colour conversion rounding.
			tol := 1
			if ref.Rendering == "decoded rgb" {
				tol = 3
			}
			if d := maxDiff(got, want); d > tol {
				t.Errorf("rendering (%s) differs from pydicom's by up to %d levels (tolerance %d)", ref.Rendering, d, tol)
			}
		})
	}
}

func maxDiff(a, b image.Image) int {
	if a.Bounds() != b.Bounds() {
		return 1 << 30
	}
	worst := 0
	r := a.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			ar, ag, ab, _ := a.At(x, y).RGBA()
			br, bg, bb, _ := b.At(x, y).RGBA()
			for _, d := range []int{int(ar>>8) - int(br>>8), int(ag>>8) - int(bg>>8), int(ab>>8) - int(bb>>8)} {
				worst = max(worst, d, -d)
			}
		}
	}
	return worst
}

// TestImplicitEqualsExplicit: the same data set in two syntaxes gives the
// same pixels and the same window.
func TestImplicitEqualsExplicit(t *testing.T) {
	a, b := decodeFile(t, "MR_small.dcm"), decodeFile(t, "MR_small_implicit.dcm")
	if len(a.StoredValues()) != 64*64 || len(b.StoredValues()) != len(a.StoredValues()) {
		t.Fatalf("%d and %d values", len(a.StoredValues()), len(b.StoredValues()))
	}
	for i := range a.StoredValues() {
		if a.StoredValues()[i] != b.StoredValues()[i] {
			t.Fatalf("value %d: %d vs %d", i, a.StoredValues()[i], b.StoredValues()[i])
		}
	}
	if len(b.WindowCenter) != 1 || b.WindowCenter[0] != 600 || b.WindowWidth[0] != 1600 || !b.Signed {
		t.Errorf("implicit VR header: window %v/%v signed %v", b.WindowCenter, b.WindowWidth, b.Signed)
	}
}

// TestRefusesOtherSyntaxes: big endian and RLE files are refused with the
// syntax named, not misread.
func TestRefusesOtherSyntaxes(t *testing.T) {
	for name, want := range map[string]string{"MR_small_bigendian.dcm": "Big Endian", "MR_small_RLE.dcm": "RLE Lossless"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Decode(data)
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an ErrUnsupported naming %q", name, err, want)
		}
	}
	if _, err := Decode([]byte("not a dicom file at all")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("garbage: %v", err)
	}
	data, _ := os.ReadFile(filepath.Join("testdata", "CT_small.dcm"))
	if _, err := Decode(data[:len(data)/2]); err == nil {
		t.Error("truncated file decoded without error")
	}
}

// TestMonochrome1AndEightBit builds a minimal 8-bit MONOCHROME1 file (the
// RSNA files are 8-bit monochrome) to check the inversion and the
// keep-as-is rule for values that already fit 8 bits.
func TestMonochrome1AndEightBit(t *testing.T) {
	pix := []byte{0, 10, 200, 255}
	for _, photometric := range []string{"MONOCHROME2", "MONOCHROME1"} {
		im, err := Decode(buildFile(photometric, 2, 2, 8, pix))
		if err != nil {
			t.Fatal(err)
		}
		img, err := im.Render()
		if err != nil {
			t.Fatal(err)
		}
		g := img.(*image.Gray)
		for i, v := range pix {
			want := v
			if photometric == "MONOCHROME1" {
				want = 255 - v
			}
			if g.Pix[i] != want {
				t.Errorf("%s pixel %d: %d, want %d", photometric, i, g.Pix[i], want)
			}
		}
	}
}

// buildFile writes an Explicit VR Little Endian file with a sequence of
// undefined length before the pixel module, to exercise skipping.
func buildFile(photometric string, rows, cols, bits int, pix []byte) []byte {
	var b []byte
	b = append(b, make([]byte, 128)...)
	b = append(b, "DICM"...)
	short := func(g, e uint16, vr string, v []byte) {
		if len(v)%2 == 1 {
			v = append(v, ' ')
		}
		b = binary.LittleEndian.AppendUint16(b, g)
		b = binary.LittleEndian.AppendUint16(b, e)
		b = append(b, vr...)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	us := func(v int) []byte { return binary.LittleEndian.AppendUint16(nil, uint16(v)) }
	short(0x0002, 0x0010, "UI", []byte(ExplicitVRLittleEndian))
	// (0008,1140) SQ of undefined length with one item of undefined length.
	b = binary.LittleEndian.AppendUint16(b, 0x0008)
	b = binary.LittleEndian.AppendUint16(b, 0x1140)
	b = append(b, "SQ\x00\x00"...)
	b = binary.LittleEndian.AppendUint32(b, undefined)
	b = append(b, 0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF)
	short(0x0008, 0x1150, "UI", []byte("1.2.3"))
	b = append(b, 0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0)
	b = append(b, 0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0)
	short(0x0028, 0x0002, "US", us(1))
	short(0x0028, 0x0004, "CS", []byte(photometric))
	short(0x0028, 0x0010, "US", us(rows))
	short(0x0028, 0x0011, "US", us(cols))
	short(0x0028, 0x0100, "US", us(bits))
	short(0x0028, 0x0101, "US", us(bits))
	short(0x0028, 0x0103, "US", us(0))
	b = binary.LittleEndian.AppendUint16(b, 0x7FE0)
	b = binary.LittleEndian.AppendUint16(b, 0x0010)
	b = append(b, "OB\x00\x00"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(pix)))
	return append(b, pix...)
}

// BenchmarkRSNASized decodes and renders a 1024×1024 8-bit monochrome file,
// the size of the RSNA pneumonia radiographs, and encodes it as PNG: the
// per-image cost of the DICOM → PNG step.
func BenchmarkRSNASized(b *testing.B) {
	pix := make([]byte, 1024*1024)
	for i := range pix {
		pix[i] = byte(i*7 + i/1024)
	}
	data := buildFile("MONOCHROME2", 1024, 1024, 8, pix)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		im, err := Decode(data)
		if err != nil {
			b.Fatal(err)
		}
		img, err := im.Render()
		if err != nil {
			b.Fatal(err)
		}
		if err := png.Encode(io.Discard, img); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// TestTruncatedNeverPanics cuts real files at many lengths: each cut either
// decodes or fails with an error, never a panic.
func TestTruncatedNeverPanics(t *testing.T) {
	for _, name := range []string{"MR_small.dcm", "MR_small_implicit.dcm", "SC_rgb_jpeg_dcmtk.dcm"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(data); n += 13 {
			if im, err := Decode(data[:n]); err == nil {
				if _, err := im.Render(); err != nil && !errors.Is(err, ErrUnsupported) {
					t.Errorf("%s cut at %d: %v", name, n, err)
				}
			}
		}
	}
}
