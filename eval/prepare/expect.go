package prepare

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// checkExpectations checks the prepared layout against the recipe's counts.
func (e *env) checkExpectations() error {
	var errs []error
	for _, x := range e.ds.Expect {
		pattern := strings.ReplaceAll(x.Glob, "{downloads}", filepath.ToSlash(e.downloads))
		root := e.opts.DataRoot
		if filepath.IsAbs(pattern) {
			root = "/"
			pattern = strings.TrimPrefix(pattern, "/")
		}
		files, err := glob(root, pattern)
		if err != nil {
			errs = append(errs, fmt.Errorf("expect %s: %w", x.Glob, err))
			continue
		}
		switch {
		case x.Count > 0 && len(files) != x.Count:
			errs = append(errs, fmt.Errorf("expected %d files matching %s, found %d", x.Count, x.Glob, len(files)))
		case len(files) == 0:
			errs = append(errs, fmt.Errorf("expected files matching %s, found none", x.Glob))
		}
		if x.Rows > 0 {
			if len(files) != 1 {
				errs = append(errs, fmt.Errorf("expect %s: rows need exactly one table, %d match", x.Glob, len(files)))
				continue
			}
			n, err := countRows(files[0])
			if err != nil {
				errs = append(errs, err)
			} else if n != x.Rows {
				errs = append(errs, fmt.Errorf("expected %d rows in %s, found %d", x.Rows, files[0], n))
			}
		}
	}
	return errors.Join(errs...)
}

// countRows counts a CSV/TSV table's rows below its header.
func countRows(file string) (int, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	r := csv.NewReader(bytes.NewReader(data))
	if strings.HasSuffix(file, ".tsv") || strings.HasSuffix(file, ".tab") {
		r.Comma = '\t'
	}
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	rows, err := r.ReadAll()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", file, err)
	}
	return max(len(rows)-1, 0), nil
}

// glob lists the regular files under root matching pattern, a slash path
// whose elements are path.Match patterns and where "**" matches any number
// of folders. Results are sorted, absolute when root is.
func glob(root, pattern string) ([]string, error) {
	elems := strings.Split(path.Clean(pattern), "/")
	// Walk from the longest prefix without wildcards.
	fixed := 0
	for fixed < len(elems) && !strings.ContainsAny(elems[fixed], "*?[") {
		fixed++
	}
	base := filepath.Join(root, filepath.FromSlash(strings.Join(elems[:fixed], "/")))
	rest := elems[fixed:]
	if len(rest) == 0 {
		if fi, err := os.Stat(base); err == nil && fi.Mode().IsRegular() {
			return []string{base}, nil
		}
		return nil, nil
	}
	for _, el := range rest {
		if _, err := path.Match(el, ""); err != nil {
			return nil, fmt.Errorf("bad pattern %q: %w", pattern, err)
		}
	}
	var out []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == base {
				return fs.SkipAll
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(base, p)
		if err != nil {
			return err
		}
		if matchElems(rest, strings.Split(filepath.ToSlash(rel), "/")) {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// matchElems matches path elements against pattern elements with "**".
func matchElems(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchElems(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}
