package pmc

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/bmca/bmca/etl/jats"
)

// Entry is one row of the OA file list (oa_file_list.csv): File, Article
// Citation, Accession ID, Last Updated (YYYY-MM-DD HH:MM:SS), PMID,
// License.
type Entry struct {
	// File is the package path on the OA service ("oa_package/08/e0/PMC13900.tar.gz").
	File string
	// Citation is the "Article Citation": "Breast Cancer Res. 2001 Nov 2; 3(1):55-60".
	Citation string
	// AccessionID is the PMCID ("PMC13900").
	AccessionID string
	// LastUpdated is "YYYY-MM-DD HH:MM:SS".
	LastUpdated string
	// PMID is the PubMed id, "" when the article has none.
	PMID string
	// License is the license code ("CC BY", "CC BY-NC-ND", "NO-CC CODE", ...).
	License string
}

// FileList indexes file-list entries by accession id and package name.
type FileList struct {
	entries []Entry
	index   map[string]int
}

// fileListColumns are the header names, lower-cased, each with the Entry
// field it fills. "Last Updated" matches by prefix since its name carries
// the format.
var fileListColumns = []struct {
	name   string
	prefix bool
	field  func(*Entry) *string
}{
	{"file", false, func(e *Entry) *string { return &e.File }},
	{"article citation", false, func(e *Entry) *string { return &e.Citation }},
	{"accession id", false, func(e *Entry) *string { return &e.AccessionID }},
	{"last updated", true, func(e *Entry) *string { return &e.LastUpdated }},
	{"pmid", false, func(e *Entry) *string { return &e.PMID }},
	{"license", false, func(e *Entry) *string { return &e.License }},
}

// LoadFileList reads the OA file list CSV at p; see ReadFileList.
func LoadFileList(p string, keep func(name string) bool) (*FileList, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("file list: %w", err)
	}
	defer f.Close()
	l, err := ReadFileList(f, keep)
	if err != nil {
		return nil, fmt.Errorf("file list %s: %w", p, err)
	}
	return l, nil
}

// ReadFileList reads an OA file list CSV. Its header must name the columns
// File, Article Citation, Accession ID and License (Last Updated and PMID
// are optional); columns are found by name, in any order. keep, when not
// nil, says which rows to index by their package name or accession id, so
// that one part of a split run holds only its own rows.
func ReadFileList(r io.Reader, keep func(name string) bool) (*FileList, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	cols := make([]int, len(fileListColumns))
	for i := range cols {
		cols[i] = -1
	}
	for j, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		for i, c := range fileListColumns {
			if h == c.name || (c.prefix && strings.HasPrefix(h, c.name)) {
				cols[i] = j
			}
		}
	}
	for i, c := range fileListColumns {
		if cols[i] < 0 && c.name != "pmid" && c.name != "last updated" {
			return nil, fmt.Errorf("header %q has no %q column (expected File, Article Citation, Accession ID, Last Updated, PMID, License)", strings.Join(header, ","), c.name)
		}
	}
	l := &FileList{index: map[string]int{}}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		var e Entry
		for i, c := range fileListColumns {
			if j := cols[i]; j >= 0 && j < len(rec) {
				*c.field(&e) = strings.TrimSpace(rec[j])
			}
		}
		if e.AccessionID == "" && e.File == "" {
			continue
		}
		e.AccessionID = jats.NormalizePMCID(e.AccessionID)
		name := PackageName(e.File)
		if keep != nil && !keep(name) && !keep(e.AccessionID) {
			continue
		}
		l.entries = append(l.entries, e)
		k := len(l.entries) - 1
		if e.AccessionID != "" {
			l.index[e.AccessionID] = k
		}
		if name != "" && name != e.AccessionID {
			if _, dup := l.index[name]; !dup {
				l.index[name] = k
			}
		}
	}
	return l, nil
}

// PackageName returns the package name of a file-list File path:
// "oa_package/08/e0/PMC13900.tar.gz" gives "PMC13900".
func PackageName(file string) string {
	if name, ok := archiveName(path.Base(file)); ok {
		return name
	}
	return ""
}

// Lookup finds the entry of an article by its PMCID, else by its package
// name.
func (l *FileList) Lookup(pmcid, packageName string) (Entry, bool) {
	if l == nil {
		return Entry{}, false
	}
	for _, k := range []string{jats.NormalizePMCID(pmcid), packageName} {
		if k == "" {
			continue
		}
		if i, ok := l.index[k]; ok {
			return l.entries[i], true
		}
	}
	return Entry{}, false
}

// Len is the number of entries kept.
func (l *FileList) Len() int {
	if l == nil {
		return 0
	}
	return len(l.entries)
}
