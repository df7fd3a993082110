// Command eval runs an evaluation suite (zero-shot classification, image–text
// retrieval, linear probes) on one or more checkpoints, prints the results
// and writes a leaderboard.
//
//	go run ./cmd/eval --checkpoint runs/demo --suite configs/suites/demo.yaml --output runs/demo/eval
//	go run ./cmd/eval --suite configs/suites/biomedica40.yaml --compare base=runs/a bmc=runs/b --output eval/
//	go run ./cmd/eval --suite configs/suites/biomedica40.yaml --wise-ft runs/a runs/b --alphas 0:1:0.1 --output eval/wise-ft
//	go run ./cmd/eval --suite configs/suites/biomedica40.yaml --train-shards 'biomedica:commercial' --checkpoint runs/a --exclude-overlap
//
// `eval prepare` fetches and lays out a suite's data first (see prepare.go):
//
//	go run ./cmd/eval prepare --suite configs/suites/biomedica40.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/bmca/bmca/eval/contamination"
	"github.com/bmca/bmca/internal/cli"
	"github.com/bmca/bmca/internal/cli/cliflag"
	"github.com/bmca/bmca/model/transformer"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "prepare" {
		prepareMain(os.Args[2:])
		return
	}
	args, compare, err := cli.SplitCompare(os.Args[1:])
	if err != nil {
		cli.Fatal("eval", err)
	}
	args, wise, err := cli.SplitList(args, "wise-ft")
	if err != nil {
		cli.Fatal("eval", err)
	}
	fs := flag.NewFlagSet("eval", flag.ExitOnError)
	checkpoint := fs.String("checkpoint", "", "checkpoint `PATH` (or LABEL=PATH): a bmca run dir (its newest checkpoint) or step-NNNNNNNN dir, an OpenCLIP or Hugging Face dir, a .safetensors/.pt/.bin file, or a hub model hf-hub:ORG/NAME[@REVISION] (downloaded into the Hugging Face cache); its preprocess_cfg decides the image preprocessing")
	suitePath := fs.String("suite", "", "evaluation suite YAML `FILE` (e.g. configs/suites/demo.yaml, configs/suites/biomedica40.yaml)")
	var flags cli.ConfigFlags
	flags.Register(fs, "")
	flags.RegisterOutput(fs, "output `DIR` for results.json, leaderboard.md/.csv and charts")
	var batch int
	cliflag.BatchSize(fs, &batch, 0, "images or prompts encoded at once (`N`; default: the run config's eval.batch_size)")
	cacheDir := fs.String("cache", defaultCache(), "feature cache `DIR` (features are reused across runs of the same checkpoint and data; the training shards' hashes of --train-shards are kept in DIR/"+cli.TrainHashesDir+", so a second check of the same shards reads neither shard nor image); \"off\" disables it")
	noCache := fs.Bool("no-cache", false, "do not read or write the feature cache (nor the training shards' hashes)")
	dataRoot := fs.String("data-root", "", "folder the suite's relative data paths are resolved against (`DIR`; default: the suite's data_root, e.g. $BMCA_EVAL_DATA)")
	var precision transformer.Precision
	cliflag.Precision(fs, &precision)
	only := fs.String("tasks", "", "comma-separated task names or domains to run (`LIST`; default: all)")
	alphas := fs.String("alphas", cli.DefaultAlphas, "mixing weights of --wise-ft BASE OTHER: `START:STOP:STEP` (stop included) or a list a,b,c")
	var trainShards shardList
	fs.Var(&trainShards, "train-shards", "training shards to look for the evaluation images in (`SPEC`, data.train_shards' syntax: paths, globs, {000..099} ranges, URLs, biomedica:SUBSETS, several joined by ::; repeatable): the overlap per task goes into the table, results.json, the leaderboard and train_overlap.json; without checkpoints only this report is made")
	overlapDistance := fs.Int("overlap-distance", contamination.DefaultMaxDistance, "perceptual-hash distance (`BITS` of 64) up to which a training image counts as a near-duplicate (resized, re-encoded) of an evaluation image; -1 finds exact copies only and decodes no training image (much faster)")
	overlapRehash := fs.Bool("overlap-rehash", false, "decode every training image for its perceptual hash, ignoring the hashes bmca's ETL stores in the json (image_phash) and those cached from earlier checks (which are rewritten)")
	excludeOverlap := fs.Bool("exclude-overlap", false, "score every task without the evaluation images found in --train-shards (the scores with them stay in results.json as metrics_with_overlap)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: eval --suite FILE (--checkpoint PATH | --compare [LABEL=]PATH ... | --wise-ft BASE OTHER [--alphas 0:1:0.1]) [--output DIR] [flags]\n\n"+
			"Evaluates checkpoints on every task of a suite. The tokenizer, backend and (for the demo) the\n"+
			"synthetic dataset come from the run config stored in each checkpoint unless --config is given\n"+
			"(--backend replaces the backend either way);\n"+
			"a checkpoint without one (a hub model, an export) uses its own tokenizer (tokenizer.name auto):\n"+
			"a Hugging Face text tower's hf_tokenizer_name (from the Hugging Face cache, downloaded if\n"+
			"missing), else CLIP's BPE over --set tokenizer.vocab=FILE. Each model's own preprocess_cfg\n"+
			"preprocesses its images, so models with different tokenizers and preprocessing share one board.\n"+
			"Tasks whose data is absent are reported as skipped; a malformed task (invalid in the suite\n"+
			"file, or with malformed data) is reported as failed with its reason while the other tasks run\n"+
			"and are written; the exit status is then 1.\n\n"+
			"--compare A B ... evaluates several checkpoints (with --checkpoint, in addition to it) and puts\n"+
			"them side by side in one leaderboard, each compared with the first by a paired bootstrap (the\n"+
			"same resampled examples for both): per task and on every mean, the difference and its 95%\n"+
			"interval, marked where it excludes zero (leaderboard.md/.csv, results.json).\n\n"+
			"--wise-ft BASE OTHER evaluates the WiSE-FT weight-space mixes (1-α)·BASE + α·OTHER for every\n"+
			"α of --alphas (two checkpoints of one architecture; the mixes are made in memory) in one\n"+
			"leaderboard, each compared with the first α, and plots the means against α (wise-ft.png).\n"+
			"cmd/merge writes a chosen mix as a checkpoint.\n\n"+
			"--train-shards SPEC looks for every evaluation image in the training shards (same file, same\n"+
			"pixels, or a resized/re-encoded near-duplicate by perceptual hash) and reports the overlap per\n"+
			"task; --exclude-overlap scores without those images. A training image's perceptual hash is read\n"+
			"from its json when bmca's ETL stored it (image_phash), else its JPEG is decoded at 1/8 scale;\n"+
			"each shard's hashes are cached (--cache), so checking the same shards again reads neither.\n\n"+
			"A checkpoint may be an OpenCLIP model on the Hugging Face Hub, hf-hub:ORG/NAME[@REVISION]\n"+
			"(HF_TOKEN, HF_ENDPOINT, HF_HOME, HF_HUB_OFFLINE apply as in Python's huggingface_hub).\n"+
			"--output DIR gets results.json, leaderboard.md, leaderboard.csv and chart-<domain>.png.\n"+
			"`eval prepare --suite FILE` downloads and lays out the suite's data first (eval prepare --help).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(args)
	if fs.NArg() > 0 {
		fs.Usage()
		cli.Fatal("eval", fmt.Errorf("unexpected arguments %q (checkpoints to compare go after --compare)", fs.Args()))
	}
	if (*checkpoint == "" && len(compare) == 0 && len(wise) == 0 && len(trainShards) == 0) || *suitePath == "" {
		fs.Usage()
		cli.Fatal("eval", fmt.Errorf("--suite and --checkpoint (or --compare, --wise-ft, or --train-shards for the contamination report alone) are required"))
	}
	var alphaList []float64
	if len(wise) > 0 {
		if alphaList, err = cli.ParseAlphas(*alphas); err != nil {
			cli.Fatal("eval", fmt.Errorf("--alphas: %w", err))
		}
	}
	if *noCache || *cacheDir == "off" {
		*cacheDir = ""
	}
	var tasks []string
	for _, t := range strings.Split(*only, ",") {
		if t = strings.TrimSpace(t); t != "" {
			tasks = append(tasks, t)
		}
	}
	ctx, stop := signalContext()
	defer stop()
	evalArgs := cli.EvalArgs{Checkpoint: *checkpoint, Compare: compare, WiseFT: wise, Alphas: alphaList, Suite: *suitePath,
		TrainShards: trainShards, OverlapDistance: *overlapDistance, OverlapRehash: *overlapRehash, ExcludeOverlap: *excludeOverlap, Config: &flags, BatchSize: batch,
		Output: flags.Output, CacheDir: *cacheDir, DataRoot: *dataRoot, Tasks: tasks, Precision: precision, Out: os.Stdout, Progress: os.Stderr}
	if _, err := cli.Eval(ctx, evalArgs); err != nil {
		cli.Fatal("eval", err)
	}
}

// shardList is a repeatable --train-shards.
type shardList []string

func (s *shardList) String() string { return strings.Join(*s, " ") }

// Set adds one SPEC.
func (s *shardList) Set(v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("empty shard spec")
	}
	*s = append(*s, v)
	return nil
}

// defaultCache is the per-user feature cache, e.g. ~/.cache/bmca/eval-features.
func defaultCache() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "bmca", "eval-features")
}

// signalContext ends on Ctrl-C or SIGTERM, so long work stops cleanly.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
