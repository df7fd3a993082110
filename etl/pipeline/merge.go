package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/bmca/bmca/etl/pmc"
	"github.com/bmca/bmca/etl/sample"
	"github.com/bmca/bmca/etl/shardwriter"
	"github.com/bmca/bmca/internal/dirlock"
)

var partDir = regexp.MustCompile(`^part-(\d+)-of-(\d+)$`)

// Merge combines the parts of a split run under out (out/part-IIIII-of-NNNNN,
// each complete) into out itself: out/<group>/NNNNNN.tar numbered across
// parts in part order, a sizes.json per group, bad_packages.jsonl and a
// manifest.json with Merged set. An image written by an earlier part (by
// part index, then commit order) is removed from later parts, so the
// merged dataset holds each image once; shards without such duplicates
// are hard-linked (copied across file systems), the others rewritten
// without them. The parts are left as they are; once the merge is done
// they can be deleted. Merge can be rerun: it rebuilds the merged folders
// from the parts each time.
//
// The set of image hashes seen is held in memory: about 40 bytes per
// sample, 1 GB for BIOMEDICA's 24M.
func Merge(ctx context.Context, out string) (*Summary, error) {
	parts, err := findParts(out)
	if err != nil {
		return nil, err
	}
	lock, err := dirlock.Acquire(out)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	defer lock.Release()

	var formats []shardwriter.Format
	sum := newState(journalHeader{}).sum
	sum.Merged, sum.Parts, sum.Complete = true, len(parts), true
	seen := map[hashKey]struct{}{}
	next := map[pmc.Group]int{}
	sizes := map[pmc.Group]map[string]int{}
	keep := map[pmc.Group]map[string]bool{}
	for _, g := range pmc.Groups {
		if err := os.MkdirAll(filepath.Join(out, string(g)), 0o755); err != nil {
			return nil, fmt.Errorf("pipeline: merge: %w", err)
		}
		sizes[g], keep[g] = map[string]int{}, map[string]bool{}
	}

	for _, p := range parts {
		pdir := filepath.Join(out, p.Dir())
		man, err := ReadManifest(pdir)
		if err != nil {
			return nil, fmt.Errorf("pipeline: merge: part %s: %w (run it first: --part %s)", p, err, p)
		}
		if !man.Complete {
			return nil, fmt.Errorf("pipeline: merge: part %s in %s is incomplete (interrupted, failed or still running): rerun it with --part %s, which resumes it", p, pdir, p)
		}
		lines, err := readJournal(filepath.Join(pdir, JournalName))
		if err != nil {
			return nil, fmt.Errorf("pipeline: merge: %w", err)
		}
		if len(lines) == 0 || lines[0].Header == nil || lines[0].Header.Part != p {
			return nil, fmt.Errorf("pipeline: merge: %s has no journal header for part %s", pdir, p)
		}
		if formats == nil {
			formats = lines[0].Header.Formats
		} else if !slices.Equal(formats, lines[0].Header.Formats) {
			return nil, fmt.Errorf("pipeline: merge: part %s wrote formats %v, earlier parts %v: rerun it with the same --format", p, lines[0].Header.Formats, formats)
		}
		sum.Packages += man.Packages
		sum.Bad += man.Bad
		sum.Figures += man.Figures
		for r, n := range man.Dropped {
			sum.Dropped[r] += n
		}
		for _, l := range lines[1:] {
			for _, pk := range l.Packages {
				if pk.Error != "" {
					sum.BadPackages = append(sum.BadPackages, BadPackage{Package: pk.ID, Error: pk.Error})
				}
			}
			if l.Shard == nil {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInterrupted, err)
			}
			s := l.Shard
			drop := map[string]bool{}
			for i, h := range s.Hashes {
				k, err := hashKeyHex(h)
				if err != nil {
					return nil, fmt.Errorf("pipeline: merge: %s, shard %s/%06d: %w", pdir, s.Group, s.Index, err)
				}
				if _, dup := seen[k]; dup {
					drop[s.Keys[i]] = true
					continue
				}
				seen[k] = struct{}{}
			}
			sum.Dropped[sample.Duplicate] += len(drop)
			kept := s.Samples - len(drop)
			if kept == 0 {
				continue
			}
			g := s.Group
			gs := sum.Groups[g]
			if gs == nil {
				return nil, fmt.Errorf("pipeline: merge: %s: unknown license group %q", pdir, g)
			}
			index := next[g]
			next[g]++
			for _, f := range s.Files {
				_, format, ok := shardwriter.ParseName(f.Name)
				if !ok {
					return nil, fmt.Errorf("pipeline: merge: %s: unexpected shard file name %q", pdir, f.Name)
				}
				src := filepath.Join(pdir, string(g), f.Name)
				name := shardwriter.Name(index, format)
				dst := filepath.Join(out, string(g), name)
				if len(drop) == 0 {
					_, err = shardwriter.Copy(src, dst)
				} else {
					var n int
					_, n, err = shardwriter.Filter(src, dst, format, func(key string) bool { return drop[key] })
					if err == nil && n != kept {
						err = fmt.Errorf("kept %d samples of %s, expected %d", n, src, kept)
					}
				}
				if err != nil {
					return nil, fmt.Errorf("pipeline: merge: %w", err)
				}
				sizes[g][name] = kept
				keep[g][name] = true
				gs.Shards = append(gs.Shards, string(g)+"/"+name)
			}
			gs.Samples += kept
			sum.Samples += kept
		}
	}
	sum.Formats = formats
	for _, g := range pmc.Groups {
		if err := removeStale(filepath.Join(out, string(g)), keep[g]); err != nil {
			return nil, fmt.Errorf("pipeline: merge: %w", err)
		}
	}
	sum.Dir = out
	if err := writeOutputs(out, &sum, func(g pmc.Group) map[string]int { return sizes[g] }); err != nil {
		return nil, fmt.Errorf("pipeline: merge: %w", err)
	}
	return &sum, nil
}

// findParts lists the parts under out and checks that they are all there.
func findParts(out string) ([]Part, error) {
	if _, err := os.Stat(filepath.Join(out, JournalName)); err == nil {
		return nil, fmt.Errorf("pipeline: merge: %s holds a run that was not split into parts; there is nothing to merge", out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return nil, fmt.Errorf("pipeline: merge: %w", err)
	}
	var parts []Part
	count := 0
	for _, e := range entries {
		m := partDir.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		i, _ := strconv.Atoi(m[1])
		n, _ := strconv.Atoi(m[2])
		if count != 0 && n != count {
			return nil, fmt.Errorf("pipeline: merge: %s holds parts of %d and of %d: every part must come from the same --part I/N split", out, count, n)
		}
		count = n
		parts = append(parts, Part{Index: i, Count: n})
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("pipeline: merge: no part-IIIII-of-NNNNN folders in %s (expected the output of runs with --part I/N and this --output)", out)
	}
	slices.SortFunc(parts, func(a, b Part) int { return a.Index - b.Index })
	var missing []string
	have := map[int]bool{}
	for _, p := range parts {
		if p.validate() != nil {
			return nil, fmt.Errorf("pipeline: merge: bad part folder %s", p.Dir())
		}
		have[p.Index] = true
	}
	for i := range count {
		if !have[i] {
			missing = append(missing, strconv.Itoa(i))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("pipeline: merge: parts %s of %d are missing under %s: run them (--part I/%d) before merging", strings.Join(missing, ", "), count, out, count)
	}
	return parts, nil
}

// removeStale deletes shard and temporary files of a merged group folder
// that the merge did not write, left by an earlier merge of other parts.
func removeStale(dir string, keep map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return removeLeftovers(dir, entries, keep)
}
