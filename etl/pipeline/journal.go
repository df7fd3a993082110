package pipeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	"github.com/bmca/bmca/etl/pmc"
	"github.com/bmca/bmca/etl/sample"
	"github.com/bmca/bmca/etl/shardwriter"
)

// Output file names.
const (
	JournalName  = "journal.jsonl"
	ManifestName = "manifest.json"
	BadName      = "bad_packages.jsonl"
)

// journalVersion changes when the journal's meaning changes.
const journalVersion = 1

// The journal is the run's commit log, one JSON object per line:
//
//	{"header": {...}}                               first line: what the run writes
//	{"shard": {...}, "packages": [...]}             a committed shard and the packages in it
//	{"packages": [...]}                             packages finished without samples
//
// A shard's files are renamed into place before its line is written and
// synced, so every shard the journal names is complete; files it does not
// name are leftovers of an interrupted run and are removed on resume. Lines
// of packages without samples are synced with the next shard; losing them
// costs only redoing those packages.
type journalLine struct {
	Header   *journalHeader  `json:"header,omitempty"`
	Shard    *shardRecord    `json:"shard,omitempty"`
	Packages []packageRecord `json:"packages,omitempty"`
}

type journalHeader struct {
	Version int                  `json:"version"`
	Formats []shardwriter.Format `json:"formats"`
	Part    Part                 `json:"part"`
}

// shardRecord is a committed shard: its files and, in order, the key and
// image hash (hex SHA-256) of each sample, which Merge deduplicates on.
type shardRecord struct {
	Group   pmc.Group          `json:"group"`
	Index   int                `json:"index"`
	Samples int                `json:"samples"`
	Files   []shardwriter.File `json:"files"`
	Keys    []string           `json:"keys"`
	Hashes  []string           `json:"hashes"`
}

// packageRecord is a finished package.
type packageRecord struct {
	// ID is the package's cleaned absolute path.
	ID      string                `json:"id"`
	Name    string                `json:"name"`
	Article string                `json:"article,omitempty"`
	Group   pmc.Group             `json:"group,omitempty"`
	Figures int                   `json:"figures"`
	Samples int                   `json:"samples"`
	Dropped map[sample.Reason]int `json:"dropped,omitempty"`
	// Error says why the package was skipped; "" for a good package.
	Error string `json:"error,omitempty"`
}

// journal appends to journal.jsonl.
type journal struct {
	path    string
	f       *os.File
	pending []packageRecord // packages without samples, not yet written
}

// readJournal reads the journal at p, truncating a last line cut short by
// a crash. It returns nil lines when the file does not exist.
func readJournal(p string) ([]journalLine, error) {
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var lines []journalLine
	good := 0 // bytes of complete, valid lines
	r := bufio.NewReader(bytes.NewReader(data))
	for n := 1; ; n++ {
		raw, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break // nothing left, or a line without its newline: cut by a crash
		}
		var l journalLine
		if jerr := json.Unmarshal(raw, &l); jerr != nil {
			if good+len(raw) == len(data) {
				break // the last line: cut by a crash
			}
			return nil, fmt.Errorf("%s line %d: %w (the journal is damaged; remove the output folder to start over)", p, n, jerr)
		}
		lines = append(lines, l)
		good += len(raw)
	}
	if good < len(data) {
		if err := os.Truncate(p, int64(good)); err != nil {
			return nil, fmt.Errorf("%s: dropping a partial last line: %w", p, err)
		}
	}
	return lines, nil
}

func openJournal(p string, header *journalHeader) (*journal, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	j := &journal{path: p, f: f}
	if st.Size() == 0 { // new, or its header was cut by a crash
		if err := j.write(journalLine{Header: header}, true); err != nil {
			f.Close()
			return nil, err
		}
	}
	return j, nil
}

func (j *journal) write(l journalLine, sync bool) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	if sync {
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("journal %s: %w", j.path, err)
		}
	}
	return nil
}

// maxPending is how many sample-less packages are held before writing them.
const maxPending = 512

// addEmpty records a package without samples.
func (j *journal) addEmpty(r packageRecord) error {
	j.pending = append(j.pending, r)
	if len(j.pending) >= maxPending {
		return j.flush(false)
	}
	return nil
}

// flush writes the pending package records.
func (j *journal) flush(sync bool) error {
	if len(j.pending) == 0 {
		if sync {
			return j.f.Sync()
		}
		return nil
	}
	err := j.write(journalLine{Packages: j.pending}, sync)
	j.pending = nil
	return err
}

// commit records a committed shard with its packages, after the pending
// records, and syncs.
func (j *journal) commit(s *shardRecord, pkgs []packageRecord) error {
	if err := j.flush(false); err != nil {
		return err
	}
	return j.write(journalLine{Shard: s, Packages: pkgs}, true)
}

func (j *journal) close() error {
	err := j.flush(true)
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sameHeader reports whether a resumed run writes what the journal's did.
func sameHeader(a, b journalHeader) bool {
	return a.Version == b.Version && a.Part == b.Part && slices.Equal(a.Formats, b.Formats)
}
