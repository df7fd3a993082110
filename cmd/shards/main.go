// Command shards builds BIOMEDICA-format shards from PubMed Central Open
// Access article packages; see usage below or run it with --help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/bmca/bmca/etl/pipeline"
	"github.com/bmca/bmca/etl/pmc"
	"github.com/bmca/bmca/etl/sample"
	"github.com/bmca/bmca/etl/shardwriter"
	"github.com/bmca/bmca/internal/cli/cliflag"
)

const usage = `Usage:
  shards --input PATH [--input PATH ...] --output DIR [flags]
  shards --merge --output DIR

Builds BIOMEDICA-format shards from PubMed Central Open Access article
packages. Each input is a package .tar.gz (as the OA service publishes it),
an extracted package folder, an article .nxml/.xml, or a folder holding any
number of these (searched recursively); inputs may also be given as
arguments after the flags.

Every <fig> of an article becomes one sample: <key>.jpg (JPEG files kept as
published; PNG, TIFF, GIF, WebP and BMP converted to JPEG at quality 95),
<key>.txt (the caption) and <key>.json (BIOMEDICA's 25 metadata fields).
Figures without a caption, without an image file, with an image of 20 px or
less on a side, or whose image was already written (same SHA-256) are
dropped and counted. Samples go to DIR/commercial, DIR/noncommercial or
DIR/other by license (from --file-list, else from the article XML), in
shards 000000.tar, 000001.tar, ... with a sizes.json each.

The run is resumable: rerun the same command after a crash or Ctrl-C and it
continues where it stopped, without redoing finished packages. Ctrl-C
finishes the shards being written and exits; a second Ctrl-C kills at once.
Packages that cannot be read are skipped and listed in
DIR/bad_packages.jsonl. DIR/manifest.json summarises the output.

Past one machine, split the run: start N tasks with --part I/N (I from 0 to
N-1), each writing DIR/part-IIIII-of-NNNNN, then run --merge once:
  SLURM:       #SBATCH --array=0-15
               shards --input /data/oa_package --output /data/bmca --part ${SLURM_ARRAY_TASK_ID}/16
  Kubernetes:  an indexed Job (completionMode: Indexed, completions: 16) running
               shards --input /data/oa_package --output /data/bmca --part ${JOB_COMPLETION_INDEX}/16
  then:        shards --merge --output /data/bmca

Flags:
`

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

type options struct {
	inputs       listFlag
	out          string
	format       string
	fileList     string
	workers      int
	shardSamples int
	shardMiB     int64
	part         string
	merge        bool
	verifyJPEG   bool
	quiet        bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitInterrupted = 130
)

func run(args []string, stdout, stderr io.Writer) int {
	var o options
	fs := flag.NewFlagSet("shards", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Var(&o.inputs, "input", "a package `PATH`: .tar.gz, extracted folder, .nxml, or a folder of them; repeatable")
	cliflag.Output(fs, &o.out, "output `DIR` (required); a --part run writes DIR/part-IIIII-of-NNNNN")
	fs.StringVar(&o.format, "format", "wds", "shard `FORMAT`s: wds (WebDataset .tar), parquet, or wds,parquet for both")
	fs.StringVar(&o.fileList, "file-list", "", "the OA file list `CSV` (File, Article Citation, Accession ID, Last Updated, PMID, License);\nits License column splits commercial / noncommercial / other, its citation fills article_citation;\nwithout it both come from each article's XML")
	fs.IntVar(&o.workers, "workers", 0, "packages processed at once (`N`; 0 = one per CPU); never changes the output")
	fs.IntVar(&o.shardSamples, "shard-samples", pipeline.DefaultShardSamples, "at most `N` samples per shard")
	fs.Int64Var(&o.shardMiB, "shard-mib", pipeline.DefaultShardBytes>>20, "at most `MiB` mebibytes per shard (images + captions + JSON)")
	fs.StringVar(&o.part, "part", "", "process only part `I/N` of the packages (0 ≤ I < N), split by a hash of each package's name,\ninto DIR/part-IIIII-of-NNNNN; run every part, then --merge")
	fs.BoolVar(&o.merge, "merge", false, "combine the complete parts under --output into --output, removing images duplicated across parts")
	fs.BoolVar(&o.verifyJPEG, "verify-jpeg", false, "fully decode every JPEG figure (slower) instead of checking its header only")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	o.inputs = append(o.inputs, fs.Args()...)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills the process
	}()

	if o.merge {
		return runMerge(ctx, o, stdout, stderr)
	}
	cfg, err := o.config()
	if err != nil {
		fmt.Fprintf(stderr, "shards: %v\n\n", err)
		fs.Usage()
		return exitUsage
	}
	var bar *progressbar.ProgressBar
	if !o.quiet {
		cfg.Progress = func(p pipeline.Progress) {
			if bar == nil {
				bar = newBar(stderr, p.Total)
			}
			bar.Describe(fmt.Sprintf("packages · %d samples · %d bad", p.Samples, p.Bad))
			_ = bar.Set(p.Done)
		}
	}
	sum, err := pipeline.Run(ctx, cfg)
	if bar != nil {
		if err == nil {
			_ = bar.Finish()
			fmt.Fprintln(stderr)
		} else {
			_ = bar.Clear() // its throttled last frame may be stale; the summary says where the run stopped
		}
	}
	if sum != nil {
		printSummary(stdout, sum)
	}
	switch {
	case errors.Is(err, pipeline.ErrInterrupted):
		fmt.Fprintln(stderr, "shards: interrupted; the shards written so far are complete. Rerun the same command to resume.")
		return exitInterrupted
	case err != nil:
		fmt.Fprintf(stderr, "shards: %v\n", err)
		return exitError
	}
	return exitOK
}

func (o options) config() (pipeline.Config, error) {
	if len(o.inputs) == 0 {
		return pipeline.Config{}, errors.New("no --input given")
	}
	if o.out == "" {
		return pipeline.Config{}, errors.New("no --output given")
	}
	formats, err := shardwriter.ParseFormats(o.format)
	if err != nil {
		return pipeline.Config{}, fmt.Errorf("--format: %w", err)
	}
	if o.shardSamples < 1 || o.shardMiB < 1 {
		return pipeline.Config{}, fmt.Errorf("--shard-samples (%d) and --shard-mib (%d) must be at least 1", o.shardSamples, o.shardMiB)
	}
	if o.workers < 0 {
		return pipeline.Config{}, fmt.Errorf("--workers %d: expected 0 (one per CPU) or more", o.workers)
	}
	cfg := pipeline.Config{
		Inputs:       o.inputs,
		Out:          o.out,
		Formats:      formats,
		FileList:     o.fileList,
		Workers:      o.workers,
		ShardSamples: o.shardSamples,
		ShardBytes:   o.shardMiB << 20,
		VerifyJPEG:   o.verifyJPEG,
	}
	if o.part != "" {
		if cfg.Part, err = pipeline.ParsePart(o.part); err != nil {
			return cfg, fmt.Errorf("--part: %w", err)
		}
	}
	return cfg, nil
}

func runMerge(ctx context.Context, o options, stdout, stderr io.Writer) int {
	if o.out == "" {
		fmt.Fprintln(stderr, "shards: --merge needs --output, the folder holding the part-IIIII-of-NNNNN outputs")
		return exitUsage
	}
	if len(o.inputs) > 0 || o.part != "" {
		fmt.Fprintln(stderr, "shards: --merge takes only --output: it reads the parts' outputs, not the inputs")
		return exitUsage
	}
	start := time.Now()
	sum, err := pipeline.Merge(ctx, o.out)
	if errors.Is(err, pipeline.ErrInterrupted) {
		fmt.Fprintln(stderr, "shards: merge interrupted; rerun it to start the merge over (the parts are untouched)")
		return exitInterrupted
	}
	if err != nil {
		fmt.Fprintf(stderr, "shards: %v\n", err)
		return exitError
	}
	sum.RunElapsed = time.Since(start)
	printSummary(stdout, sum)
	return exitOK
}

func newBar(w io.Writer, total int) *progressbar.ProgressBar {
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("packages"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("articles"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(200*time.Millisecond),
	)
}

func printSummary(w io.Writer, s *pipeline.Summary) {
	state := "complete"
	if !s.Complete {
		state = "INCOMPLETE (rerun the same command to resume)"
	}
	if s.Merged {
		fmt.Fprintf(w, "merged %d parts into %s\n", s.Parts, s.Dir)
	} else {
		fmt.Fprintf(w, "output %s: %s\n", s.Dir, state)
		fmt.Fprintf(w, "this run: %d packages, %d samples in %s (%.1f articles/s)\n",
			s.RunPackages, s.RunSamples, s.RunElapsed.Round(time.Millisecond), s.ArticlesPerSecond())
	}
	fmt.Fprintf(w, "packages: %d (%d bad)\n", s.Packages, s.Bad)
	fmt.Fprintf(w, "figures: %d → samples %d\n", s.Figures, s.Samples)
	var drops []string
	for _, r := range sample.Reasons {
		if n := s.Dropped[r]; n > 0 {
			drops = append(drops, fmt.Sprintf("%s %d", r, n))
		}
	}
	if len(drops) > 0 {
		fmt.Fprintf(w, "dropped: %s\n", strings.Join(drops, ", "))
	}
	for _, g := range pmc.Groups {
		if gs := s.Groups[g]; gs != nil {
			fmt.Fprintf(w, "%-14s %6d samples in %d shard files\n", g+":", gs.Samples, len(gs.Shards))
		}
	}
	const show = 10
	for i, b := range s.BadPackages {
		if i == show {
			fmt.Fprintf(w, "… and %d more in %s\n", len(s.BadPackages)-show, pipeline.BadName)
			break
		}
		fmt.Fprintf(w, "bad package: %s\n", b.Error)
	}
}
