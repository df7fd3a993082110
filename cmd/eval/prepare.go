package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/bmca/bmca/data/remote"
	"github.com/bmca/bmca/eval/prepare"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/internal/cli"
)

// runPrepare is `eval prepare`: fetch, verify and lay out a suite's data.
// It is a subcommand of eval rather than a command of its own because it
// reads the same suite file and resolves the same data root (--data-root,
// $BMCA_EVAL_DATA) that evaluation then reads.
func runPrepare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval prepare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	suitePath := fs.String("suite", "", "evaluation suite YAML `FILE` whose datasets section holds the recipes (e.g. configs/suites/biomedica40.yaml)")
	dataRoot := fs.String("data-root", "", "folder the data is laid out in (`DIR`; default: the suite's data_root, e.g. $BMCA_EVAL_DATA)")
	downloads := fs.String("downloads", "", "folder for downloads and hand-fetched files, one sub-folder per recipe (`DIR`; default: DATA_ROOT/downloads)")
	force := fs.Bool("force", false, "redo every step and re-verify every file even when recorded as done")
	list := fs.Bool("list", false, "list the recipes (access, tasks, what is missing) without downloading or converting anything")
	ffmpeg := fs.String("ffmpeg", "ffmpeg", "ffmpeg `COMMAND` for video frame extraction (Cholec80)")
	workers := fs.Int("workers", 0, "images converted at once (`N`; default: the number of CPUs)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: eval prepare --suite FILE [flags] [RECIPE|TASK|DOMAIN ...]\n\n"+
			"Downloads (resumably), verifies and converts the evaluation data of a suite into the layout its\n"+
			"tasks read, following the recipes in the suite's datasets section. Recipes behind a registration\n"+
			"wall print where to get their files and where to put them; run again once they are there.\n"+
			"A recipe that completed before is skipped after a quick check of its output. $HF_TOKEN, when set,\n"+
			"is sent to the Hugging Face hub (gated datasets) and to no other host. Names select recipes by\n"+
			"recipe, task or domain (default: all).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *suitePath == "" {
		fs.Usage()
		return fmt.Errorf("--suite is required")
	}
	suite, err := tasks.LoadSuiteWith(*suitePath, tasks.LoadOptions{DataRoot: *dataRoot})
	if err != nil {
		return err
	}
	if len(suite.Datasets) == 0 {
		return fmt.Errorf("suite %s has no datasets section: nothing to prepare", *suitePath)
	}
	selected, err := prepare.Select(suite, fs.Args())
	if err != nil {
		return err
	}
	opts := prepare.Options{DataRoot: suite.DataDir(), Downloads: *downloads, Token: remote.Secret(os.Getenv("HF_TOKEN")),
		Progress: stderr, Force: *force, FFmpeg: *ffmpeg, Workers: *workers}
	if *list {
		return listRecipes(stdout, suite, selected, opts)
	}
	fmt.Fprintf(stderr, "preparing %d data sets under %s\n", len(selected), suite.DataDir())
	reports := prepare.Run(ctx, selected, opts)
	return printReports(stdout, reports)
}

// printReports prints one line per recipe, then what to fetch by hand, then
// the errors; it returns an error when any recipe failed.
func printReports(w io.Writer, reports []prepare.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATA SET\tSTATUS\tACCESS\tTASKS\tTIME")
	failed := 0
	for _, r := range reports {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Dataset, r.Status, r.Access, strings.Join(r.Tasks, ","), r.Elapsed.Round(1e6))
		if r.Status == prepare.Failed {
			failed++
		}
	}
	tw.Flush()
	for _, r := range reports {
		if r.Status != prepare.NeedsFiles {
			continue
		}
		fmt.Fprintf(w, "\n%s needs files fetched by hand (%s). %s\nPut them at:\n", r.Dataset, r.Access, r.Instructions)
		for _, m := range r.Missing {
			fmt.Fprintf(w, "  %s", m.Path)
			if m.URL != "" {
				fmt.Fprintf(w, "   (from %s)", m.URL)
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w, "then run prepare again: the files are verified and converted like downloads.")
	}
	for _, r := range reports {
		if r.Err != nil {
			fmt.Fprintf(w, "\nerror: %v\n", r.Err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d data sets failed", failed, len(reports))
	}
	return nil
}

// listRecipes prints the recipes and their state without running them.
func listRecipes(w io.Writer, suite *tasks.Suite, selected []tasks.Dataset, opts prepare.Options) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATA SET\tSTATE\tACCESS\tSTEPS\tTASKS\tLICENCE")
	covered := map[string]bool{}
	for i, r := range prepare.Check(selected, opts) {
		d := selected[i]
		var steps []string
		for _, s := range d.Steps {
			steps = append(steps, s.Kind())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, r.Status, r.Access, strings.Join(steps, ","), strings.Join(d.Tasks, ","), d.License)
		for _, t := range d.Tasks {
			covered[t] = true
		}
	}
	tw.Flush()
	if len(selected) == len(suite.Datasets) {
		var none []string
		for _, t := range suite.Tasks {
			if !covered[t.Name] {
				none = append(none, t.Name)
			}
		}
		if len(none) > 0 {
			fmt.Fprintf(w, "\ntasks without a recipe: %s\n", strings.Join(none, ", "))
		}
	}
	fmt.Fprintf(w, "\ndata root: %s\n", opts.DataRoot)
	return nil
}

// prepareMain runs the subcommand and exits.
func prepareMain(args []string) {
	ctx, stop := signalContext()
	defer stop()
	if err := runPrepare(ctx, args, os.Stdout, os.Stderr); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		cli.Fatal("eval prepare", err)
	}
}
