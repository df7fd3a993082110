package cache

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bmca/bmca/eval/tasks"
)

const key = "0123456789abcdef0123456789abcdef"

func TestRoundTrip(t *testing.T) {
	d := New(t.TempDir())
	for _, f := range []*tasks.Features{
		{Dim: 2, Images: []float32{1, -2, 3.5, 4}, Labels: []string{"a", "ü b"}, Excluded: 3},
		{Dim: 3, Images: []float32{1, 2, 3, 4, 5, 6}, Texts: []float32{0, 1, 0, 1, 0, 0, 7, 8, 9}, TextImage: []int{0, 1, 1}},
	} {
		if err := d.Store(key, f); err != nil {
			t.Fatal(err)
		}
		got, err := d.Load(key)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, f) {
			t.Errorf("round trip\n got %+v\nwant %+v", got, f)
		}
	}
	// Labels present but empty survive as empty, not nil: classification
	// features keep their kind.
	empty := &tasks.Features{Dim: 1, Images: []float32{1}, Labels: []string{""}}
	if err := d.Store(key, empty); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Load(key); got.Labels == nil || got.Labels[0] != "" {
		t.Errorf("labels %#v", got.Labels)
	}
}

func TestMissCorruptAndKeys(t *testing.T) {
	d := New(t.TempDir())
	if f, err := d.Load(key); f != nil || err != nil {
		t.Errorf("miss: %v, %v; want nil, nil", f, err)
	}
	if err := d.Store(key, &tasks.Features{Dim: 2, Images: []float32{1, 2}, Labels: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	path, _ := d.Path(key)
	if filepath.Dir(path) != filepath.Join(d.Root(), "01") {
		t.Errorf("entry at %s", path)
	}
	data, _ := os.ReadFile(path)
	data[len(data)-9] ^= 1 // a feature byte
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load(key); err == nil || !strings.Contains(err.Error(), "corrupt: checksum mismatch") {
		t.Errorf("corrupt entry: %v", err)
	}
	if err := os.WriteFile(path, data[:10], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load(key); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("truncated entry: %v", err)
	}
	// A store replaces the corrupt entry, leaving no temporary files.
	if err := d.Store(key, &tasks.Features{Dim: 1, Images: []float32{9}, Labels: []string{"y"}}); err != nil {
		t.Fatal(err)
	}
	if f, err := d.Load(key); err != nil || f.Images[0] != 9 {
		t.Errorf("after rewrite: %v, %v", f, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("cache folder holds %d files, want 1", len(entries))
	}
	for _, bad := range []string{"../../etc/passwd", "ABCDEF0123", "short"} {
		if _, err := d.Load(bad); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
	if err := d.Store(key, &tasks.Features{Dim: 2, Images: []float32{1, 2, 3}}); err == nil {
		t.Error("inconsistent features stored")
	}
}
