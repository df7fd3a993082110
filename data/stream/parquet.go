package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/parquet-go/parquet-go"
)

// readParquet streams the samples of one parquet shard, one row group at a
// time, reading only the projected columns (image bytes, caption, key and
// the metadata columns) through ra, a local file or an HTTP range reader.
// The image goes to Members["jpg"] whatever its format (decoders detect it
// from the bytes), the caption to Members["txt"], metadata columns to Meta
// as JSON. Keys are the key column or "<row number>".
func readParquet(ctx context.Context, url string, ra io.ReaderAt, size int64, cols ParquetColumns, meta map[string]bool, maxMember int64, yield func(Sample) bool) (err error) {
	f, err := parquet.OpenFile(ra, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(1<<20))
	if err != nil {
		return fmt.Errorf("shard %s: parquet: %w", url, err)
	}
	proj, err := projectParquet(f.Schema(), cols, meta)
	if err != nil {
		return fmt.Errorf("shard %s: %w", url, err)
	}
	defer func() {
		// parquet-go panics on conversion errors it cannot report otherwise.
		if r := recover(); r != nil {
			err = fmt.Errorf("shard %s: parquet: %v", url, r)
		}
	}()
	row := int64(0)
	rows := make([]parquet.Row, 8)
	for gi, rg := range f.RowGroups() {
		r := parquet.NewRowGroupReader(rg, proj.schema)
		for {
			if err := ctx.Err(); err != nil {
				r.Close()
				return fmt.Errorf("shard %s: %w", url, err)
			}
			n, rerr := r.ReadRows(rows)
			for _, values := range rows[:n] {
				s := proj.sample(url, row, values, maxMember)
				row++
				if !yield(s) {
					r.Close()
					return nil
				}
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				r.Close()
				return fmt.Errorf("shard %s, row group %d: %w", url, gi, rerr)
			}
		}
		r.Close()
	}
	return nil
}

// projection is the subset of a parquet schema a stream reads.
type projection struct {
	schema              *parquet.Schema
	image, caption, key int            // leaf column indexes, -1 if absent
	meta                map[int]string // leaf column index → metadata field
	repeated            map[int]bool   // leaf columns that are lists
}

// projectParquet picks the columns to read and builds the schema that
// reads only them.
func projectParquet(file *parquet.Schema, cols ParquetColumns, meta map[string]bool) (*projection, error) {
	fields := map[string]parquet.Field{}
	for _, f := range file.Fields() {
		fields[f.Name()] = f
	}
	pick := func(given string, candidates ...string) (string, error) {
		if given != "" {
			if _, ok := fields[given]; !ok {
				return "", fmt.Errorf("parquet: no column %q", given)
			}
			return given, nil
		}
		for _, c := range candidates {
			if _, ok := fields[c]; ok {
				return c, nil
			}
		}
		return "", nil
	}
	img, err := pick(cols.Image, "image", "jpg", "png", "jpeg", "webp")
	if err != nil {
		return nil, err
	}
	if img == "" {
		return nil, fmt.Errorf("parquet: no image column (image, jpg, png, jpeg, webp) and none named")
	}
	cap, err := pick(cols.Caption, "txt", "caption", "text")
	if err != nil {
		return nil, err
	}
	key, err := pick(cols.Key, "__key__", "key")
	if err != nil {
		return nil, err
	}
	group := parquet.Group{}
	imgPath := []string{img}
	if f := fields[img]; !f.Leaf() {
		// Hugging Face's Image feature: a {bytes, path} struct; read bytes only.
		var bytesField parquet.Field
		for _, sub := range f.Fields() {
			if sub.Name() == "bytes" {
				bytesField = sub
			}
		}
		if bytesField == nil {
			return nil, fmt.Errorf("parquet: image column %q is a group without a bytes field", img)
		}
		var node parquet.Node = parquet.Group{"bytes": bytesField}
		if f.Optional() {
			node = parquet.Optional(node)
		}
		group[img] = node
		imgPath = []string{img, "bytes"}
	} else {
		group[img] = fields[img]
	}
	for _, c := range []string{cap, key} {
		if c != "" {
			group[c] = fields[c]
		}
	}
	metaCols := cols.Meta
	if metaCols == nil {
		for k := range meta {
			metaCols = append(metaCols, k)
		}
		slices.Sort(metaCols)
	}
	for _, m := range metaCols {
		if f, ok := fields[m]; ok && group[m] == nil {
			group[m] = f
		}
	}
	p := &projection{schema: parquet.NewSchema("projection", group), image: -1, caption: -1, key: -1,
		meta: map[int]string{}, repeated: map[int]bool{}}
	if leaf, ok := p.schema.Lookup(imgPath...); ok {
		p.image = leaf.ColumnIndex
	}
	if leaf, ok := p.schema.Lookup(cap); ok && cap != "" {
		p.caption = leaf.ColumnIndex
	}
	if leaf, ok := p.schema.Lookup(key); ok && key != "" {
		p.key = leaf.ColumnIndex
	}
	for _, m := range metaCols {
		if group[m] == nil {
			continue
		}
		for _, path := range p.schema.Columns() {
			if len(path) > 0 && path[0] == m {
				leaf, _ := p.schema.Lookup(path...)
				p.meta[leaf.ColumnIndex] = m
				p.repeated[leaf.ColumnIndex] = leaf.MaxRepetitionLevel > 0
				break // one leaf per metadata column (lists of scalars)
			}
		}
	}
	return p, nil
}

// sample turns one projected row into a Sample. Byte values are copied:
// the reader reuses its page buffers.
func (p *projection) sample(url string, row int64, values parquet.Row, maxMember int64) Sample {
	s := Sample{Key: fmt.Sprint(row), URL: url, Members: map[string][]byte{}}
	lists := map[int][]any{}
	for _, v := range values {
		c := v.Column()
		switch {
		case c == p.image && !v.IsNull():
			if maxMember > 0 && int64(len(v.ByteArray())) > maxMember {
				s.bad = ReasonTooLarge
				continue
			}
			s.Members["jpg"] = slices.Clone(v.ByteArray())
		case c == p.caption && !v.IsNull():
			s.Members[CaptionExtension] = slices.Clone(v.ByteArray())
		case c == p.key && !v.IsNull():
			s.Key = string(v.ByteArray())
		default:
			if _, ok := p.meta[c]; ok {
				if x, ok := parquetScalar(v); ok {
					lists[c] = append(lists[c], x)
				}
			}
		}
	}
	for c, field := range p.meta {
		vals := lists[c]
		var raw []byte
		var err error
		switch {
		case p.repeated[c]:
			if vals == nil {
				vals = []any{}
			}
			raw, err = json.Marshal(vals)
		case len(vals) == 1:
			raw, err = json.Marshal(vals[0])
		default:
			continue
		}
		if err == nil {
			if s.Meta == nil {
				s.Meta = map[string]json.RawMessage{}
			}
			s.Meta[field] = raw
		}
	}
	return s
}

// parquetScalar converts a leaf value to a JSON-marshallable Go value.
func parquetScalar(v parquet.Value) (any, bool) {
	if v.IsNull() {
		return nil, false
	}
	switch v.Kind() {
	case parquet.Boolean:
		return v.Boolean(), true
	case parquet.Int32:
		return v.Int32(), true
	case parquet.Int64:
		return v.Int64(), true
	case parquet.Float:
		if f := float64(v.Float()); !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, true
		}
	case parquet.Double:
		if f := v.Double(); !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, true
		}
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return string(v.ByteArray()), true
	}
	return nil, false
}
