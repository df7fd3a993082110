// Package shardwriter writes BIOMEDICA samples into shards: WebDataset
// tar files (members <key>.jpg, <key>.txt, <key>.json) and/or parquet
// files (one row per sample), both named by a six-digit index
// (000000.tar, 000000.parquet) as BIOMEDICA's Hugging Face shards are.
//
// A shard is written to hidden temporary files next to its final names
// and renamed into place only by Commit, after an fsync: a crash leaves
// either a complete shard or none, never a truncated one. With several
// formats a shard index writes one file per format, holding the same
// samples in the same order.
//
//	sh, err := shardwriter.Create(dir, 7, []shardwriter.Format{shardwriter.WebDataset})
//	err = sh.Add(shardwriter.Sample{Key: "PMC1-0-f1", JPEG: jpg, Caption: "…", JSON: js})
//	done, err := sh.Commit() // dir/000007.tar appears
//	err = shardwriter.WriteSizes(dir, map[string]int{"000007.tar": done.Samples})
package shardwriter

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bmca/bmca/internal/atomicfile"
	"github.com/parquet-go/parquet-go"
)

// Format is a shard file format.
type Format string

// The formats.
const (
	// WebDataset writes tar shards, as data/stream and OpenCLIP read them.
	WebDataset Format = "wds"
	// Parquet writes parquet shards with the columns of Row.
	Parquet Format = "parquet"
)

// Ext is the file extension of the format's shards.
func (f Format) Ext() string {
	if f == Parquet {
		return "parquet"
	}
	return "tar"
}

// ParseFormats reads a comma-separated list such as "wds,parquet".
func ParseFormats(s string) ([]Format, error) {
	var out []Format
	for _, part := range strings.Split(s, ",") {
		f := Format(strings.ToLower(strings.TrimSpace(part)))
		switch f {
		case WebDataset, Parquet:
		case "webdataset", "tar":
			f = WebDataset
		default:
			return nil, fmt.Errorf("unknown format %q (expected wds, parquet or both, comma-separated)", part)
		}
		for _, g := range out {
			if g == f {
				return nil, fmt.Errorf("format %q given twice in %q", f, s)
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// Name is the file name of shard index in format f: "000042.tar".
func Name(index int, f Format) string { return fmt.Sprintf("%06d.%s", index, f.Ext()) }

var shardName = regexp.MustCompile(`^(\d{6,})\.(tar|parquet)$`)

// ParseName reads a shard file name written by Name.
func ParseName(name string) (index int, f Format, ok bool) {
	m := shardName.FindStringSubmatch(name)
	if m == nil {
		return 0, "", false
	}
	index, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, "", false
	}
	if m[2] == "parquet" {
		return index, Parquet, true
	}
	return index, WebDataset, true
}

// TempPrefix starts the names of the temporary files of unfinished shards.
const TempPrefix = ".tmp-"

// Sample is one sample to write.
type Sample struct {
	Key     string
	JPEG    []byte
	Caption string
	JSON    []byte
	// Article, License, Hash and PHash fill parquet's metadata columns.
	Article string
	License string
	Hash    string
	PHash   string
}

// Row is a parquet row. The first four columns are the WebDataset members;
// the others repeat four JSON fields so that a reader can filter, or look
// up the perceptual hash, without parsing the json column. Images are stored uncompressed (JPEG does not
// compress), text with zstd.
type Row struct {
	Key                string `parquet:"__key__"`
	JPG                []byte `parquet:"jpg"`
	TXT                string `parquet:"txt,zstd"`
	JSON               string `parquet:"json,zstd"`
	ArticleAccessionID string `parquet:"article_accession_id,zstd"`
	ArticleLicense     string `parquet:"article_license,zstd"`
	ImageHash          string `parquet:"image_hash,zstd"`
	ImagePHash         string `parquet:"image_phash,zstd"`
}

// tarHeaderBytes approximates the tar overhead of a member: its header
// block plus average padding.
const tarHeaderBytes = 512 + 256

// SampleBytes is the size a sample adds to a shard, as Shard.Bytes counts it.
func SampleBytes(s Sample) int64 {
	return int64(len(s.JPEG)+len(s.Caption)+len(s.JSON)) + 3*tarHeaderBytes
}

// memberTime is the modification time of every tar member, fixed so that
// the same samples give byte-identical shards.
var memberTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// File describes a committed shard file.
type File struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Committed describes a committed shard.
type Committed struct {
	Index   int
	Samples int
	Files   []File
}

// Shard is a shard being written.
type Shard struct {
	dir     string
	index   int
	outs    []*output
	samples int
	bytes   int64
}

// output is the temporary file of one format.
type output struct {
	format Format
	final  string
	f      *os.File
	bw     *bufio.Writer
	h      hash.Hash
	count  *countingWriter
	tw     *tar.Writer
	pw     *parquet.GenericWriter[Row]
	rowBuf int64 // bytes of parquet rows not yet flushed to a row group
}

// rowGroupBytes is the amount of row data after which a parquet row group
// is flushed, bounding the writer's memory.
const rowGroupBytes = 64 << 20

// Create starts shard index in dir, one temporary file per format.
func Create(dir string, index int, formats []Format) (*Shard, error) {
	if len(formats) == 0 {
		return nil, errors.New("shardwriter: no format")
	}
	s := &Shard{dir: dir, index: index}
	for _, f := range formats {
		final := Name(index, f)
		file, err := os.CreateTemp(dir, TempPrefix+final+"-*")
		if err != nil {
			s.Abort()
			return nil, fmt.Errorf("shardwriter: shard %s: %w", filepath.Join(dir, final), err)
		}
		o := &output{format: f, final: final, f: file, h: sha256.New()}
		o.bw = bufio.NewWriterSize(file, 1<<20)
		o.count = &countingWriter{w: io.MultiWriter(o.bw, o.h)}
		switch f {
		case WebDataset:
			o.tw = tar.NewWriter(o.count)
		case Parquet:
			o.pw = parquet.NewGenericWriter[Row](o.count,
				parquet.SkipPageBounds("jpg"), parquet.SkipPageStatistics("jpg"),
				parquet.SkipPageBounds("json"), parquet.SkipPageStatistics("json"),
				parquet.SkipPageBounds("txt"), parquet.SkipPageStatistics("txt"),
				parquet.CreatedBy("bmca etl", "1", ""),
			)
		}
		s.outs = append(s.outs, o)
	}
	return s, nil
}

// Index is the shard's index.
func (s *Shard) Index() int { return s.index }

// Samples is the number of samples added.
func (s *Shard) Samples() int { return s.samples }

// Bytes is the size of the samples added, as SampleBytes counts it.
func (s *Shard) Bytes() int64 { return s.bytes }

// Add appends a sample to every format.
func (s *Shard) Add(smp Sample) error {
	for _, o := range s.outs {
		var err error
		switch o.format {
		case WebDataset:
			err = o.addTar(smp)
		case Parquet:
			err = o.addParquet(smp)
		}
		if err != nil {
			return fmt.Errorf("shardwriter: shard %s, sample %q: %w", filepath.Join(s.dir, o.final), smp.Key, err)
		}
	}
	s.samples++
	s.bytes += SampleBytes(smp)
	return nil
}

func (o *output) addTar(smp Sample) error {
	for _, m := range []struct {
		ext  string
		data []byte
	}{{"jpg", smp.JPEG}, {"txt", []byte(smp.Caption)}, {"json", smp.JSON}} {
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     smp.Key + "." + m.ext,
			Size:     int64(len(m.data)),
			Mode:     0o644,
			ModTime:  memberTime,
		}
		if err := o.tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := o.tw.Write(m.data); err != nil {
			return err
		}
	}
	return nil
}

func (o *output) addParquet(smp Sample) error {
	row := Row{Key: smp.Key, JPG: smp.JPEG, TXT: smp.Caption, JSON: string(smp.JSON),
		ArticleAccessionID: smp.Article, ArticleLicense: smp.License, ImageHash: smp.Hash, ImagePHash: smp.PHash}
	if _, err := o.pw.Write([]Row{row}); err != nil {
		return err
	}
	o.rowBuf += SampleBytes(smp)
	if o.rowBuf >= rowGroupBytes {
		o.rowBuf = 0
		return o.pw.Flush()
	}
	return nil
}

// Commit finishes every file, makes it durable and renames it to its
// final name. After an error the temporary files are removed and nothing
// is renamed, unless the failure came between two renames; a final file
// then exists without its siblings, and Commit's caller, which has not
// recorded the shard, must treat it as unfinished.
func (s *Shard) Commit() (Committed, error) {
	c := Committed{Index: s.index, Samples: s.samples}
	for _, o := range s.outs {
		if err := o.finish(); err != nil {
			s.Abort()
			return c, fmt.Errorf("shardwriter: shard %s: %w", filepath.Join(s.dir, o.final), err)
		}
		c.Files = append(c.Files, File{Name: o.final, Bytes: o.count.n, SHA256: hex.EncodeToString(o.h.Sum(nil))})
	}
	for _, o := range s.outs {
		if err := os.Rename(o.f.Name(), filepath.Join(s.dir, o.final)); err != nil {
			s.Abort()
			return c, fmt.Errorf("shardwriter: shard %s: %w", filepath.Join(s.dir, o.final), err)
		}
		o.f = nil
	}
	s.outs = nil
	if err := SyncDir(s.dir); err != nil {
		return c, fmt.Errorf("shardwriter: shard %d in %s: %w", s.index, s.dir, err)
	}
	return c, nil
}

func (o *output) finish() error {
	switch o.format {
	case WebDataset:
		if err := o.tw.Close(); err != nil {
			return err
		}
	case Parquet:
		if err := o.pw.Close(); err != nil {
			return err
		}
	}
	if err := o.bw.Flush(); err != nil {
		return err
	}
	if err := o.f.Sync(); err != nil {
		return err
	}
	if err := o.f.Chmod(0o644); err != nil {
		return err
	}
	return o.f.Close()
}

// Abort removes the shard's temporary files.
func (s *Shard) Abort() {
	for _, o := range s.outs {
		if o.f != nil {
			o.f.Close()
			os.Remove(o.f.Name())
		}
	}
	s.outs = nil
}

// SyncDir makes renames in dir durable (see atomicfile.SyncDir).
func SyncDir(dir string) error { return atomicfile.SyncDir(dir) }

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
