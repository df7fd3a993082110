package formats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// records drains a source into "key|label|captions|image" lines.
func records(t *testing.T, src Source) []string {
	t.Helper()
	var out []string
	for r, err := range src.Records(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s|%s|%s|%s", r.Key, r.Label, strings.Join(r.Captions, "+"), r.Image))
	}
	if src.Len() != len(out) {
		t.Errorf("Len %d, Records yielded %d", src.Len(), len(out))
	}
	return out
}

func TestImageFolder(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "test/b_class/z.PNG"), []byte("bz"))
	write(t, filepath.Join(root, "test/b_class/deep/er/a.jpg"), []byte("ba"))
	write(t, filepath.Join(root, "test/a_class/1.tif"), []byte("a1"))
	write(t, filepath.Join(root, "test/a_class/notes.txt"), []byte("not an image"))
	write(t, filepath.Join(root, "test/a_class/.hidden.jpg"), []byte("hidden"))
	write(t, filepath.Join(root, "test/.cache/x.jpg"), []byte("hidden class"))
	write(t, filepath.Join(root, "test/README.md"), []byte("a file beside the classes"))

	spec := Spec{Format: ImageFolder, Paths: []string{filepath.Join(root, "te*")}, Labels: true}
	src, err := Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a_class/1.tif|a_class||a1", "b_class/deep/er/a.jpg|b_class||ba", "b_class/z.PNG|b_class||bz"}
	if got := records(t, src); !reflect.DeepEqual(got, want) {
		t.Errorf("records\n got %q\nwant %q", got, want)
	}

	// The fingerprint follows the files.
	again, _ := Open(spec)
	if again.Fingerprint() != src.Fingerprint() {
		t.Error("fingerprint differs between two opens of the same folder")
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(root, "test/b_class/z.PNG"), later, later); err != nil {
		t.Fatal(err)
	}
	if touched, _ := Open(spec); touched.Fingerprint() == src.Fingerprint() {
		t.Error("fingerprint unchanged after a file's modification time changed")
	}

	// Subdir keeps masks out.
	write(t, filepath.Join(root, "covid/COVID/images/c1.png"), []byte("c1"))
	write(t, filepath.Join(root, "covid/COVID/masks/c1.png"), []byte("mask"))
	write(t, filepath.Join(root, "covid/Normal/images/n1.png"), []byte("n1"))
	src, err = Open(Spec{Format: ImageFolder, Paths: []string{filepath.Join(root, "covid")}, Subdir: "images", Labels: true})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"COVID/images/c1.png|COVID||c1", "Normal/images/n1.png|Normal||n1"}
	if got := records(t, src); !reflect.DeepEqual(got, want) {
		t.Errorf("subdir records\n got %q\nwant %q", got, want)
	}

	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"missing root", Spec{Format: ImageFolder, Paths: []string{filepath.Join(root, "nowhere")}}},
		{"no classes", Spec{Format: ImageFolder, Paths: []string{filepath.Join(root, "test/a_class")}}},
	} {
		if _, err := Open(tc.spec); !errors.Is(err, ErrAbsent) {
			t.Errorf("%s: error %v does not wrap ErrAbsent", tc.name, err)
		}
	}
	if _, err := Open(Spec{Format: ImageFolder, Paths: []string{filepath.Join(root, "covid")}, Subdir: "masks"}); err == nil || !strings.Contains(err.Error(), `"Normal" has no sub-folder "masks"`) {
		t.Errorf("missing subdir: %v", err)
	}
}

func TestTable(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "imgs/a.jpg"), []byte("A"))
	write(t, filepath.Join(dir, "imgs/b.jpg"), []byte("B"))
	write(t, filepath.Join(dir, "imgs/c.jpg"), []byte("C"))
	abs := filepath.Join(dir, "imgs/c.jpg")

	// A BOM, a quoted cell with a comma, a template and an absolute path.
	write(t, filepath.Join(dir, "meta.csv"), []byte("\ufeffid,dx,comment\na,mel,\"x, y\"\nb, nv ,\n"))
	src, err := Open(Spec{Format: CSV, Paths: []string{filepath.Join(dir, "meta.csv")}, ImageKey: "id", LabelKey: "dx", PathTemplate: "imgs/{}.jpg", Labels: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"imgs/a.jpg|mel||A", "imgs/b.jpg|nv||B"}
	if got := records(t, src); !reflect.DeepEqual(got, want) {
		t.Errorf("csv records\n got %q\nwant %q", got, want)
	}

	// Retrieval: rows naming the same image are its captions, in order.
	write(t, filepath.Join(dir, "captions.tsv"), []byte("path\tcaption\nimgs/b.jpg\tfirst of b\n"+abs+"\tonly c\nimgs/b.jpg\tsecond of b\n"))
	src, err = Open(Spec{Format: TSV, Paths: []string{filepath.Join(dir, "captions.tsv")}, Captions: true})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"imgs/b.jpg||first of b+second of b|B", abs + "||only c|C"}
	if got := records(t, src); !reflect.DeepEqual(got, want) {
		t.Errorf("tsv records\n got %q\nwant %q", got, want)
	}

	write(t, filepath.Join(dir, "none.csv"), []byte("path,label\nx/1.jpg,a\nx/2.jpg,b\n"))
	if _, err := Open(Spec{Format: CSV, Paths: []string{filepath.Join(dir, "none.csv")}, Labels: true}); !errors.Is(err, ErrAbsent) {
		t.Errorf("no listed image exists: %v, want ErrAbsent", err)
	}
	write(t, filepath.Join(dir, "some.csv"), []byte("path,label\nimgs/a.jpg,a\nx/2.jpg,b\n"))
	if _, err := Open(Spec{Format: CSV, Paths: []string{filepath.Join(dir, "some.csv")}, Labels: true}); err == nil || errors.Is(err, ErrAbsent) || !strings.Contains(err.Error(), "1 of the images it lists are missing") || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("one image missing: %v", err)
	}
	if _, err := Open(Spec{Format: CSV, Paths: []string{filepath.Join(dir, "meta.csv")}, ImageKey: "id", Labels: true}); err == nil || !strings.Contains(err.Error(), `no column "label" (columns: id, dx, comment)`) {
		t.Errorf("missing column: %v", err)
	}
	if _, err := Open(Spec{Format: CSV, Paths: []string{filepath.Join(dir, "absent.csv")}}); !errors.Is(err, ErrAbsent) {
		t.Errorf("absent table: %v", err)
	}
}

// hfRow is a row in Hugging Face datasets' parquet layout: an optional image
// struct {bytes, path}, a ClassLabel index and a list of captions.
type hfRow struct {
	Image *struct {
		Bytes []byte `parquet:"bytes,optional"`
		Path  string `parquet:"path,optional"`
	} `parquet:"image,optional"`
	Label    int64    `parquet:"label"`
	Captions []string `parquet:"captions,list"`
}

type plainRow struct {
	Img   []byte `parquet:"img"`
	Organ string `parquet:"organ"`
	Text  string `parquet:"text"`
}

func writeParquet[T any](t *testing.T, path string, rows []T) {
	t.Helper()
	var b bytes.Buffer
	w := parquet.NewGenericWriter[T](&b, parquet.MaxRowsPerRowGroup(2), parquet.SkipPageBounds("image", "bytes"))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	write(t, path, b.Bytes())
}

func TestParquet(t *testing.T) {
	dir := t.TempDir()
	var rows []hfRow
	for i := range 5 {
		r := hfRow{Label: int64(i % 3), Captions: []string{fmt.Sprintf("c%d", i), fmt.Sprintf("d%d", i)}[:1+i%2]}
		r.Image = &struct {
			Bytes []byte `parquet:"bytes,optional"`
			Path  string `parquet:"path,optional"`
		}{Bytes: []byte(fmt.Sprintf("img%d", i)), Path: fmt.Sprintf("%d.png", i)}
		rows = append(rows, r)
	}
	writeParquet(t, filepath.Join(dir, "data/test-00000-of-00002.parquet"), rows[:3])
	writeParquet(t, filepath.Join(dir, "data/test-00001-of-00002.parquet"), rows[3:])

	src, err := Open(Spec{Format: Parquet, Paths: []string{filepath.Join(dir, "data/test-*.parquet")}, Labels: true, CaptionKey: "captions", Captions: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"test-00000-of-00002.parquet#0|0|c0|img0",
		"test-00000-of-00002.parquet#1|1|c1+d1|img1",
		"test-00000-of-00002.parquet#2|2|c2|img2",
		"test-00001-of-00002.parquet#0|0|c3+d3|img3",
		"test-00001-of-00002.parquet#1|1|c4|img4",
	}
	if got := records(t, src); !reflect.DeepEqual(got, want) {
		t.Errorf("records\n got %q\nwant %q", got, want)
	}

	writeParquet(t, filepath.Join(dir, "plain.parquet"), []plainRow{{[]byte("x"), "liver", "t"}, {[]byte("y"), "colon", "u"}})
	src, err = Open(Spec{Format: Parquet, Paths: []string{filepath.Join(dir, "plain.parquet")}, ImageKey: "img", LabelKey: "organ", Labels: true})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"plain.parquet#0|liver||x", "plain.parquet#1|colon||y"}
	if got := records(t, src); !reflect.DeepEqual(got, want) {
		t.Errorf("plain records\n got %q\nwant %q", got, want)
	}
	if _, err := Open(Spec{Format: Parquet, Paths: []string{filepath.Join(dir, "plain.parquet")}, Labels: true}); err == nil || !strings.Contains(err.Error(), `no column "image" (columns: img, organ, text)`) {
		t.Errorf("missing column: %v", err)
	}
	if _, err := Open(Spec{Format: Parquet, Paths: []string{filepath.Join(dir, "nope/*.parquet")}}); !errors.Is(err, ErrAbsent) {
		t.Errorf("absent parquet: %v", err)
	}
}

func TestWithExtraDecoders(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.Set(2, 1, color.RGBA{R: 200, A: 255})
	var viaImage []string
	apply := func(b []byte) ([]float32, error) { return []float32{float32(len(b))}, nil }
	applyImage := func(m image.Image) ([]float32, error) {
		r, _, _, _ := m.At(2, 1).RGBA()
		viaImage = append(viaImage, fmt.Sprintf("%v red %d", m.Bounds().Size(), r>>8))
		return nil, nil
	}
	f := WithExtraDecoders(apply, applyImage)
	var tb, bb, pb bytes.Buffer
	if err := tiff.Encode(&tb, img, nil); err != nil {
		t.Fatal(err)
	}
	if err := bmp.Encode(&bb, img); err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(&pb, img); err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{tb.Bytes(), bb.Bytes()} {
		if _, err := f(b); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"(3,2) red 200", "(3,2) red 200"}; !reflect.DeepEqual(viaImage, want) {
		t.Errorf("TIFF and BMP decoded to %q, want %q", viaImage, want)
	}
	if out, err := f(pb.Bytes()); err != nil || out[0] != float32(pb.Len()) {
		t.Errorf("PNG not passed through to apply: %v %v", out, err)
	}
	if _, err := f([]byte("II*\x00garbage")); err == nil || !strings.Contains(err.Error(), "tiff") {
		t.Errorf("corrupt TIFF: %v", err)
	}
}
