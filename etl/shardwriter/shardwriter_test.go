package shardwriter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/bmca/bmca/data/stream"
)

func testSamples(n int) []Sample {
	var out []Sample
	for i := range n {
		out = append(out, Sample{
			Key:     fmt.Sprintf("PMC%d-0-fig_%d", 100+i, i),
			JPEG:    bytes.Repeat([]byte{byte(i)}, 100+i),
			Caption: fmt.Sprintf("caption %d", i),
			JSON:    []byte(fmt.Sprintf(`{"image_file_name":"fig.%d.jpg"}`, i)),
			Article: fmt.Sprintf("PMC%d", 100+i),
			License: "CC BY",
			Hash:    fmt.Sprintf("%064d", i),
			PHash:   fmt.Sprintf("%016x", i*7919),
		})
	}
	return out
}

func writeShard(t *testing.T, dir string, index int, formats []Format, samples []Sample) Committed {
	t.Helper()
	sh, err := Create(dir, index, formats)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if err := sh.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	c, err := sh.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func readTar(t *testing.T, p string) []stream.Sample {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []stream.Sample
	for s, err := range stream.ReadShard(context.Background(), p, f) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func readParquet(t *testing.T, p string) []Row {
	t.Helper()
	rows, err := parquet.ReadFile[Row](p)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestWriteBothFormats(t *testing.T) {
	dir := t.TempDir()
	samples := testSamples(5)
	c := writeShard(t, dir, 3, []Format{WebDataset, Parquet}, samples)
	if c.Index != 3 || c.Samples != 5 || len(c.Files) != 2 || c.Files[0].Name != "000003.tar" || c.Files[1].Name != "000003.parquet" {
		t.Fatalf("committed %+v", c)
	}
	for _, f := range c.Files {
		data, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(data)) != f.Bytes {
			t.Errorf("%s: recorded hash or size does not match the file", f.Name)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("%d files in the folder, want the two shards and no temporary file", len(entries))
	}

	got := readTar(t, filepath.Join(dir, "000003.tar"))
	if len(got) != 5 {
		t.Fatalf("tar holds %d samples", len(got))
	}
	for i, s := range got {
		w := samples[i]
		if s.Key != w.Key || !bytes.Equal(s.Members["jpg"], w.JPEG) || string(s.Members["txt"]) != w.Caption || !bytes.Equal(s.Members["json"], w.JSON) {
			t.Errorf("tar sample %d: %q %v", i, s.Key, slices.Collect(func(yield func(string) bool) {
				for k := range s.Members {
					yield(k)
				}
			}))
		}
	}
	rows := readParquet(t, filepath.Join(dir, "000003.parquet"))
	if len(rows) != 5 {
		t.Fatalf("parquet holds %d rows", len(rows))
	}
	for i, r := range rows {
		w := samples[i]
		if r.Key != w.Key || !bytes.Equal(r.JPG, w.JPEG) || r.TXT != w.Caption || r.JSON != string(w.JSON) || r.ArticleAccessionID != w.Article || r.ImageHash != w.Hash || r.ImagePHash != w.PHash {
			t.Errorf("parquet row %d: %+v", i, r.Key)
		}
	}

	// The same samples give the same bytes.
	dir2 := t.TempDir()
	c2 := writeShard(t, dir2, 3, []Format{WebDataset, Parquet}, samples)
	if c2.Files[0].SHA256 != c.Files[0].SHA256 {
		t.Errorf("tar shards of the same samples differ")
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	sh, err := Create(dir, 0, []Format{WebDataset, Parquet})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range testSamples(3) {
		if err := sh.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), TempPrefix) {
			t.Errorf("%s visible before Commit", e.Name())
		}
	}
	sh.Abort()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("Abort left %d files", len(entries))
	}
}

func TestFilterAndCopy(t *testing.T) {
	dir := t.TempDir()
	samples := testSamples(6)
	writeShard(t, dir, 0, []Format{WebDataset, Parquet}, samples)
	drop := func(key string) bool { return key == samples[1].Key || key == samples[4].Key }
	for _, f := range []Format{WebDataset, Parquet} {
		src := filepath.Join(dir, Name(0, f))
		dst := filepath.Join(dir, "out-"+Name(0, f))
		file, kept, err := Filter(src, dst, f, drop)
		if err != nil {
			t.Fatal(err)
		}
		if kept != 4 || file.Name != "out-"+Name(0, f) {
			t.Errorf("%s: kept %d, file %+v", f, kept, file)
		}
		var keys []string
		if f == WebDataset {
			for _, s := range readTar(t, dst) {
				keys = append(keys, s.Key)
			}
		} else {
			for _, r := range readParquet(t, dst) {
				keys = append(keys, r.Key)
			}
		}
		want := []string{samples[0].Key, samples[2].Key, samples[3].Key, samples[5].Key}
		if !slices.Equal(keys, want) {
			t.Errorf("%s: kept %v, want %v", f, keys, want)
		}
	}
	copied, err := Copy(filepath.Join(dir, "000000.tar"), filepath.Join(dir, "copy.tar"))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "000000.tar"))
	b, _ := os.ReadFile(filepath.Join(dir, "copy.tar"))
	if !bytes.Equal(a, b) || copied.Bytes != int64(len(a)) {
		t.Errorf("copy differs")
	}
}

func TestNamesFormatsSizes(t *testing.T) {
	if Name(42, WebDataset) != "000042.tar" || Name(7, Parquet) != "000007.parquet" {
		t.Errorf("names %s %s", Name(42, WebDataset), Name(7, Parquet))
	}
	if i, f, ok := ParseName("001234.parquet"); !ok || i != 1234 || f != Parquet {
		t.Errorf("ParseName: %d %s %v", i, f, ok)
	}
	for _, bad := range []string{"12.tar", "000001.tar.tmp", "sizes.json", ".tmp-000001.tar-1"} {
		if _, _, ok := ParseName(bad); ok {
			t.Errorf("ParseName(%q) accepted", bad)
		}
	}
	if fs, err := ParseFormats("wds, parquet"); err != nil || !slices.Equal(fs, []Format{WebDataset, Parquet}) {
		t.Errorf("ParseFormats: %v %v", fs, err)
	}
	for _, bad := range []string{"csv", "wds,wds", ""} {
		if _, err := ParseFormats(bad); err == nil {
			t.Errorf("ParseFormats(%q) accepted", bad)
		}
	}
	dir := t.TempDir()
	if err := WriteSizes(dir, map[string]int{"000000.tar": 3, "000001.tar": 2}); err != nil {
		t.Fatal(err)
	}
	got, err := ReadSizes(dir)
	if err != nil || got["000000.tar"] != 3 || got["000001.tar"] != 2 || len(got) != 2 {
		t.Errorf("sizes %v %v", got, err)
	}
}
