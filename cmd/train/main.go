// Command train pre-trains or continues training a CLIP model on WebDataset
// shards with OpenCLIP's recipe, writing resumable checkpoints in OpenCLIP's
// layout and evaluating zero-shot along the way.
//
//	go run ./cmd/train --config configs/demo.yaml
//	go run ./cmd/train --config configs/vit-b16.yaml --set train.steps=20 --output runs/try
//	go run ./cmd/train --config configs/demo.yaml --resume latest
//	bin/train --config configs/vit-b16.yaml --backend xla:/abs/xla_cuda_plugin.so --precision amp_bf16
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
	fs := flag.NewFlagSet("train", flag.ExitOnError)
	var flags cli.ConfigFlags
	flags.Register(fs, "")
	flags.RegisterOutput(fs, "run `DIR` for checkpoints, metrics and results (overrides the config's output)")
	flags.RegisterPrecision(fs)
	resume := fs.String("resume", "", "continue a run from a checkpoint `PATH` (a step-NNNNNNNN dir or a run dir), or \"latest\" for the newest checkpoint in the output dir")
	allowChanges := fs.Bool("allow-changes", false, "with --resume: accept a config whose recipe, data or seed differ from the run config the checkpoint recorded (the run then no longer continues the recorded one exactly); logging, evaluation, checkpoint cadence, output and train.steps may change without it")
	pretrained := fs.String("pretrained", "", "start from the weights in checkpoint `PATH` instead of a random init: a bmca run or checkpoint dir, an OpenCLIP or Hugging Face dir, a .safetensors/.pt/.bin file (format detected from the bytes), or a hub model hf-hub:ORG/NAME[@REVISION]; its model config must match the run's model section, and its preprocess_cfg is kept")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: train --config FILE [--set key=value ...] [--output DIR] [--backend CONFIG] [--precision MODE]\n"+
			"             [--resume PATH|latest [--allow-changes]] [--pretrained PATH]\n\n"+
			"Trains a CLIP model as configured. Ctrl-C (or SIGTERM) finishes the current step,\n"+
			"writes a checkpoint and exits 0; --resume latest continues exactly where it stopped.\n"+
			"--output, --backend and --precision override the config's output, backend and\n"+
			"train.precision (after any --set); without them the config's values apply.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		cli.Fatal("train", fmt.Errorf("unexpected arguments %q (flags only; see --help)", fs.Args()))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := flags.Load()
	if err != nil {
		cli.Fatal("train", err)
	}
	if err := cli.Train(ctx, cfg, cli.TrainArgs{Resume: *resume, Pretrained: *pretrained, AllowChanges: *allowChanges, Out: os.Stdout, Progress: os.Stderr}); err != nil {
		cli.Fatal("train", err)
	}
}
