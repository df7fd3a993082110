package prepare

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/bmca/bmca/eval/formats"
	"github.com/bmca/bmca/eval/tasks"
)

// readTable reads a CSV (or TSV for .tsv/.tab) table with a header row.
func readTable(file string) (header []string, rows [][]string, err error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	if l := strings.ToLower(file); strings.HasSuffix(l, ".tsv") || strings.HasSuffix(l, ".tab") {
		r.Comma = '\t'
	}
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	all, err := r.ReadAll()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(all) == 0 {
		return nil, nil, fmt.Errorf("%s: empty table (want a header row)", file)
	}
	for i := range all[0] {
		all[0][i] = strings.TrimSpace(all[0][i])
	}
	return all[0], all[1:], nil
}

// writeTable writes a CSV table atomically.
func writeTable(file string, header []string, rows [][]string) error {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	if err := w.Write(header); err != nil {
		return err
	}
	if err := w.WriteAll(rows); err != nil {
		return err
	}
	return writeAtomic(file, buf.Bytes())
}

func column(header []string, name, file string) (int, error) {
	if i := slices.Index(header, name); i >= 0 {
		return i, nil
	}
	return 0, fmt.Errorf("%s: no column %q (columns: %s)", file, name, strings.Join(header, ", "))
}

var cellRE = regexp.MustCompile(`\{([^{}]+)\}`)

// template fills "{column}" placeholders from a row.
type template struct {
	text string
	cols []int
	file string
}

func newTemplate(text string, header []string, file string) (*template, error) {
	t := &template{text: text, file: file}
	for _, m := range cellRE.FindAllStringSubmatch(text, -1) {
		i, err := column(header, m[1], file)
		if err != nil {
			return nil, fmt.Errorf("template %q: %w", text, err)
		}
		t.cols = append(t.cols, i)
	}
	return t, nil
}

func (t *template) fill(row []string, line int) (string, error) {
	k := 0
	var err error
	out := cellRE.ReplaceAllStringFunc(t.text, func(string) string {
		i := t.cols[k]
		k++
		if i >= len(row) {
			err = fmt.Errorf("%s:%d: row has %d cells, the template needs column %d", t.file, line, len(row), i+1)
			return ""
		}
		return strings.TrimSpace(row[i])
	})
	return out, err
}

// inHoldout reports whether key falls in the seeded share of the hash space.
func inHoldout(h *tasks.Holdout, key string) bool {
	sum := sha256.Sum256([]byte(h.Seed + "/" + key))
	return float64(binary.BigEndian.Uint64(sum[:8]))/math.Pow(2, 64) < h.Fraction
}

// labelled is one image of an output table.
type labelled struct {
	src   string // the image as found
	label string
}

// emit converts the images when asked and writes the path,label table, with
// paths relative to the table's folder.
func (e *env) emit(ctx context.Context, out string, images []labelled, labelCol string, conv tasks.Convert, convDir, srcRoot string) error {
	outFile := e.path(out)
	outDir := filepath.Dir(outFile)
	final := make([]string, len(images))
	if conv == tasks.ConvertPNG {
		dir := e.path(convDir)
		bar := countBar(e.log, len(images), "convert to PNG")
		err := parallel(ctx, len(images), e.opts.Workers, func(i int) error {
			rel, err := filepath.Rel(srcRoot, images[i].src)
			if err != nil || strings.HasPrefix(rel, "..") {
				rel = filepath.Base(images[i].src)
			}
			final[i] = pngName(dir, rel)
			err = convertToPNG(images[i].src, final[i])
			_ = bar.Add(1)
			return err
		})
		_ = bar.Finish()
		if err != nil {
			return err
		}
	} else {
		for i, im := range images {
			final[i] = im.src
		}
	}
	rows := make([][]string, len(images))
	for i, im := range images {
		rel, err := filepath.Rel(outDir, final[i])
		if err != nil {
			return err
		}
		rows[i] = []string{filepath.ToSlash(rel), im.label}
	}
	if labelCol == "" {
		labelCol = formats.DefaultLabelColumn
	}
	return writeTable(outFile, []string{formats.DefaultPathColumn, labelCol}, rows)
}

// folderTable lists Root/<class>/…/<file> as a path,label table.
func (e *env) folderTable(ctx context.Context, s *tasks.FolderTableStep) error {
	root, err := classRoot(e.path(s.Root), s.Labels)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	var images []labelled
	for _, ent := range entries {
		if !ent.IsDir() {
			continue
		}
		label := ent.Name()
		if s.Labels != nil {
			l, ok := s.Labels[ent.Name()]
			if !ok {
				return fmt.Errorf("%s: class folder %q is not in the step's labels (%s)", root, ent.Name(), strings.Join(mapKeys(s.Labels), ", "))
			}
			if l == "" {
				continue
			}
			label = l
		}
		err := filepath.WalkDir(filepath.Join(root, ent.Name()), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			if keepFile(s.Files, d.Name(), s.Convert) {
				images = append(images, labelled{src: p, label: label})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for name := range s.Labels {
		if _, err := os.Stat(filepath.Join(root, name)); err != nil && s.Labels[name] != "" {
			return fmt.Errorf("%s: class folder %q listed in the step's labels is missing", root, name)
		}
	}
	if len(images) == 0 {
		return fmt.Errorf("%s: no images found in its class folders", root)
	}
	return e.emit(ctx, s.Out, images, "", s.Convert, s.Images, root)
}

// classRoot returns root, or with labels the first folder at or below root
// holding every labelled class folder (publishers nest them differently
// between releases).
func classRoot(root string, labels map[string]string) (string, error) {
	holds := func(dir string) bool {
		for name, l := range labels {
			if l == "" {
				continue
			}
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || !fi.IsDir() {
				return false
			}
		}
		return true
	}
	if len(labels) == 0 || holds(root) {
		return root, nil
	}
	found := ""
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && holds(p) {
			found = p
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if found == "" {
		return "", fmt.Errorf("%s: no folder at or below it holds the class folders %s", root, strings.Join(mapKeys(labels), ", "))
	}
	return found, nil
}

func keepFile(pattern, name string, conv tasks.Convert) bool {
	if pattern != "" {
		ok, _ := path.Match(pattern, name)
		return ok
	}
	ext := strings.ToLower(filepath.Ext(name))
	return slices.Contains(formats.ImageExtensions, ext) || (conv == tasks.ConvertPNG && ext == ".dcm")
}

func mapKeys(m map[string]string) []string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	slices.Sort(k)
	return k
}

// table turns a publisher's table into a path,label table.
func (e *env) table(ctx context.Context, s *tasks.TableStep) error {
	in := e.path(s.In)
	header, rows, err := readTable(in)
	if err != nil {
		return err
	}
	tmpl, err := newTemplate(s.Path, header, in)
	if err != nil {
		return err
	}
	var labelCols []int
	for _, name := range strings.Split(s.Label, "|") {
		c, err := column(header, strings.TrimSpace(name), in)
		if err != nil {
			return err
		}
		labelCols = append(labelCols, c)
	}
	keyCol := -1
	if s.Holdout != nil && s.Holdout.Key != "" {
		if keyCol, err = column(header, s.Holdout.Key, in); err != nil {
			return err
		}
	}
	dir := filepath.Dir(in)
	var images []labelled
	seen := map[string]int{}
	for i, row := range rows {
		line := i + 2
		p, err := tmpl.fill(row, line)
		if err != nil {
			return err
		}
		label := ""
		for _, c := range labelCols {
			if c < len(row) && strings.TrimSpace(row[c]) != "" {
				label = strings.TrimSpace(row[c])
				break
			}
		}
		if label == "" {
			return fmt.Errorf("%s:%d: no %s value", in, line, s.Label)
		}
		if s.Holdout != nil {
			key := p
			if keyCol >= 0 && keyCol < len(row) {
				key = strings.TrimSpace(row[keyCol])
			}
			if !inHoldout(s.Holdout, key) {
				continue
			}
		}
		src := filepath.Join(dir, filepath.FromSlash(p))
		if j, dup := seen[src]; dup {
			if !s.Dedupe {
				return fmt.Errorf("%s:%d: image %s listed again (set dedupe for tables with several rows per image)", in, line, p)
			}
			if images[j].label != label {
				return fmt.Errorf("%s:%d: image %s has labels %q and %q", in, line, p, images[j].label, label)
			}
			continue
		}
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("%s:%d: image %s: %w", in, line, p, err)
		}
		seen[src] = len(images)
		images = append(images, labelled{src: src, label: label})
	}
	if len(images) == 0 {
		return fmt.Errorf("%s: no rows selected", in)
	}
	return e.emit(ctx, s.Out, images, s.OutLabel, s.Convert, s.Images, dir)
}
