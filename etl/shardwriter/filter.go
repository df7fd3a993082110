package shardwriter

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Copy places shard file src at dst without rewriting it: a hard link when
// both are on one file system, else a copy. dst appears atomically (through
// a temporary name and a rename), and an existing dst is replaced.
func Copy(src, dst string) (File, error) {
	tmp := filepath.Join(filepath.Dir(dst), TempPrefix+filepath.Base(dst)+"-link")
	os.Remove(tmp)
	if err := os.Link(src, tmp); err != nil {
		if err := copyFile(src, tmp); err != nil {
			os.Remove(tmp)
			return File{}, fmt.Errorf("shardwriter: copy %s to %s: %w", src, dst, err)
		}
	}
	f, err := describe(tmp, filepath.Base(dst))
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return File{}, fmt.Errorf("shardwriter: copy %s to %s: %w", src, dst, err)
	}
	return f, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// describe hashes a file.
func describe(p, name string) (File, error) {
	f, err := os.Open(p)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return File{}, err
	}
	return File{Name: name, Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Filter writes dst as src without the samples whose key drop reports,
// atomically, and returns the new file and the samples kept.
func Filter(src, dst string, f Format, drop func(key string) bool) (File, int, error) {
	tmp := filepath.Join(filepath.Dir(dst), TempPrefix+filepath.Base(dst)+"-filter")
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return File{}, 0, fmt.Errorf("shardwriter: filter %s: %w", src, err)
	}
	fail := func(err error) (File, int, error) {
		out.Close()
		os.Remove(tmp)
		return File{}, 0, fmt.Errorf("shardwriter: filter %s into %s: %w", src, dst, err)
	}
	h := sha256.New()
	bw := bufio.NewWriterSize(out, 1<<20)
	cw := &countingWriter{w: io.MultiWriter(bw, h)}
	var kept int
	switch f {
	case WebDataset:
		kept, err = filterTar(src, cw, drop)
	case Parquet:
		kept, err = filterParquet(src, cw, drop)
	default:
		err = fmt.Errorf("unknown format %q", f)
	}
	if err != nil {
		return fail(err)
	}
	if err := bw.Flush(); err != nil {
		return fail(err)
	}
	if err := out.Sync(); err != nil {
		return fail(err)
	}
	if err := out.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return File{}, 0, fmt.Errorf("shardwriter: filter %s into %s: %w", src, dst, err)
	}
	return File{Name: filepath.Base(dst), Bytes: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))}, kept, nil
}

// memberKey is WebDataset's key of a tar member: its path up to the first
// dot of the base name.
func memberKey(name string) string {
	dir, base := path.Split(name)
	if dot := strings.IndexByte(base, '.'); dot > 0 {
		base = base[:dot]
	}
	return dir + base
}

func filterTar(src string, w io.Writer, drop func(string) bool) (int, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	tr := tar.NewReader(bufio.NewReaderSize(in, 1<<20))
	tw := tar.NewWriter(w)
	kept, last := 0, ""
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
		key := memberKey(hdr.Name)
		if drop(key) {
			continue
		}
		if key != last {
			kept++
			last = key
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return 0, err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return 0, err
		}
	}
	return kept, tw.Close()
}

func filterParquet(src string, w io.Writer, drop func(string) bool) (int, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return 0, err
	}
	pf, err := parquet.OpenFile(in, st.Size())
	if err != nil {
		return 0, err
	}
	r := parquet.NewGenericReader[Row](pf)
	defer r.Close()
	pw := parquet.NewGenericWriter[Row](w,
		parquet.SkipPageBounds("jpg"), parquet.SkipPageStatistics("jpg"),
		parquet.SkipPageBounds("json"), parquet.SkipPageStatistics("json"),
		parquet.SkipPageBounds("txt"), parquet.SkipPageStatistics("txt"),
		parquet.CreatedBy("bmca etl", "1", ""),
	)
	kept := 0
	var buffered int64
	rows := make([]Row, 16)
	for {
		n, err := r.Read(rows)
		for _, row := range rows[:n] {
			if drop(row.Key) {
				continue
			}
			if _, err := pw.Write([]Row{row}); err != nil {
				return 0, err
			}
			kept++
			buffered += int64(len(row.JPG) + len(row.JSON) + len(row.TXT))
			if buffered >= rowGroupBytes {
				buffered = 0
				if err := pw.Flush(); err != nil {
					return 0, err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	return kept, pw.Close()
}
