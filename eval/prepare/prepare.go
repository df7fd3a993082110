// Package prepare fetches evaluation data sets and lays them out the way a
// suite's tasks read them, from the recipes in the suite file (the datasets
// section; schema in eval/tasks, recipe.go). For each recipe it downloads the
// files (resumable, retried, $HF_TOKEN sent to the Hugging Face hub only) or,
// for data behind a registration wall, says where to get them and where to
// put them; verifies sizes and the publisher's checksums; then runs the
// conversion steps (unpacking, tables from folders or publisher tables,
// DICOM/TIFF to PNG, crops from boxes, video frames, MedMNIST npz to parquet,
// images listed by URL, PubMed Central figures to WebDataset shards) and
// checks the result against the counts the publisher gives.
//
//	suite, _ := tasks.LoadSuite("configs/suites/biomedica40.yaml")
//	reports := prepare.Run(ctx, suite.Datasets, prepare.Options{DataRoot: suite.DataDir(), Progress: os.Stderr})
//
// A recipe that completed is recorded in its download folder; running it
// again only re-checks the expectations (seconds), unless the recipe changed
// or Options.Force is set. Each finished step and each verified file is
// recorded too, so an interrupted run resumes where it stopped.
package prepare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/bmca/bmca/data/remote"
	"github.com/bmca/bmca/eval/tasks"
)

// Options configure Run.
type Options struct {
	// DataRoot is the folder the recipes' paths are relative to (the
	// suite's data root); required.
	DataRoot string
	// Downloads is the folder holding one download folder per recipe
	// (default DataRoot/downloads).
	Downloads string
	// Token is sent as a bearer token to huggingface.co (and its
	// subdomains) only: $HF_TOKEN for gated hub datasets.
	Token remote.Secret
	// Remote tunes HTTP (client, retries, stall timeout); its Token is
	// ignored in favour of Token above.
	Remote remote.Options
	// Progress receives progress bars and notes; nil is quiet.
	Progress io.Writer
	// Force reruns every step and re-verifies every file even when recorded
	// as done.
	Force bool
	// FFmpeg is the ffmpeg command for video steps (default "ffmpeg" on
	// PATH).
	FFmpeg string
	// Workers converts this many images at once (default GOMAXPROCS).
	Workers int
}

func (o Options) withDefaults() Options {
	if o.Downloads == "" {
		o.Downloads = filepath.Join(o.DataRoot, "downloads")
	}
	if o.FFmpeg == "" {
		o.FFmpeg = "ffmpeg"
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Remote.Client == nil {
		o.Remote.Client = newClient()
	}
	return o
}

// Status is the outcome of one recipe.
type Status string

// The outcomes Run reports.
const (
	// Prepared: the files were fetched or found, verified and converted.
	Prepared Status = "prepared"
	// UpToDate: a previous run completed this recipe; nothing was redone.
	UpToDate Status = "up to date"
	// NeedsFiles: files that must be fetched by hand are missing.
	NeedsFiles Status = "needs files"
	// Failed: a download, check or step failed (Report.Err says which).
	Failed Status = "failed"
	// Pending: not prepared yet, nothing missing that prepare cannot fetch
	// (Check only).
	Pending Status = "not prepared"
)

// Report is what happened to one recipe.
type Report struct {
	Dataset string
	Tasks   []string
	Access  tasks.Access
	Status  Status
	// Missing lists the files to fetch by hand (NeedsFiles), with
	// Instructions saying where to get them.
	Missing      []MissingFile
	Instructions string
	Err          error
	Elapsed      time.Duration
}

// MissingFile is a file a user must fetch and put at Path.
type MissingFile struct {
	Path string // absolute
	URL  string // where it comes from, when the recipe says
}

// Run prepares each recipe in turn and reports on every one; a recipe that
// fails does not stop the others. It stops early only when ctx ends.
func Run(ctx context.Context, datasets []tasks.Dataset, opts Options) []Report {
	opts = opts.withDefaults()
	var out []Report
	for _, d := range datasets {
		if ctx.Err() != nil {
			out = append(out, Report{Dataset: d.Name, Tasks: d.Tasks, Access: access(d), Status: Failed, Err: ctx.Err()})
			continue
		}
		start := time.Now()
		r := prepareOne(ctx, d, opts)
		r.Elapsed = time.Since(start)
		out = append(out, r)
	}
	return out
}

// Check reports each recipe's state without fetching or converting
// anything: UpToDate, NeedsFiles (hand-fetched files absent) or Pending.
func Check(datasets []tasks.Dataset, opts Options) []Report {
	opts = opts.withDefaults()
	var out []Report
	for _, d := range datasets {
		rep := Report{Dataset: d.Name, Tasks: d.Tasks, Access: access(d), Instructions: d.Instructions, Status: Pending}
		e := &env{ds: d, opts: opts, downloads: filepath.Join(opts.Downloads, d.Name), log: io.Discard}
		st, err := loadState(e.downloads)
		if err != nil {
			rep.Status, rep.Err = Failed, err
			out = append(out, rep)
			continue
		}
		if st.Done == recipeHash(d) && e.checkExpectations() == nil {
			rep.Status = UpToDate
		} else if access(d) != tasks.Open {
			for _, f := range d.Files {
				if p := e.filePath(f); !exists(p) {
					rep.Missing = append(rep.Missing, MissingFile{Path: p, URL: f.URL})
				}
			}
			if len(rep.Missing) > 0 {
				rep.Status = NeedsFiles
			}
		}
		out = append(out, rep)
	}
	return out
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Select returns the recipes named, or serving a task or domain named, in
// suite order; a name matching nothing is an error.
func Select(suite *tasks.Suite, names []string) ([]tasks.Dataset, error) {
	if len(names) == 0 {
		return suite.Datasets, nil
	}
	domain := map[string]string{}
	for _, t := range suite.Tasks {
		domain[t.Name] = t.Domain
	}
	used := map[string]bool{}
	var out []tasks.Dataset
	for _, d := range suite.Datasets {
		hit := false
		for _, n := range names {
			match := n == d.Name || slices.Contains(d.Tasks, n)
			for _, t := range d.Tasks {
				match = match || (n != "" && domain[t] == n)
			}
			if match {
				used[n], hit = true, true
			}
		}
		if hit {
			out = append(out, d)
		}
	}
	for _, n := range names {
		if !used[n] {
			var known []string
			for _, d := range suite.Datasets {
				known = append(known, d.Name)
			}
			return nil, fmt.Errorf("no recipe, task or domain %q among the suite's recipes (recipes: %s)", n, strings.Join(known, ", "))
		}
	}
	return out, nil
}

func access(d tasks.Dataset) tasks.Access {
	if d.Access == "" {
		return tasks.Open
	}
	return d.Access
}

// env is one recipe being prepared.
type env struct {
	ds        tasks.Dataset
	opts      Options
	downloads string // this recipe's download folder
	state     *state
	log       io.Writer
}

// path resolves a recipe path: "{downloads}" is the recipe's download
// folder, relative paths are relative to the data root.
func (e *env) path(p string) string {
	p = strings.ReplaceAll(p, "{downloads}", filepath.ToSlash(e.downloads))
	p = filepath.FromSlash(p)
	if !filepath.IsAbs(p) {
		p = filepath.Join(e.opts.DataRoot, p)
	}
	return p
}

// filePath is where a recipe file is stored.
func (e *env) filePath(f tasks.DataFile) string {
	if f.Path != "" {
		return e.path(f.Path)
	}
	u, _ := url.Parse(f.URL)
	return filepath.Join(e.downloads, path.Base(u.Path))
}

func (e *env) notef(format string, args ...any) {
	fmt.Fprintf(e.log, "%s: %s\n", e.ds.Name, fmt.Sprintf(format, args...))
}

func prepareOne(ctx context.Context, d tasks.Dataset, opts Options) Report {
	rep := Report{Dataset: d.Name, Tasks: d.Tasks, Access: access(d), Instructions: d.Instructions}
	e := &env{ds: d, opts: opts, downloads: filepath.Join(opts.Downloads, d.Name), log: opts.Progress}
	fail := func(err error) Report {
		rep.Status, rep.Err = Failed, fmt.Errorf("%s: %w", d.Name, err)
		return rep
	}
	st, err := loadState(e.downloads)
	if err != nil {
		return fail(err)
	}
	e.state = st
	recipe := recipeHash(d)
	if !opts.Force && st.Done == recipe {
		if err := e.checkExpectations(); err == nil {
			rep.Status = UpToDate
			return rep
		} else {
			e.notef("was prepared, but %v: preparing again", err)
		}
	}
	st.Done = ""
	if err := e.fetchFiles(ctx, &rep); err != nil {
		return fail(err)
	}
	if len(rep.Missing) > 0 {
		rep.Status = NeedsFiles
		return rep
	}
	skipped, err := e.runSteps(ctx)
	if err != nil {
		return fail(err)
	}
	if err := e.checkExpectations(); err != nil {
		if skipped == 0 {
			return fail(err)
		}
		// Steps recorded as done, but their output is not all there (removed
		// by hand, or a step's output outside the data root moved): redo them.
		e.notef("%v: running every step again", err)
		clear(st.Steps)
		if _, err := e.runSteps(ctx); err != nil {
			return fail(err)
		}
		if err := e.checkExpectations(); err != nil {
			return fail(err)
		}
	}
	st.Done = recipe
	if err := st.save(); err != nil {
		return fail(err)
	}
	rep.Status = Prepared
	return rep
}

// fetchFiles downloads missing open files, lists missing manual ones, and
// verifies every file present.
func (e *env) fetchFiles(ctx context.Context, rep *Report) error {
	if err := os.MkdirAll(e.downloads, 0o755); err != nil {
		return err
	}
	manual := access(e.ds) != tasks.Open
	for _, f := range e.ds.Files {
		dst := e.filePath(f)
		if _, err := os.Stat(dst); errors.Is(err, os.ErrNotExist) {
			if manual {
				rep.Missing = append(rep.Missing, MissingFile{Path: dst, URL: f.URL})
				continue
			}
			if err := e.download(ctx, f, dst); err != nil {
				return err
			}
			continue
		} else if err != nil {
			return err
		}
		if err := e.verify(f, dst, manual); err != nil {
			return err
		}
	}
	return nil
}

// runSteps runs the steps not recorded as done with the same recipe prefix
// and returns how many it skipped.
func (e *env) runSteps(ctx context.Context) (skipped int, err error) {
	chain := filesHash(e.ds.Files)
	for i, s := range e.ds.Steps {
		chain = stepHash(chain, s)
		key := fmt.Sprintf("%d", i)
		if !e.opts.Force && e.state.Steps[key] == chain {
			skipped++
			continue
		}
		e.notef("step %d/%d: %s", i+1, len(e.ds.Steps), s.Kind())
		if err := e.runStep(ctx, s); err != nil {
			return skipped, fmt.Errorf("step %d (%s): %w", i+1, s.Kind(), err)
		}
		e.state.Steps[key] = chain
		if err := e.state.save(); err != nil {
			return skipped, err
		}
	}
	return skipped, nil
}

func (e *env) runStep(ctx context.Context, s tasks.Step) error {
	switch {
	case s.Unpack != nil:
		return e.unpack(ctx, s.Unpack)
	case s.FolderTable != nil:
		return e.folderTable(ctx, s.FolderTable)
	case s.Table != nil:
		return e.table(ctx, s.Table)
	case s.Crops != nil:
		return e.crops(ctx, s.Crops)
	case s.VideoFrames != nil:
		return e.videoFrames(ctx, s.VideoFrames)
	case s.NPZ != nil:
		return e.npzToParquet(ctx, s.NPZ)
	case s.FetchListed != nil:
		return e.fetchListed(ctx, s.FetchListed)
	case s.PMCFigures != nil:
		return e.pmcFigures(ctx, s.PMCFigures)
	}
	return fmt.Errorf("empty step")
}
