package formats

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

type parquetSource struct {
	spec        Spec
	files       []string
	rows        int
	fingerprint string
}

func openParquet(spec Spec) (Source, error) {
	files, err := expand(spec.Paths, false)
	if err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	src := &parquetSource{spec: spec, files: files}
	h := sha256.New()
	for i, path := range files {
		f, pf, err := openParquetFile(path)
		if err != nil {
			return nil, err
		}
		// Fail now, not after encoding half the data, if a column is missing.
		_, colErr := src.columns(pf)
		st, statErr := f.Stat()
		f.Close()
		if colErr != nil {
			return nil, fmt.Errorf("parquet %s: %w", path, colErr)
		}
		if statErr != nil {
			return nil, statErr
		}
		src.rows += int(pf.NumRows())
		fmt.Fprintf(h, "%d\t%s\t%d\t%d\n", i, baseName(path), st.Size(), st.ModTime().UnixNano())
	}
	src.fingerprint = hex.EncodeToString(h.Sum(nil))
	return src, nil
}

func openParquetFile(path string) (*os.File, *parquet.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("parquet: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("parquet: %w", err)
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipBloomFilters(true))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("parquet %s: %w", path, err)
	}
	return f, pf, nil
}

func (s *parquetSource) Fingerprint() string { return s.fingerprint }
func (s *parquetSource) Len() int            { return s.rows }

// parquetColumns are the leaf columns read, by schema column index; -1 when
// not read.
type parquetColumns struct {
	image, label, caption int
	labels                []int // Spec.LabelColumns
}

// columns finds the leaf columns of the image, label and caption fields.
func (s *parquetSource) columns(pf *parquet.File) (parquetColumns, error) {
	cols := parquetColumns{label: -1, caption: -1}
	paths := pf.Schema().Columns()
	var err error
	if cols.image, err = leafUnder(paths, or(s.spec.ImageKey, DefaultImageColumn), "bytes"); err != nil {
		return cols, err
	}
	switch {
	case s.spec.Labels && len(s.spec.LabelColumns) > 0:
		for _, name := range s.spec.LabelColumns {
			i, err := leafUnder(paths, name, "")
			if err != nil {
				return cols, err
			}
			cols.labels = append(cols.labels, i)
		}
	case s.spec.Labels:
		if cols.label, err = leafUnder(paths, or(s.spec.LabelKey, DefaultLabelColumn), ""); err != nil {
			return cols, err
		}
	}
	if s.spec.Captions {
		if cols.caption, err = leafUnder(paths, or(s.spec.CaptionKey, DefaultCaptionColumn), ""); err != nil {
			return cols, err
		}
	}
	return cols, nil
}

// leafUnder returns the index of the leaf column of field name: the field
// itself when it is a leaf, its only leaf (a list's element), or its leaf
// called prefer (the "bytes" of Hugging Face's image struct).
func leafUnder(paths [][]string, name, prefer string) (int, error) {
	var under []int
	for i, p := range paths {
		if p[0] == name {
			under = append(under, i)
		}
	}
	switch {
	case len(under) == 1:
		return under[0], nil
	case len(under) > 1 && prefer != "":
		for _, i := range under {
			if p := paths[i]; p[len(p)-1] == prefer {
				return i, nil
			}
		}
	}
	var names []string
	for _, p := range paths {
		names = append(names, strings.Join(p, "."))
	}
	if len(under) == 0 {
		return -1, fmt.Errorf("no column %q (columns: %s)", name, strings.Join(names, ", "))
	}
	return -1, fmt.Errorf("column %q has %d leaves, cannot tell which to read (columns: %s)", name, len(under), strings.Join(names, ", "))
}

func (s *parquetSource) Records(ctx context.Context) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for _, path := range s.files {
			if !s.readFile(ctx, path, yield) {
				return
			}
		}
	}
}

// readFile yields the records of one file; false means stop.
func (s *parquetSource) readFile(ctx context.Context, path string, yield func(Record, error) bool) bool {
	f, pf, err := openParquetFile(path)
	if err != nil {
		return yield(Record{}, err)
	}
	defer f.Close()
	cols, err := s.columns(pf)
	if err != nil {
		return yield(Record{}, fmt.Errorf("parquet %s: %w", path, err))
	}
	row := 0
	for g, rg := range pf.RowGroups() {
		if err := ctx.Err(); err != nil {
			return yield(Record{}, err)
		}
		chunks := rg.ColumnChunks()
		read := func(col int) ([][]parquet.Value, error) {
			if col < 0 {
				return nil, nil
			}
			return readColumn(chunks[col])
		}
		images, err := read(cols.image)
		if err == nil && len(images) != int(rg.NumRows()) {
			err = fmt.Errorf("image column has %d rows, the row group %d", len(images), rg.NumRows())
		}
		var labels, captions [][]parquet.Value
		if err == nil {
			labels, err = read(cols.label)
		}
		perClass := make([][][]parquet.Value, len(cols.labels))
		for j, col := range cols.labels {
			if err == nil {
				perClass[j], err = read(col)
			}
		}
		if err == nil {
			captions, err = read(cols.caption)
		}
		if err != nil {
			return yield(Record{}, fmt.Errorf("parquet %s, row group %d: %w", path, g, err))
		}
		for i, img := range images {
			rec := Record{Key: fmt.Sprintf("%s#%d", baseName(path), row), Source: path}
			row++
			if len(img) != 1 {
				return yield(rec, fmt.Errorf("parquet %s row %d: no image", path, row-1))
			}
			rec.Image = img[0].ByteArray()
			switch {
			case labels != nil && s.spec.LabelList:
				items := make([]string, len(labels[i]))
				for j, v := range labels[i] {
					items[j] = valueText(v)
				}
				rec.Label = strings.Join(items, ValueSeparator)
			case labels != nil:
				if len(labels[i]) != 1 {
					return yield(rec, fmt.Errorf("parquet %s row %d: %d label values, want one", path, row-1, len(labels[i])))
				}
				rec.Label = valueText(labels[i][0])
			case len(perClass) > 0:
				cells := make([]string, len(perClass))
				for j, col := range perClass {
					if len(col[i]) != 1 {
						return yield(rec, fmt.Errorf("parquet %s row %d: column %q has %d values, want one", path, row-1, s.spec.LabelColumns[j], len(col[i])))
					}
					cells[j] = valueText(col[i][0])
				}
				rec.Label = strings.Join(cells, ValueSeparator)
			}
			if captions != nil {
				for _, c := range captions[i] {
					rec.Captions = append(rec.Captions, valueText(c))
				}
			}
			if !yield(rec, nil) {
				return false
			}
		}
	}
	return true
}

// readColumn reads every value of a column chunk, grouped into rows (a new
// row starts at repetition level 0) that keep only non-null values, with
// byte arrays copied out of the pages so they outlive them.
func readColumn(chunk parquet.ColumnChunk) ([][]parquet.Value, error) {
	pages := chunk.Pages()
	defer pages.Close()
	var rows [][]parquet.Value
	buf := make([]parquet.Value, 64)
	for {
		page, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		values := page.Values()
		for {
			n, err := values.ReadValues(buf)
			for _, v := range buf[:n] {
				v = v.Clone()
				if v.RepetitionLevel() == 0 || len(rows) == 0 {
					rows = append(rows, nil)
				}
				if !v.IsNull() {
					rows[len(rows)-1] = append(rows[len(rows)-1], v)
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				parquet.Release(page)
				return nil, err
			}
		}
		parquet.Release(page)
	}
}

// valueText writes a label or caption value as text: integers in decimal
// (Hugging Face ClassLabel indices), byte arrays as they are.
func valueText(v parquet.Value) string {
	switch v.Kind() {
	case parquet.Boolean:
		return strconv.FormatBool(v.Boolean())
	case parquet.Int32:
		return strconv.FormatInt(int64(v.Int32()), 10)
	case parquet.Int64:
		return strconv.FormatInt(v.Int64(), 10)
	case parquet.Float:
		return strconv.FormatFloat(float64(v.Float()), 'g', -1, 32)
	case parquet.Double:
		return strconv.FormatFloat(v.Double(), 'g', -1, 64)
	default:
		return string(bytes.Clone(v.ByteArray()))
	}
}

func baseName(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		return path[i+1:]
	}
	return path
}
