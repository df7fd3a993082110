package formats

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"
)

type table struct {
	files       []fileEntry
	captions    [][]string // per file, when reading captions
	fingerprint string
}

func openTable(spec Spec) (Source, error) {
	paths, err := expand(spec.Paths, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Format, err)
	}
	pathCol := or(spec.ImageKey, DefaultPathColumn)
	labelCol := or(spec.LabelKey, DefaultLabelColumn)
	captionCol := or(spec.CaptionKey, DefaultCaptionColumn)
	sep := ','
	if spec.Format == TSV {
		sep = '\t'
	}
	t := &table{}
	h := sha256.New()
	byPath := map[string]int{} // resolved path → index in t.files, for captions
	var missing []string
	listed := 0
	for ti, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", spec.Format, path, err)
		}
		h.Write(data)
		r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
		r.Comma = sep
		r.LazyQuotes = true
		r.FieldsPerRecord = -1
		header, err := r.Read()
		if err != nil {
			return nil, fmt.Errorf("%s %s: header row: %w", spec.Format, path, err)
		}
		col := func(name string) (int, error) {
			for i, h := range header {
				if strings.TrimSpace(h) == name {
					return i, nil
				}
			}
			return -1, fmt.Errorf("%s %s: no column %q (columns: %s)", spec.Format, path, name, strings.Join(header, ", "))
		}
		pi, err := col(pathCol)
		if err != nil {
			return nil, err
		}
		li, ci := -1, -1
		var lcols []int
		switch {
		case spec.Labels && len(spec.LabelColumns) > 0:
			for _, name := range spec.LabelColumns {
				i, err := col(name)
				if err != nil {
					return nil, err
				}
				lcols = append(lcols, i)
			}
		case spec.Labels:
			if li, err = col(labelCol); err != nil {
				return nil, err
			}
		}
		if spec.Captions {
			if ci, err = col(captionCol); err != nil {
				return nil, err
			}
		}
		dir := filepath.Dir(path)
		for {
			row, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			line, _ := r.FieldPos(0)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", spec.Format, path, err)
			}
			cell := func(i int) (string, error) {
				if i >= len(row) {
					return "", fmt.Errorf("%s %s:%d: %d fields, no column %q", spec.Format, path, line, len(row), header[i])
				}
				return row[i], nil
			}
			rel, err := cell(pi)
			if err != nil {
				return nil, err
			}
			rel = strings.TrimSpace(rel)
			if rel == "" {
				return nil, fmt.Errorf("%s %s:%d: empty %q cell", spec.Format, path, line, pathCol)
			}
			if spec.PathTemplate != "" {
				rel = strings.ReplaceAll(spec.PathTemplate, "{}", rel)
			}
			img := rel
			if !filepath.IsAbs(img) {
				img = filepath.Join(dir, filepath.FromSlash(rel))
			}
			entry := fileEntry{path: img, key: rel}
			if li >= 0 {
				if entry.label, err = cell(li); err != nil {
					return nil, err
				}
				entry.label = strings.TrimSpace(entry.label)
			}
			if lcols != nil {
				cells := make([]string, len(lcols))
				for j, i := range lcols {
					if cells[j], err = cell(i); err != nil {
						return nil, err
					}
					cells[j] = strings.TrimSpace(cells[j])
				}
				entry.label = strings.Join(cells, ValueSeparator)
			}
			var caption string
			if ci >= 0 {
				if caption, err = cell(ci); err != nil {
					return nil, err
				}
			}
			listed++
			if k, seen := byPath[img]; seen && spec.Captions {
				t.captions[k] = append(t.captions[k], caption)
				continue
			}
			info, err := os.Stat(img)
			if err != nil {
				missing = append(missing, fmt.Sprintf("%s (line %d)", img, line))
				continue
			}
			entry.size, entry.mtime = info.Size(), info.ModTime().UnixNano()
			fmt.Fprintf(h, "%d\t%s\t%d\t%d\n", ti, rel, entry.size, entry.mtime)
			byPath[img] = len(t.files)
			t.files = append(t.files, entry)
			if spec.Captions {
				t.captions = append(t.captions, []string{caption})
			}
		}
	}
	switch {
	case listed == 0:
		return nil, fmt.Errorf("%s %s: no rows", spec.Format, strings.Join(paths, ", "))
	case len(t.files) == 0:
		return nil, fmt.Errorf("%s %s lists %d images, none of which exist (first: %s): %w", spec.Format, strings.Join(paths, ", "), listed, missing[0], ErrAbsent)
	case len(missing) > 0:
		return nil, fmt.Errorf("%s %s: %d of the images it lists are missing, first %s", spec.Format, strings.Join(paths, ", "), len(missing), missing[0])
	}
	t.fingerprint = hex.EncodeToString(h.Sum(nil))
	return t, nil
}

func (t *table) Fingerprint() string { return t.fingerprint }
func (t *table) Len() int            { return len(t.files) }

func (t *table) Records(ctx context.Context) iter.Seq2[Record, error] {
	return readFiles(ctx, t.files, t.captions)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
