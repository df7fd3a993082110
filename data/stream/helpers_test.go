package stream

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// member is one tar entry of a synthetic shard.
type member struct {
	name     string
	data     []byte
	typeflag byte // tar.TypeReg when zero
}

// tarBytes builds a tar (gzip-compressed when gz) holding members in order.
func tarBytes(t testing.TB, members []member, gz bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w *tar.Writer
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = tar.NewWriter(zw)
	} else {
		w = tar.NewWriter(&buf)
	}
	for _, m := range members {
		hdr := &tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: m.typeflag}
		switch m.typeflag {
		case 0:
			hdr.Typeflag = tar.TypeReg
		case tar.TypeDir, tar.TypeSymlink:
			hdr.Size = 0
			hdr.Linkname = "target"
		}
		if err := w.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Size > 0 {
			if _, err := w.Write(m.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// writeShard writes a synthetic shard into dir and returns its path.
func writeShard(t testing.TB, dir, name string, members []member) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, tarBytes(t, members, false), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// pngBytes encodes a size×size image whose colour is derived from id, so
// that each sample's pixels identify it.
func pngBytes(t testing.TB, id, size int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := range size {
		for x := range size {
			img.Set(x, y, color.NRGBA{uint8(id), uint8(id * 7), uint8(x*16 + y), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// goodSample returns the members of a usable sample: an image and a
// caption that both name the sample.
func goodSample(t testing.TB, key string, id, size int) []member {
	return []member{
		{name: key + ".png", data: pngBytes(t, id, size)},
		{name: key + ".txt", data: []byte("figure " + key)},
		{name: key + ".json", data: []byte(`{"article_text": "long"}`)},
	}
}

// writeDataset writes shards×perShard usable samples and returns the shard
// paths and all keys.
func writeDataset(t testing.TB, dir string, shards, perShard, size int) (paths, keys []string) {
	t.Helper()
	for s := range shards {
		var members []member
		for i := range perShard {
			key := fmt.Sprintf("s%02d/%04d", s, i)
			keys = append(keys, key)
			members = append(members, goodSample(t, key, s*perShard+i, size)...)
		}
		paths = append(paths, writeShard(t, dir, fmt.Sprintf("shard-%06d.tar", s), members))
	}
	return paths, keys
}
