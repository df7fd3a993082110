package pipeline

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bmca/bmca/etl/pmc"
	"github.com/bmca/bmca/etl/sample"
	"github.com/bmca/bmca/etl/shardwriter"
	"github.com/bmca/bmca/internal/atomicfile"
)

// Summary describes an output folder: what it holds in total, over every
// run that wrote it. It is also the content of manifest.json.
type Summary struct {
	Version int                  `json:"version"`
	Formats []shardwriter.Format `json:"formats"`
	Part    Part                 `json:"part"`
	// Merged is set on the manifest Merge writes; Parts is then the number
	// of parts merged.
	Merged bool `json:"merged,omitempty"`
	Parts  int  `json:"parts,omitempty"`
	// Complete is true when every input package has been processed: the
	// last run was neither interrupted nor stopped by an error.
	Complete bool `json:"complete"`
	// Packages counts the packages finished, Bad those skipped as
	// unreadable (they are among Packages).
	Packages int `json:"packages"`
	Bad      int `json:"bad_packages"`
	// Figures counts the <fig> elements of the good packages; each became
	// a sample or is counted in Dropped.
	Figures int                   `json:"figures"`
	Samples int                   `json:"samples"`
	Dropped map[sample.Reason]int `json:"dropped"`
	// Groups describes each license subset's shards.
	Groups map[pmc.Group]*GroupSummary `json:"groups"`

	// Fields of the run that produced this Summary, not stored.

	// Dir is the output folder.
	Dir string `json:"-"`
	// RunPackages and RunSamples count what this run did; RunElapsed is
	// its duration.
	RunPackages int           `json:"-"`
	RunSamples  int           `json:"-"`
	RunElapsed  time.Duration `json:"-"`
	// BadPackages lists the skipped packages and why.
	BadPackages []BadPackage `json:"-"`
}

// GroupSummary describes the shards of one license subset.
type GroupSummary struct {
	// Shards are the shard file names in order, relative to the output folder.
	Shards  []string `json:"shards"`
	Samples int      `json:"samples"`
}

// BadPackage is a package skipped and the reason.
type BadPackage struct {
	Package string `json:"package"`
	Error   string `json:"error"`
}

// ArticlesPerSecond is this run's throughput in packages per second.
func (s *Summary) ArticlesPerSecond() float64 {
	if s.RunElapsed <= 0 {
		return 0
	}
	return float64(s.RunPackages) / s.RunElapsed.Seconds()
}

// hashKey is the in-memory form of an image hash: its first 16 bytes,
// enough to tell 24M images apart with a collision chance below 1e-24.
type hashKey [16]byte

func hashKeyOf(h [32]byte) hashKey { return hashKey(h[:16]) }

func hashKeyHex(s string) (hashKey, error) {
	var k hashKey
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return k, fmt.Errorf("image hash %q is not a hex SHA-256", s)
	}
	copy(k[:], b)
	return k, nil
}

// state is what the journal says has been done, plus this run's work.
type state struct {
	header   journalHeader
	done     map[string]bool // package IDs finished
	hashes   map[hashKey]struct{}
	articles map[string]struct{} // articles with samples written
	shards   map[pmc.Group][]shardRecord
	sum      Summary
}

func newState(h journalHeader) *state {
	st := &state{
		header:   h,
		done:     map[string]bool{},
		hashes:   map[hashKey]struct{}{},
		articles: map[string]struct{}{},
		shards:   map[pmc.Group][]shardRecord{},
		sum: Summary{
			Version: journalVersion, Formats: h.Formats, Part: h.Part,
			Dropped: map[sample.Reason]int{}, Groups: map[pmc.Group]*GroupSummary{},
		},
	}
	for _, g := range pmc.Groups {
		st.sum.Groups[g] = &GroupSummary{Shards: []string{}}
	}
	return st
}

// restore rebuilds the state from journal lines. A journal written with
// other formats or another part is refused: mixing them in one folder
// would corrupt it.
func restore(lines []journalLine, want journalHeader, dir string) (*state, error) {
	st := newState(want)
	for i, l := range lines {
		if i == 0 {
			if l.Header == nil {
				return nil, fmt.Errorf("%s: first line is not a header", filepath.Join(dir, JournalName))
			}
			if !sameHeader(*l.Header, want) {
				return nil, fmt.Errorf("%s was written with formats %v, part %s (journal version %d), not formats %v, part %s: use the same flags to resume, or another --output",
					dir, l.Header.Formats, l.Header.Part, l.Header.Version, want.Formats, want.Part)
			}
			continue
		}
		if l.Shard != nil {
			if err := st.addShard(*l.Shard); err != nil {
				return nil, fmt.Errorf("%s line %d: %w", filepath.Join(dir, JournalName), i+1, err)
			}
		}
		for _, p := range l.Packages {
			st.account(p)
		}
	}
	return st, nil
}

// addShard records a committed shard.
func (st *state) addShard(s shardRecord) error {
	if len(s.Hashes) != s.Samples || len(s.Keys) != s.Samples {
		return fmt.Errorf("shard %s/%06d lists %d keys and %d hashes for %d samples", s.Group, s.Index, len(s.Keys), len(s.Hashes), s.Samples)
	}
	for _, h := range s.Hashes {
		k, err := hashKeyHex(h)
		if err != nil {
			return err
		}
		st.hashes[k] = struct{}{}
	}
	g := st.sum.Groups[s.Group]
	if g == nil {
		return fmt.Errorf("unknown license group %q", s.Group)
	}
	for _, f := range s.Files {
		g.Shards = append(g.Shards, string(s.Group)+"/"+f.Name)
	}
	g.Samples += s.Samples
	st.shards[s.Group] = append(st.shards[s.Group], shardRecord{Group: s.Group, Index: s.Index, Samples: s.Samples, Files: s.Files})
	return nil
}

// account counts a finished package.
func (st *state) account(p packageRecord) {
	if st.done[p.ID] {
		return
	}
	st.done[p.ID] = true
	st.sum.Packages++
	if p.Error != "" {
		st.sum.Bad++
		st.sum.BadPackages = append(st.sum.BadPackages, BadPackage{Package: p.ID, Error: p.Error})
		return
	}
	st.sum.Figures += p.Figures
	st.sum.Samples += p.Samples
	for r, n := range p.Dropped {
		st.sum.Dropped[r] += n
	}
	if p.Samples > 0 && p.Article != "" {
		st.articles[p.Article] = struct{}{}
	}
}

// nextIndex is the index of the group's next shard.
func (st *state) nextIndex(g pmc.Group) int {
	if s := st.shards[g]; len(s) > 0 {
		return s[len(s)-1].Index + 1
	}
	return 0
}

// sizes is the group's sizes.json content.
func (st *state) sizes(g pmc.Group) map[string]int {
	m := map[string]int{}
	for _, s := range st.shards[g] {
		for _, f := range s.Files {
			m[f.Name] = s.Samples
		}
	}
	return m
}

// cleanGroup removes from a group folder the temporary files and the shard
// files the journal does not list: leftovers of an interrupted run.
func (st *state) cleanGroup(dir string, g pmc.Group) error {
	keep := map[string]bool{}
	for _, s := range st.shards[g] {
		for _, f := range s.Files {
			keep[f.Name] = true
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if err := removeLeftovers(dir, entries, keep); err != nil {
		return err
	}
	for name := range keep {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("shard %s listed in the journal is missing: %w (the output was modified; remove it to start over)", filepath.Join(dir, name), err)
		}
	}
	return nil
}

// removeLeftovers deletes, among the entries of group folder dir, the
// temporary files (of unfinished shards, and of sizes.json or manifests
// whose atomic replacement a kill cut short) and the shard files keep does
// not list.
func removeLeftovers(dir string, entries []os.DirEntry, keep map[string]bool) error {
	for _, e := range entries {
		name := e.Name()
		_, _, isShard := shardwriter.ParseName(name)
		if strings.HasPrefix(name, shardwriter.TempPrefix) || atomicfile.IsTemp(name) || (isShard && !keep[name]) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("removing leftover %s: %w", filepath.Join(dir, name), err)
			}
		}
	}
	return nil
}

// writeOutputs writes every group's sizes.json, bad_packages.jsonl and
// manifest.json.
func writeOutputs(dir string, sum *Summary, sizes func(pmc.Group) map[string]int) error {
	for _, g := range pmc.Groups {
		if err := shardwriter.WriteSizes(filepath.Join(dir, string(g)), sizes(g)); err != nil {
			return err
		}
	}
	var bad bytes.Buffer
	enc := json.NewEncoder(&bad)
	enc.SetEscapeHTML(false)
	for _, b := range sum.BadPackages {
		if err := enc.Encode(b); err != nil {
			return err
		}
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, BadName), bad.Bytes(), 0o644); err != nil {
		return err
	}
	return writeManifest(dir, sum)
}

func writeManifest(dir string, sum *Summary) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sum); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, ManifestName), b.Bytes(), 0o644)
}

// ReadManifest reads the manifest.json of an output folder.
func ReadManifest(dir string) (*Summary, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	var s Summary
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("pipeline: %s: %w", filepath.Join(dir, ManifestName), err)
	}
	s.Dir = dir
	return &s, nil
}
