package contamination

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/internal/cputime"
	"github.com/bmca/bmca/internal/testshared"
)

// realImages are the shared real figures (PMC and eLife figure files) and
// biomedical images (BiomedCLIP's examples, chest X-rays).
func realImages(t testing.TB) []string {
	dir := testshared.Dir(t)
	var files []string
	for _, g := range []string{"data/jats-with-figures/*/*.jpg", "data/jats-with-figures/*/*/*.jpg", "data/images/*/*.jp*g", "data/images/*/*.png", "data/images/*/*/*/*.png"} {
		m, err := filepath.Glob(filepath.Join(dir, g))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 20 {
		t.Skipf("only %d real images in the shared material", len(files))
	}
	return files
}

// TestPlantedRealFigures: the first eight real images are a task; the
// training shard holds the others untouched, plus copies of four of the
// task's images re-encoded at JPEG quality 35 or resized to 40% — the
// copies, and nothing else, are found, whether the training images are
// decoded, their hashes read from the cache this filled, or read from their
// json (image_phash, as bmca's ETL stores them).
func TestPlantedRealFigures(t *testing.T) {
	files := realImages(t)
	dir := t.TempDir()
	var rows []string
	var train []member
	want := map[string]bool{}
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("%02d-%s", i, filepath.Base(f))
		if i >= 8 {
			train = append(train, member{fmt.Sprintf("t%02d%s", i, filepath.Ext(f)), data})
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, name+",0")
		switch i % 2 {
		case 0:
			if i%4 == 0 {
				train = append(train, member{fmt.Sprintf("q%02d.jpg", i), encodeJPEG(t, decode(t, data), 35)})
			} else {
				train = append(train, member{fmt.Sprintf("r%02d.jpg", i), encodeJPEG(t, resize(decode(t, data), 0.4), 75)})
			}
			want[name] = true
		}
	}
	writeTar(t, filepath.Join(dir, "train.tar"), train)
	writeTar(t, filepath.Join(dir, "train-stored.tar"), withStoredPHash(t, train))
	if err := os.WriteFile(filepath.Join(dir, "test.csv"), []byte("path,label\n"+strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	task := tasks.Task{Name: "real", Kind: tasks.ZeroShotClassification, Format: "csv", Data: []string{filepath.Join(dir, "test.csv")},
		Classes: []string{"a", "b"}, Templates: []string{"{c}"}}
	cache := NewHashCache(filepath.Join(dir, "cache"))
	for _, path := range []struct {
		name, shard string
		cache       *HashCache
		check       func(Stats) bool
	}{
		{"decoded", "train.tar", cache, func(s Stats) bool { return s.Perceptual == s.Images && s.CacheWrites == 1 }},
		{"cached", "train.tar", cache, func(s Stats) bool { return s.Perceptual == 0 && s.CachedShards == 1 }},
		{"stored", "train-stored.tar", nil, func(s Stats) bool { return s.Perceptual == 0 && s.Stored == s.Images }},
	} {
		idx := NewIndex(DefaultMaxDistance)
		if _, err := idx.AddTask(context.Background(), task, nil, 0, nil); err != nil {
			t.Fatal(err)
		}
		st, err := idx.Scan(context.Background(), stream.Config{Shards: []string{filepath.Join(dir, path.shard)}}, ScanOptions{Cache: path.cache})
		if err != nil {
			t.Fatal(err)
		}
		if !path.check(st) || st.Images != int64(len(train)) {
			t.Errorf("%s: stats %+v", path.name, st)
		}
		o := idx.Reports()["real"]
		got := map[string]bool{}
		for _, m := range o.Matches {
			got[m.Key] = true
			t.Logf("%s: %s: %s at distance %d (%s)", path.name, m.Key, m.Kind, m.Distance, m.TrainKey)
			if m.Kind != tasks.MatchNear {
				t.Errorf("%s: %s: %s, want near", path.name, m.Key, m.Kind)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: found %v, want %v", path.name, got, want)
		}
	}
}

// BenchmarkScan measures the hash pass over training images: a shard of
// the shared real figures and medical images (0.04–7 MP; the PNGs
// re-encoded as JPEG, as training shards store them) scanned against an
// index of 1000 evaluation hashes:
//
//   - exact: file SHA-256 and the json hash field only, no decoding;
//   - decoded: a perceptual hash per image from a 1/8-scale luma decode
//     (BIOMEDICA's shards, or any shard read for the first time);
//   - stored: the perceptual hash read from the json (image_phash, as
//     bmca's ETL writes it), no decoding;
//   - cached: the hashes read from the hash cache a first, untimed, pass
//     filled; the shard itself is not read.
//
// Run with -cpu 1: images/cpu-s is the per-core rate, which a busy machine
// does not distort as it does images/s.
func BenchmarkScan(b *testing.B) {
	files := realImages(b)
	dir := b.TempDir()
	var train []member
	var bytesTotal int
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte{0xff, 0xd8}) {
			// Training shards hold JPEGs: BIOMEDICA re-encodes every figure,
			// bmca's ETL every non-JPEG one (at quality 95).
			data = encodeJPEG(b, decode(b, data), 95)
		}
		bytesTotal += len(data)
		train = append(train, member{fmt.Sprintf("s%03d%s", i, filepath.Ext(f)), data},
			member{fmt.Sprintf("s%03d.json", i), []byte(`{"image_hash": "0000000000000000000000000000000000000000000000000000000000000000"}`)})
	}
	writeTar(b, filepath.Join(dir, "train.tar"), train)
	writeTar(b, filepath.Join(dir, "train-stored.tar"), withStoredPHash(b, train))
	for _, mode := range []struct {
		name        string
		maxDistance int
		shard       string
		cached      bool
	}{
		{"exact", -1, "train.tar", false},
		{"decoded", DefaultMaxDistance, "train.tar", false},
		{"stored", DefaultMaxDistance, "train-stored.tar", false},
		{"cached", DefaultMaxDistance, "train.tar", true},
	} {
		b.Run(mode.name, func(b *testing.B) {
			idx := NewIndex(mode.maxDistance)
			for i := range 1000 {
				idx.add("t", i, "k", Hashes{PHash: uint64(i) * 0x9e3779b97f4a7c15, File: [32]byte{byte(i), byte(i >> 8), 1}})
			}
			cfg := stream.Config{Shards: []string{filepath.Join(dir, mode.shard)}}
			opts := ScanOptions{Workers: runtime.GOMAXPROCS(0)}
			if mode.cached {
				opts.Cache = NewHashCache(b.TempDir())
				if st, err := idx.Scan(context.Background(), cfg, opts); err != nil || st.CacheWrites != 1 {
					b.Fatalf("filling the cache: %+v, %v", st, err)
				}
			}
			var images int64
			cpu0 := cputime.Process()
			for b.Loop() {
				st, err := idx.Scan(context.Background(), cfg, opts)
				if err != nil {
					b.Fatal(err)
				}
				if decoded := st.Perceptual > 0; decoded != (mode.name == "decoded") {
					b.Fatalf("%s: %d images decoded", mode.name, st.Perceptual)
				}
				images += st.Images
			}
			b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
			if cpu := cputime.Process() - cpu0; cpu > 0 {
				b.ReportMetric(float64(images)/cpu.Seconds(), "images/cpu-s")
			}
			b.ReportMetric(float64(bytesTotal)/float64(len(files))/1e3, "kB/image")
		})
	}
}
