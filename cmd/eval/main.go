// Command eval runs an evaluation suite (zero-shot classification and
// image–text retrieval) on a checkpoint and prints and stores the results.
//
//	go run ./cmd/eval --checkpoint runs/demo --suite configs/suites/demo.yaml
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/bmca/bmca/internal/cli"
)

func main() {
	fs := flag.NewFlagSet("eval", flag.ExitOnError)
	checkpoint := fs.String("checkpoint", "", "checkpoint `PATH`: a step-NNNNNNNN dir, or a run dir (its newest checkpoint)")
	suitePath := fs.String("suite", "", "evaluation suite YAML `FILE` (e.g. configs/suites/demo.yaml)")
	var flags cli.ConfigFlags
	flags.Register(fs, "")
	batch := fs.Int("batch-size", 0, "images or prompts encoded at once (`N`; default: the run config's eval.batch_size)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: eval --checkpoint PATH --suite FILE [--config FILE] [--set key=value ...] [--output DIR]\n\n"+
			"Evaluates a checkpoint on every task of a suite. The tokenizer, backend and (for the\n"+
			"demo) the synthetic dataset come from the run config stored in the checkpoint unless\n"+
			"--config is given. --output DIR gets results.json.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if *checkpoint == "" || *suitePath == "" {
		fs.Usage()
		cli.Fatal("eval", fmt.Errorf("--checkpoint and --suite are required"))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := cli.EvalArgs{Checkpoint: *checkpoint, Suite: *suitePath, Config: &flags, BatchSize: *batch,
		Output: flags.Output, Out: os.Stdout, Progress: os.Stderr}
	if _, err := cli.Eval(ctx, args); err != nil {
		cli.Fatal("eval", err)
	}
}
