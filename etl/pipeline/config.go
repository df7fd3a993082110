// Package pipeline runs the PMC → BIOMEDICA shard ETL: it finds article
// packages, parses and converts them on a pool of workers, deduplicates
// images by SHA-256, writes license-split shards with a sizes.json per
// subset, and records its progress so that a crashed or interrupted run
// resumes where it stopped. Merge combines the outputs of a run split
// into parts (--part I/N on a SLURM array or a Kubernetes indexed Job).
//
//	sum, err := pipeline.Run(ctx, pipeline.Config{
//		Inputs: []string{"/data/oa_package"},
//		Out:    "/data/biomedica",
//	})
//
// Output layout (one folder per run, or per part under Out/part-IIIII-of-NNNNN):
//
//	commercial/000000.tar …       shards of each license subset
//	commercial/sizes.json         shard name → sample count (OpenCLIP's convention)
//	noncommercial/…  other/…
//	manifest.json                 what the run wrote, its counts, whether it is complete
//	bad_packages.jsonl            one {"package","error"} line per package skipped
//	journal.jsonl                 the run's commit log, read to resume and to merge
//
// Packages are committed in input order whatever the number of workers, a
// package's samples never span two shards, and a shard closes before it
// would pass Config.ShardSamples or Config.ShardBytes; so the same inputs
// give the same shards. A resumed run redoes only the packages of the
// shards that were open when it stopped. Ctrl-C (a cancelled context)
// stops taking packages, commits the shards being written, and returns.
package pipeline

import (
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"strconv"
	"strings"

	"github.com/bmca/bmca/etl/shardwriter"
)

// Defaults for the zero values of Config.
const (
	// DefaultShardSamples is BIOMEDICA's examples_per_shard.
	DefaultShardSamples = 10000
	// DefaultShardBytes bounds a shard at 4 GiB. BIOMEDICA's shards average
	// about 10 GB, mostly article_text repeated in every sample's JSON; 4
	// GiB keeps a shard quick to re-fetch when streaming.
	DefaultShardBytes = 4 << 30
)

// Config describes a run. Inputs and Out are required; the zero value of
// every other field selects its documented default.
type Config struct {
	// Inputs are package archives, extracted package folders, article
	// XMLs, or folders holding any of them (see pmc.Discover).
	Inputs []string
	// Out is the output folder; a part of a split run writes to
	// Out/part-IIIII-of-NNNNN.
	Out string
	// Formats are the shard formats (default WebDataset only).
	Formats []shardwriter.Format
	// FileList is the OA file list CSV giving each article's license and
	// citation; without it both come from the XML.
	FileList string
	// Workers is the number of packages processed at once (default
	// GOMAXPROCS). It changes speed, never the output.
	Workers int
	// ShardSamples and ShardBytes bound a shard (defaults
	// DefaultShardSamples, DefaultShardBytes). A shard closes before the
	// next package would pass either; only a single package larger than
	// the bound makes a larger shard.
	ShardSamples int
	ShardBytes   int64
	// Part selects the packages of one part of a split run; the zero value
	// runs everything.
	Part Part
	// VerifyJPEG fully decodes JPEG figures (about 10 ms per megapixel)
	// instead of reading only their header; a JPEG that fails is dropped
	// as undecodable.
	VerifyJPEG bool
	// Progress, when set, is called after each package from the goroutine
	// that called Run.
	Progress func(Progress)
}

// Progress is reported after each package.
type Progress struct {
	// Done and Total count the packages of this run: Total excludes those
	// finished by an earlier run of the same output.
	Done, Total int
	// Samples and Bad count samples written and packages skipped by this run.
	Samples, Bad int
}

func (c Config) withDefaults() (Config, error) {
	if len(c.Inputs) == 0 {
		return c, errors.New("pipeline: no input given")
	}
	if c.Out == "" {
		return c, errors.New("pipeline: no output folder given")
	}
	if len(c.Formats) == 0 {
		c.Formats = []shardwriter.Format{shardwriter.WebDataset}
	}
	if c.Workers < 0 || c.ShardSamples < 0 || c.ShardBytes < 0 {
		return c, fmt.Errorf("pipeline: negative workers (%d), shard samples (%d) or shard bytes (%d)", c.Workers, c.ShardSamples, c.ShardBytes)
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.ShardSamples == 0 {
		c.ShardSamples = DefaultShardSamples
	}
	if c.ShardBytes == 0 {
		c.ShardBytes = DefaultShardBytes
	}
	if err := c.Part.validate(); err != nil {
		return c, err
	}
	if !c.Part.Split() {
		c.Part = Part{} // 0/1 is the whole run
	}
	return c, nil
}

// Part is part Index of Count of a split run. Packages are assigned by a
// hash (FNV-1a) of their name, so every machine computes the same split
// from the same inputs without coordination, adding inputs never moves a
// package to another part, and an archive and the folder it extracts to
// (same name) land in the same part, where they are deduplicated.
type Part struct {
	Index, Count int
}

// ParsePart reads "I/N" with 0 ≤ I < N, as a SLURM array task id or a
// Kubernetes completion index gives I.
func ParsePart(s string) (Part, error) {
	i, n, ok := strings.Cut(s, "/")
	if !ok {
		return Part{}, fmt.Errorf("part %q: expected I/N, e.g. 3/16", s)
	}
	var p Part
	var err1, err2 error
	p.Index, err1 = strconv.Atoi(strings.TrimSpace(i))
	p.Count, err2 = strconv.Atoi(strings.TrimSpace(n))
	if err1 != nil || err2 != nil {
		return Part{}, fmt.Errorf("part %q: expected two integers I/N, e.g. 3/16", s)
	}
	if p.Count < 1 { // 0/0 would be the zero Part, which means "not split"
		return Part{}, fmt.Errorf("part %q: N must be at least 1 (0 ≤ I < N)", s)
	}
	return p, p.validate()
}

func (p Part) validate() error {
	if p == (Part{}) {
		return nil
	}
	if p.Count < 1 || p.Index < 0 || p.Index >= p.Count {
		return fmt.Errorf("part %d/%d: expected 0 ≤ I < N", p.Index, p.Count)
	}
	return nil
}

// Split reports whether the run is split into parts.
func (p Part) Split() bool { return p.Count > 1 }

// Contains reports whether the package named name belongs to the part.
func (p Part) Contains(name string) bool {
	if !p.Split() {
		return true
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()%uint64(p.Count) == uint64(p.Index)
}

// Dir is the part's output folder name, "part-00003-of-00016".
func (p Part) Dir() string { return fmt.Sprintf("part-%05d-of-%05d", p.Index, p.Count) }

func (p Part) String() string {
	if !p.Split() {
		return "all"
	}
	return fmt.Sprintf("%d/%d", p.Index, p.Count)
}
