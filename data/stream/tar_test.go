package stream

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/testshared"
)

// collect reads a whole shard, returning its samples and the error, if any.
func collect(ctx context.Context, url string, data []byte) ([]Sample, error) {
	var out []Sample
	for s, err := range ReadShard(ctx, url, bytes.NewReader(data)) {
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}

// TestReadShardRealShards reads webdataset's own test shards: GNU and PAX
// headers, a gzip-compressed shard, a directory entry, multi-dot extensions.
func TestReadShardRealShards(t *testing.T) {
	dir := testshared.Dir(t)
	cases := []struct {
		file      string
		samples   int
		firstKey  string
		lastKey   string
		exts      []string // extensions of the first sample
		firstSize int      // bytes of the first sample's first extension
	}{
		{file: "sample.tgz", samples: 90, firstKey: "10", lastKey: "99", exts: []string{"cls", "png"}, firstSize: 1},
		{file: "testgz.tar", samples: 1000, firstKey: "71671c5e285c455c892fb565330233ba", lastKey: "", exts: []string{"txt.gz"}, firstSize: 45},
		{file: "compressed.tar", samples: 3, firstKey: "compressed/0001", lastKey: "compressed/0003", exts: []string{"txt.gz"}, firstSize: 35},
		{file: "mpdata.tar", samples: 100, firstKey: "000000", lastKey: "000099", exts: []string{"mp"}, firstSize: 7},
		{file: "tendata.tar", samples: 100, firstKey: "000000", lastKey: "000099", exts: []string{"ten"}, firstSize: 12736},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(dir, "data/webdataset", c.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Skip(err)
			}
			samples, err := collect(context.Background(), path, data)
			if err != nil {
				t.Fatal(err)
			}
			if len(samples) != c.samples {
				t.Fatalf("%d samples, want %d", len(samples), c.samples)
			}
			first := samples[0]
			if first.Key != c.firstKey || first.URL != path {
				t.Errorf("first sample key %q url %q, want %q %q", first.Key, first.URL, c.firstKey, path)
			}
			if got := slices.Sorted(maps.Keys(first.Members)); !slices.Equal(got, c.exts) {
				t.Errorf("first sample extensions %v, want %v", got, c.exts)
			}
			if n := len(first.Members[c.exts[0]]); n != c.firstSize {
				t.Errorf("first member has %d bytes, want %d", n, c.firstSize)
			}
			if c.lastKey != "" && samples[len(samples)-1].Key != c.lastKey {
				t.Errorf("last key %q, want %q", samples[len(samples)-1].Key, c.lastKey)
			}
			keys := map[string]bool{}
			for _, s := range samples {
				if keys[s.Key] {
					t.Fatalf("key %q appears in two samples", s.Key)
				}
				keys[s.Key] = true
			}
		})
	}
}

// TestReadShardGrouping checks webdataset's key rule and OpenCLIP's
// repeated-extension guard on synthetic shards.
func TestReadShardGrouping(t *testing.T) {
	reg := func(name string) member { return member{name: name, data: []byte(name)} }
	type want struct {
		key  string
		exts string // sorted, comma-separated
	}
	cases := []struct {
		name    string
		members []member
		want    []want
	}{
		{"directory kept in key", []member{reg("a/b.jpg"), reg("a/b.txt")}, []want{{"a/b", "jpg,txt"}}},
		{"extension after first dot", []member{reg("x.seg.png"), reg("x.txt")}, []want{{"x", "seg.png,txt"}}},
		{"dots in directory names", []member{reg("v1.2/img.JPG")}, []want{{"v1.2/img", "jpg"}}},
		{"extension lower-cased, key kept", []member{reg("CT.JPG"), reg("CT.Txt")}, []want{{"CT", "jpg,txt"}}},
		{"no dot or leading dot skipped", []member{reg("README"), reg("d/.hidden"), reg("k.txt")}, []want{{"k", "txt"}}},
		{"key change splits", []member{reg("a.jpg"), reg("b.jpg")}, []want{{"a", "jpg"}, {"b", "jpg"}}},
		{"repeated extension splits", []member{reg("a.jpg"), reg("a.txt"), reg("a.jpg")}, []want{{"a", "jpg,txt"}, {"a", "jpg"}}},
		{"interleaved keys are not merged", []member{reg("a.jpg"), reg("b.jpg"), reg("a.txt")}, []want{{"a", "jpg"}, {"b", "jpg"}, {"a", "txt"}}},
		{"non-regular entries skipped", []member{
			{name: "d/", typeflag: tar.TypeDir}, {name: "l.jpg", typeflag: tar.TypeSymlink}, reg("l.txt"),
		}, []want{{"l", "txt"}}},
		{"metadata members skipped", []member{reg("__meta__/info.json"), reg("a.txt")}, []want{{"a", "txt"}}},
		{"empty shard", nil, nil},
	}
	for _, c := range cases {
		for _, gz := range []bool{false, true} {
			name := c.name
			if gz {
				name += " gzip"
			}
			t.Run(name, func(t *testing.T) {
				samples, err := collect(context.Background(), "mem.tar", tarBytes(t, c.members, gz))
				if err != nil {
					t.Fatal(err)
				}
				var got []want
				for _, s := range samples {
					got = append(got, want{s.Key, strings.Join(slices.Sorted(maps.Keys(s.Members)), ",")})
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("got %v, want %v", got, c.want)
				}
				for _, s := range samples {
					for ext, data := range s.Members {
						if !strings.HasSuffix(strings.ToLower(string(data)), "."+ext) {
							t.Errorf("member %s holds %q", ext, data)
						}
					}
				}
			})
		}
	}
}

func TestSampleAccessors(t *testing.T) {
	cases := []struct {
		name        string
		members     map[string][]byte
		wantExt     string
		wantImage   bool
		wantCaption string
		wantHasCap  bool
	}{
		{"jpg preferred over png", map[string][]byte{"png": {1}, "jpg": {2}, "txt": []byte("c")}, "jpg", true, "c", true},
		{"png preferred over jpeg (OpenCLIP's order)", map[string][]byte{"jpeg": {1}, "png": {2}}, "png", true, "", false},
		{"webp alone", map[string][]byte{"webp": {1}}, "webp", true, "", false},
		{"no image", map[string][]byte{"txt": []byte("only text"), "json": {}}, "", false, "only text", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := Sample{Key: "k", Members: c.members}
			ext, data, ok := s.Image()
			if ext != c.wantExt || ok != c.wantImage || (ok && !bytes.Equal(data, c.members[ext])) {
				t.Errorf("Image() = %q, %v, %v; want %q, %v", ext, data, ok, c.wantExt, c.wantImage)
			}
			caption, ok := s.Caption()
			if caption != c.wantCaption || ok != c.wantHasCap {
				t.Errorf("Caption() = %q, %v; want %q, %v", caption, ok, c.wantCaption, c.wantHasCap)
			}
		})
	}
}

func TestReadShardErrors(t *testing.T) {
	var members []member
	for _, k := range []string{"a", "b", "c", "d"} {
		members = append(members, member{name: k + ".txt", data: bytes.Repeat([]byte(k), 3000)})
	}
	full := tarBytes(t, members, false)

	t.Run("truncated shard keeps earlier samples", func(t *testing.T) {
		samples, err := collect(context.Background(), "cut.tar", full[:len(full)/2])
		if err == nil || !strings.Contains(err.Error(), "shard cut.tar") {
			t.Fatalf("error %v, want one naming the shard", err)
		}
		if len(samples) == 0 || len(samples) >= 4 {
			t.Errorf("%d samples before the error, want some but not all", len(samples))
		}
	})
	// Cut exactly between members, the end-of-archive blocks missing:
	// archive/tar alone reads that as a complete archive.
	for _, cut := range []struct {
		name  string
		trail int
	}{{"at a member boundary", 2 * 512}, {"after one zero block", 512}} {
		t.Run("truncated "+cut.name, func(t *testing.T) {
			samples, err := collect(context.Background(), "cut.tar", full[:len(full)-cut.trail])
			if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "shard cut.tar") {
				t.Fatalf("error %v, want ErrTruncated naming the shard", err)
			}
			if len(samples) != 4 {
				t.Errorf("%d samples before the error, want the 4 whole ones", len(samples))
			}
		})
	}
	// What Python's tarfile (webdataset's TarWriter) and GNU tar write: the
	// two zero blocks, then zeros up to a 10240-byte record.
	t.Run("complete with record padding", func(t *testing.T) {
		padded := append(bytes.Clone(full), make([]byte, 10240-len(full)%10240)...)
		if samples, err := collect(context.Background(), "py.tar", padded); err != nil || len(samples) != 4 {
			t.Fatalf("%d samples, %v", len(samples), err)
		}
	})
	t.Run("empty archive", func(t *testing.T) {
		if _, err := collect(context.Background(), "empty.tar", tarBytes(t, nil, false)); err != nil {
			t.Errorf("an archive of no members: %v", err)
		}
		if _, err := collect(context.Background(), "zero.tar", nil); !errors.Is(err, ErrTruncated) {
			t.Errorf("a zero-byte shard: %v, want ErrTruncated", err)
		}
	})
	t.Run("corrupt gzip", func(t *testing.T) {
		gz := tarBytes(t, members, true)
		gz[len(gz)/2] ^= 0xff
		_, err := collect(context.Background(), "bad.tgz", gz)
		if err == nil || !strings.Contains(err.Error(), "bad.tgz") {
			t.Fatalf("error %v, want one naming the shard", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := collect(ctx, "x.tar", full)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
	})
	t.Run("caller stops early", func(t *testing.T) {
		n := 0
		for range ReadShard(context.Background(), "x.tar", bytes.NewReader(full)) {
			n++
			break
		}
		if n != 1 {
			t.Errorf("%d iterations after break, want 1", n)
		}
	})
}
