// Package formats reads evaluation data sets laid out the ways public
// biomedical data sets are distributed: an image folder (one sub-folder per
// class), a CSV or TSV table of image paths with labels or captions, and
// parquet files in the Hugging Face datasets layout (an image column holding
// encoded bytes, a label or caption column). WebDataset shards are read by
// eval/tasks through data/stream; this package covers the rest.
//
// Open lists a data set without decoding anything and returns a Source whose
// Records streams encoded images with their raw labels (the folder name, the
// table cell, the parquet value written as text) or captions. Mapping raw
// labels to class indices is the caller's business (eval/tasks does it from
// the suite file). Absent data gives an error wrapping ErrAbsent, so callers
// can report the task as skipped rather than failed.
//
//	src, err := formats.Open(formats.Spec{Format: formats.ImageFolder, Paths: []string{"lc25000/lung"}, Labels: true})
//	for rec, err := range src.Records(ctx) { ... rec.Image, rec.Label ... }
//
// Images are passed on still encoded. WithExtraDecoders extends a
// preprocessing function with TIFF and BMP, which several pathology and
// cytology data sets use and data/preprocess does not read.
package formats

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"strings"
)

// Format names a data layout.
type Format string

// The layouts a suite task may use.
const (
	// WebDataset is tar shards of samples (jpg + cls or txt members); read
	// by eval/tasks, not by Open.
	WebDataset Format = "webdataset"
	// ImageFolder is root/<class>/…/<image>: every sub-folder of a root is
	// a class, named by its folder, and holds that class's images at any
	// depth (torchvision's ImageFolder, recursive).
	ImageFolder Format = "imagefolder"
	// CSV is a comma-separated table with a header row: an image path
	// column and a label or caption column.
	CSV Format = "csv"
	// TSV is CSV separated by tabs.
	TSV Format = "tsv"
	// Parquet is Hugging Face datasets' layout: an image column (a struct
	// with a bytes field, or plain binary) and a label or caption column.
	Parquet Format = "parquet"
)

// Formats lists every layout, in the order the documentation gives them.
var Formats = []Format{WebDataset, ImageFolder, CSV, TSV, Parquet}

// Default column names of the table formats (Spec fields left empty).
const (
	DefaultPathColumn    = "path"    // CSV/TSV: the image file
	DefaultImageColumn   = "image"   // parquet: the encoded image
	DefaultLabelColumn   = "label"   // CSV/TSV/parquet
	DefaultCaptionColumn = "caption" // CSV/TSV/parquet
)

// ImageExtensions are the file extensions ImageFolder collects (compared
// case-insensitively).
var ImageExtensions = []string{".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}

// ErrAbsent is wrapped by Open's error when the data is not there: no file
// matches the paths, or a table lists images none of which exist.
var ErrAbsent = errors.New("data absent")

// Record is one example: an encoded image and its raw label or captions.
type Record struct {
	// Key identifies the record within its source, for messages: a path
	// relative to the root or table, or "file.parquet#row".
	Key string
	// Source is the file or folder the record came from.
	Source string
	// Image holds the encoded image (JPEG, PNG, TIFF, …).
	Image []byte
	// Label is the raw label: the class folder's name, the table cell, or
	// the parquet value as decimal or text. Empty unless Spec.Labels.
	// Several values (the cells of Spec.LabelColumns, the items of a
	// list-valued parquet label with Spec.LabelList) are joined with
	// ValueSeparator.
	Label string
	// Captions are the image's captions (Spec.Captions). Tables give one
	// caption per row and group rows naming the same image; parquet gives
	// the values of the caption column (a string or a list of strings).
	Captions []string
}

// Spec says where a data set is and how it is laid out.
type Spec struct {
	// Format is the layout (not WebDataset).
	Format Format
	// Paths are files (tables, parquet) or folders (image folder roots);
	// globs are expanded. Relative paths are relative to the working
	// directory: eval/tasks resolves them against the suite's data root.
	Paths []string
	// ImageKey is the table column with the image path (default "path") or
	// the parquet column with the image (default "image").
	ImageKey string
	// LabelKey is the label column (default "label").
	LabelKey string
	// CaptionKey is the caption column (default "caption").
	CaptionKey string
	// PathTemplate builds an image path from the path cell of a table:
	// "{}" is replaced by the cell ("images/{}.jpg" for a table of ids).
	// The result, when relative, is relative to the table's folder.
	PathTemplate string
	// Subdir, for image folders, restricts each class to one sub-folder of
	// it (e.g. "images" when class folders also hold masks).
	Subdir string
	// Labels and Captions say what to read besides the image.
	Labels, Captions bool
	// LabelColumns, when set, replaces LabelKey with one column per class
	// (a multi-label table's 0/1 columns), read into Record.Label joined
	// with ValueSeparator (csv, tsv, parquet).
	LabelColumns []string
	// LabelList accepts a list-valued parquet label column (a multi-hot
	// vector, or the labels of several classes): its items, possibly none,
	// are joined with ValueSeparator. Without it a label must be one value.
	LabelList bool
}

// ValueSeparator joins the values of a multi-valued label in Record.Label
// (the ASCII unit separator, which no label text contains).
const ValueSeparator = "\x1f"

// Source is an opened data set.
type Source interface {
	// Fingerprint changes whenever the data does: it covers file names,
	// sizes and modification times (and a table's own content), so a
	// feature cache keyed by it is invalidated by edits.
	Fingerprint() string
	// Len is the number of records Records yields, or -1 if unknown.
	Len() int
	// Records streams the records in a fixed order (sorted paths, table
	// order, parquet row order). It stops at the first error.
	Records(ctx context.Context) iter.Seq2[Record, error]
}

// Open lists the data set spec describes. Nothing is decoded; tables are
// read and image files stat-ed so that Fingerprint and Len are known.
func Open(spec Spec) (Source, error) {
	if len(spec.Paths) == 0 {
		return nil, fmt.Errorf("%s data: no paths given", spec.Format)
	}
	switch spec.Format {
	case ImageFolder:
		return openImageFolder(spec)
	case CSV, TSV:
		return openTable(spec)
	case Parquet:
		return openParquet(spec)
	case WebDataset:
		return nil, fmt.Errorf("webdataset data: read shards with data/stream (eval/tasks does)")
	default:
		return nil, fmt.Errorf("unknown data format %q (known: %s)", spec.Format, formatList())
	}
}

func formatList() string {
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// expand turns the paths into existing files or folders (globs expanded),
// in the order given; an error wraps ErrAbsent when nothing matches.
func expand(paths []string, wantDir bool) ([]string, error) {
	var out []string
	var missing []string
	for _, p := range paths {
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("path %q: %w", p, err)
		}
		var kept []string
		for _, m := range matches {
			if isDir(m) == wantDir {
				kept = append(kept, m)
			}
		}
		if len(kept) == 0 {
			missing = append(missing, p)
			continue
		}
		out = append(out, kept...)
	}
	if len(missing) > 0 {
		what := "file"
		if wantDir {
			what = "folder"
		}
		return nil, fmt.Errorf("no %s at %s: %w", what, strings.Join(missing, ", "), ErrAbsent)
	}
	return out, nil
}
