package prepare

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bmca/bmca/data/remote"
	"github.com/bmca/bmca/eval/formats"
	"github.com/bmca/bmca/eval/tasks"
)

// These helpers build small replicas of publishers' files.

func makeZip(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, name := range sortedKeys(files) {
		f, err := w.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(files[name])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func makeTarGz(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for _, name := range sortedKeys(files) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg})
		tw.Write(files[name])
	}
	tw.Close()
	gz.Close()
	return b.Bytes()
}

func sortedKeys[V any](m map[string]V) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

// pngOf is a w×h PNG filled with c.
func pngOf(t *testing.T, w, h int, c color.Color) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// testOptions are quick-retry options for the local server.
func testOptions(root string) Options {
	return Options{DataRoot: root, Workers: 2, Remote: remote.Options{MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, IdleTimeout: 5 * time.Second}}
}

func runOne(t *testing.T, d tasks.Dataset, opts Options) Report {
	t.Helper()
	reps := Run(context.Background(), []tasks.Dataset{d}, opts)
	if len(reps) != 1 {
		t.Fatalf("%d reports", len(reps))
	}
	return reps[0]
}

func mustPrepare(t *testing.T, d tasks.Dataset, opts Options) {
	t.Helper()
	if r := runOne(t, d, opts); r.Status != Prepared {
		t.Fatalf("%s: status %s, err %v, missing %v", d.Name, r.Status, r.Err, r.Missing)
	}
}

// readLabels opens a prepared table the way a task does and returns each
// record's label by key, checking every image decodes.
func readLabels(t *testing.T, spec formats.Spec) map[string]string {
	t.Helper()
	spec.Labels = true
	src, err := formats.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for rec, err := range src.Records(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := image.Decode(bytes.NewReader(rec.Image)); err != nil {
			t.Fatalf("%s: %v", rec.Key, err)
		}
		out[rec.Key] = rec.Label
	}
	return out
}

func writeFileT(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
