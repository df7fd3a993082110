package pipeline

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bmca/bmca/etl/jats"
	"github.com/bmca/bmca/etl/pmc"
	"github.com/bmca/bmca/etl/sample"
	"github.com/bmca/bmca/etl/shardwriter"
	"github.com/bmca/bmca/internal/dirlock"
)

// ErrInterrupted is returned (wrapping the context's error) by a run that
// stopped because its context ended. Its Summary is valid and its output
// consistent; running again with the same configuration resumes it.
var ErrInterrupted = errors.New("pipeline: interrupted")

// Run processes every package of cfg.Inputs not yet done in the output
// folder and returns the folder's Summary. Packages that cannot be read
// are skipped and listed (Summary.BadPackages, bad_packages.jsonl); the
// errors Run returns are those of the output (disk full, a damaged
// journal) and of the inputs as a whole (a path that does not exist).
// When ctx ends, Run commits the shards being written and returns the
// Summary with an error wrapping ErrInterrupted.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	start := time.Now()
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	dir := cfg.Out
	if cfg.Part.Split() {
		dir = filepath.Join(cfg.Out, cfg.Part.Dir())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	lock, err := dirlock.Acquire(dir)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	defer lock.Release()

	header := journalHeader{Version: journalVersion, Formats: cfg.Formats, Part: cfg.Part}
	lines, err := readJournal(filepath.Join(dir, JournalName))
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	st, err := restore(lines, header, dir)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	for _, g := range pmc.Groups {
		gdir := filepath.Join(dir, string(g))
		if err := os.MkdirAll(gdir, 0o755); err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		if err := st.cleanGroup(gdir, g); err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
	}

	var fileList *pmc.FileList
	if cfg.FileList != "" {
		if fileList, err = pmc.LoadFileList(cfg.FileList, cfg.Part.Contains); err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
	}
	todo, err := listTodo(ctx, cfg, st)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w while listing the inputs: %w", ErrInterrupted, context.Cause(ctx))
		}
		return nil, err
	}

	j, err := openJournal(filepath.Join(dir, JournalName), &header)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	r := &runner{cfg: cfg, dir: dir, st: st, j: j, fileList: fileList, writers: map[pmc.Group]*groupWriter{}}
	interrupted, loopErr := r.loop(ctx, todo)

	// Whatever happened, commit what is complete so that a rerun resumes
	// after it.
	for _, g := range pmc.Groups {
		if w := r.writers[g]; w != nil && w.shard != nil {
			if loopErr != nil {
				w.shard.Abort()
				continue
			}
			if err := r.commit(g); err != nil {
				loopErr = err
			}
		}
	}
	if err := j.close(); err != nil && loopErr == nil {
		loopErr = err
	}
	sum := &st.sum
	sum.Complete = !interrupted && loopErr == nil
	sum.Dir = dir
	sum.RunPackages, sum.RunSamples = r.progress.Done, r.progress.Samples
	sum.RunElapsed = time.Since(start)
	if err := writeOutputs(dir, sum, st.sizes); err != nil && loopErr == nil {
		loopErr = fmt.Errorf("pipeline: %w", err)
	}
	if loopErr != nil {
		return sum, loopErr
	}
	if interrupted {
		return sum, fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
	}
	return sum, nil
}

// listTodo discovers the packages of this part that are not done yet.
func listTodo(ctx context.Context, cfg Config, st *state) ([]pmc.Source, error) {
	var todo []pmc.Source
	seen := map[string]bool{}
	for src, err := range pmc.Discover(ctx, cfg.Inputs) {
		if err != nil {
			return nil, fmt.Errorf("pipeline: %w", err)
		}
		if !cfg.Part.Contains(src.Name) {
			continue
		}
		id := packageID(src.Path)
		if st.done[id] || seen[id] {
			continue
		}
		seen[id] = true
		src.Path = id
		todo = append(todo, src)
	}
	return todo, nil
}

// packageID identifies a package across runs: its cleaned absolute path.
func packageID(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}

// runner holds a run's mutable state; only Run's goroutine touches it.
type runner struct {
	cfg      Config
	dir      string
	st       *state
	j        *journal
	fileList *pmc.FileList
	writers  map[pmc.Group]*groupWriter
	progress Progress
}

// groupWriter is the open shard of a license group.
type groupWriter struct {
	shard  *shardwriter.Shard
	keys   []string
	hashes []string
	pkgs   []packageRecord
}

type job struct {
	src  pmc.Source
	done chan result
}

type result struct {
	src pmc.Source
	res *sample.Result
	err error
}

// loop runs the reader, the workers and, in the calling goroutine, the
// ordered commit of results. It reports whether ctx ended it.
func (r *runner) loop(ctx context.Context, todo []pmc.Source) (interrupted bool, err error) {
	r.progress.Total = len(todo)
	ctx2, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	ordered := make(chan *job, 2*r.cfg.Workers)
	work := make(chan *job)
	wg.Go(func() {
		defer close(work)
		defer close(ordered)
		for _, src := range todo {
			j := &job{src: src, done: make(chan result, 1)}
			select {
			case ordered <- j:
			case <-ctx2.Done():
				return
			}
			select {
			case work <- j:
			case <-ctx2.Done():
				return
			}
		}
	})
	for range r.cfg.Workers {
		wg.Go(func() {
			for j := range work {
				j.done <- r.process(j.src)
			}
		})
	}
	for j := range ordered {
		var res result
		select {
		case res = <-j.done:
		case <-ctx.Done():
			return true, nil
		}
		if err := r.handle(res); err != nil {
			return false, err
		}
		r.progress.Done++
		if r.cfg.Progress != nil {
			r.cfg.Progress(r.progress)
		}
		if ctx.Err() != nil {
			return true, nil
		}
	}
	return ctx.Err() != nil, nil
}

// process reads one package and builds its samples. A panic in a decoder
// marks the package as bad instead of ending the run.
func (r *runner) process(src pmc.Source) (res result) {
	res.src = src
	defer func() {
		if p := recover(); p != nil {
			res.res, res.err = nil, fmt.Errorf("package %s: panic: %v", src.Path, p)
		}
	}()
	pkg, err := pmc.Open(src)
	if err != nil {
		res.err = err
		return res
	}
	art, err := jats.Parse(bytes.NewReader(pkg.XML))
	if err != nil {
		res.err = fmt.Errorf("package %s, %s: %w", src.Path, pkg.XMLName, err)
		return res
	}
	opt := sample.Options{PackageName: src.Name, VerifyJPEG: r.cfg.VerifyJPEG}
	if e, ok := r.fileList.Lookup(art.PMCID, src.Name); ok {
		opt.Entry = &e
	}
	res.res, res.err = sample.Build(art, pkg, opt)
	if res.err != nil {
		res.err = fmt.Errorf("package %s: %w", src.Path, res.err)
	}
	return res
}

// handle deduplicates a package's samples and writes them, or records the
// package as finished without samples.
func (r *runner) handle(x result) error {
	rec := packageRecord{ID: x.src.Path, Name: x.src.Name}
	if x.err != nil {
		rec.Error = x.err.Error()
		r.st.account(rec)
		r.progress.Bad++
		return r.j.addEmpty(rec)
	}
	res := x.res
	rec.Article, rec.Group, rec.Figures = res.Article, res.Group, res.Figures
	rec.Dropped = maps.Clone(res.Dropped)
	samples := res.Samples
	if _, dup := r.st.articles[res.Article]; dup && len(samples) > 0 {
		rec.Dropped[sample.DuplicateArticle] += len(samples)
		samples = nil
	}
	var kept []sample.Sample
	inPackage := map[hashKey]bool{}
	for _, s := range samples {
		k := hashKeyOf(s.Hash)
		if _, dup := r.st.hashes[k]; dup || inPackage[k] {
			rec.Dropped[sample.Duplicate]++
			continue
		}
		inPackage[k] = true
		kept = append(kept, s)
	}
	maps.DeleteFunc(rec.Dropped, func(_ sample.Reason, n int) bool { return n == 0 })
	rec.Samples = len(kept)
	if len(kept) == 0 {
		r.st.account(rec)
		return r.j.addEmpty(rec)
	}
	for k := range inPackage {
		r.st.hashes[k] = struct{}{}
	}
	r.st.account(rec)
	r.progress.Samples += len(kept)
	return r.write(res, rec, kept)
}

// write appends a package's samples to its group's shard, committing the
// shard first if they would not fit and afterwards if it is full.
func (r *runner) write(res *sample.Result, rec packageRecord, kept []sample.Sample) error {
	g := res.Group
	w := r.writers[g]
	if w == nil {
		w = &groupWriter{}
		r.writers[g] = w
	}
	var need int64
	items := make([]shardwriter.Sample, len(kept))
	for i, s := range kept {
		items[i] = shardwriter.Sample{Key: s.Key, JPEG: s.JPEG, Caption: s.Caption, JSON: s.JSON,
			Article: res.Article, License: res.License, Hash: hex.EncodeToString(s.Hash[:]), PHash: s.PHash}
		need += shardwriter.SampleBytes(items[i])
	}
	if w.shard != nil && (w.shard.Samples()+len(items) > r.cfg.ShardSamples || w.shard.Bytes()+need > r.cfg.ShardBytes) {
		if err := r.commit(g); err != nil {
			return err
		}
	}
	if w.shard == nil {
		sh, err := shardwriter.Create(filepath.Join(r.dir, string(g)), r.st.nextIndex(g), r.cfg.Formats)
		if err != nil {
			return fmt.Errorf("pipeline: %w", err)
		}
		w.shard = sh
	}
	for _, it := range items {
		if err := w.shard.Add(it); err != nil {
			return fmt.Errorf("pipeline: %w", err)
		}
		w.keys = append(w.keys, it.Key)
		w.hashes = append(w.hashes, it.Hash)
	}
	w.pkgs = append(w.pkgs, rec)
	if w.shard.Samples() >= r.cfg.ShardSamples || w.shard.Bytes() >= r.cfg.ShardBytes {
		return r.commit(g)
	}
	return nil
}

// commit closes the group's open shard, records it in the journal and
// rewrites the group's sizes.json.
func (r *runner) commit(g pmc.Group) error {
	w := r.writers[g]
	c, err := w.shard.Commit()
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	rec := shardRecord{Group: g, Index: c.Index, Samples: c.Samples, Files: c.Files, Keys: w.keys, Hashes: w.hashes}
	if err := r.j.commit(&rec, w.pkgs); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	if err := r.st.addShard(rec); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	// The packages were counted when handled; mark them done only.
	*w = groupWriter{}
	if err := shardwriter.WriteSizes(filepath.Join(r.dir, string(g)), r.st.sizes(g)); err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	return nil
}
