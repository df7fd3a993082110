// Command export writes a model's weights as a checkpoint OpenCLIP (or
// transformers) loads: open_clip_model.safetensors + open_clip_config.json,
// or model.safetensors + config.json. The input may be a bmca training
// checkpoint or run directory, an OpenCLIP or Hugging Face directory, a
// single .safetensors, .pt or .bin file (its format is detected from its
// bytes), or an OpenCLIP model on the Hugging Face Hub (hf-hub:ORG/NAME).
//
//	go run ./cmd/export --checkpoint runs/demo --output exported/
//	go run ./cmd/export --checkpoint BMC_CLIP_CF.pt --model-config ViT-L-14 --output bmc-clip/ --dtype bf16
//	go run ./cmd/export --checkpoint bmc-clip/ --output bmc-clip-hf/ --format hf
//	go run ./cmd/export --checkpoint hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K --output laion-b32/
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/bmca/bmca/cmd/internal/modelflag"
	"github.com/bmca/bmca/internal/cli"
	"github.com/bmca/bmca/internal/cli/cliflag"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/weights"
)

func main() { cli.Main("export", run) }

// dtypes maps --dtype values to safetensors dtypes.
var dtypes = map[string]weights.DType{"f32": weights.F32, "bf16": weights.BF16, "f16": weights.F16}

// run is the command: flags in, files out, a summary on stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf modelflag.Flags
	mf.Register(fs)
	var out string
	cliflag.Output(fs, &out, "output `DIR` (created if missing; existing files of the same names are replaced atomically)")
	format := fs.String("format", "openclip", "output layout: `openclip` (open_clip_model.safetensors + open_clip_config.json) or hf (transformers CLIPModel: model.safetensors + config.json)")
	dtype := fs.String("dtype", "", "convert every tensor to `f32, bf16 or f16`; default: keep the checkpoint's dtypes, so exporting a training checkpoint copies it")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: export --checkpoint PATH --output DIR [--format openclip|hf] [--dtype f32|bf16|f16] [--model-config FILE|NAME] [--partial]\n\n"+
			"Writes the model as a checkpoint that OpenCLIP loads with load_state_dict(strict=True)\n"+
			"(or, with --format hf, that transformers' CLIPModel.from_pretrained loads).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if mf.Checkpoint == "" || out == "" || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("--checkpoint and --output are required (and nothing else on the command line: %q)", fs.Args())
	}
	opts := checkpoint.ExportOptions{Format: checkpoint.ExportFormat(*format)}
	if opts.Format != checkpoint.ExportOpenCLIP && opts.Format != checkpoint.ExportHF {
		return fmt.Errorf("--format %q: want openclip or hf", *format)
	}
	if *dtype != "" {
		d, ok := dtypes[strings.ToLower(*dtype)]
		if !ok {
			return fmt.Errorf("--dtype %q: want f32, bf16 or f16", *dtype)
		}
		opts.DType = d
	}
	ck, err := mf.Open(ctx, stderr)
	if err != nil {
		return err
	}
	defer ck.Close()
	modelflag.Warn(stderr, ck)
	files, err := ck.Export(out, opts)
	if err != nil {
		return err
	}
	target := "keeping the checkpoint's dtypes"
	if opts.DType != "" {
		target = "as " + string(opts.DType)
	}
	fmt.Fprintf(stdout, "read %s (%s, config from %s)\nwrote %s layout, %d tensors %s:\n", ck.Path, ck.Format, ck.Model.Source, opts.Format, len(ck.Names()), target)
	for _, f := range files {
		fmt.Fprintf(stdout, "  %s\n", f)
	}
	return nil
}
