// Command embed runs a CLIP model on images and texts and writes what
// OpenCLIP's encode_image and encode_text return (features before
// normalisation) and logits_per_image, as float32 safetensors; with
// --classes it prints zero-shot class probabilities per image instead of,
// or besides, writing them.
//
//	go run ./cmd/embed --checkpoint runs/demo --images a.png b.jpg --texts "a chest x-ray" "an MRI" --output feats.safetensors
//	go run ./cmd/embed --checkpoint bmc-clip/ --pixels cases.safetensors:pixels --tokens cases.safetensors:tokens --output feats.safetensors
//	go run ./cmd/embed --checkpoint bmc-clip/ --vocab bpe_simple_vocab_16e6.txt.gz --images x.png --classes "tuberculosis,normal"
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/bmca/bmca/cmd/internal/modelflag"
	"github.com/bmca/bmca/internal/cli"
	"github.com/bmca/bmca/internal/cli/cliflag"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/weights"
)

func main() { cli.Main("embed", run) }

// inputFlag appends to a shared, ordered input list: --images and --pixels
// to the images, --texts and --tokens to the texts.
type inputFlag struct {
	list   *[]cli.EmbedInput
	tensor bool
}

func (f inputFlag) String() string { return "" }
func (f inputFlag) Set(v string) error {
	*f.list = append(*f.list, cli.EmbedInput{Tensor: f.tensor, Value: v})
	return nil
}

// expandLists lets list flags take several values, as in
// "--images a.png b.png --texts 'x' 'y'": arguments after one of them that
// do not start with "-" are given to it one by one.
func expandLists(args []string, lists ...string) []string {
	var out []string
	current := ""
	for _, a := range args {
		if strings.HasPrefix(a, "-") && a != "-" {
			current = ""
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			for _, l := range lists {
				if name == l {
					current = l
				}
			}
			out = append(out, a)
			continue
		}
		if current != "" && len(out) > 0 && out[len(out)-1] != "--"+current && out[len(out)-1] != "-"+current {
			out = append(out, "--"+current)
		}
		out = append(out, a)
	}
	return out
}

type options struct {
	model         modelflag.Flags
	images, texts []cli.EmbedInput
	dumpPixels    string
	out           string
	classes       string
	templates     string
	tokenizer     string
	vocab         string
	backend       string
	batch         int
	precision     transformer.Precision
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("embed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.model.Register(fs)
	fs.Var(inputFlag{&o.images, false}, "images", "image `FILE`s (JPEG, PNG, WebP) to encode after the model's eval preprocessing; several may follow one flag; repeatable")
	fs.Var(inputFlag{&o.images, true}, "pixels", "ready image tensor `F.safetensors:NAME`, float [N,3,H,W] (H = W = the model's image_size); rows join --images in command-line order")
	fs.Var(inputFlag{&o.texts, false}, "texts", "`TEXT`s to tokenize and encode; several may follow one flag; repeatable")
	fs.Var(inputFlag{&o.texts, true}, "tokens", "ready token ids `F.safetensors:NAME`, int64 or int32 [M,L] (L = the model's context_length); rows join --texts in command-line order")
	cliflag.Output(fs, &o.out, "output `FILE` (.safetensors): image_features [N,E], text_features [M,E] (not normalised) and logits_per_image [N,M], float32; with --classes also zero_shot_probs [N,C]")
	fs.StringVar(&o.dumpPixels, "dump-pixels", "", "also write the preprocessed images as tensor \"pixels\" [N,3,H,W] to `FILE` (.safetensors)")
	fs.StringVar(&o.classes, "classes", "", "zero-shot mode: comma-separated class `NAMES`; prints each image's class probabilities (softmax of 100 · cosine similarity to the class prompts)")
	fs.StringVar(&o.templates, "templates", "", "zero-shot prompt templates `FILE`: one per line, or a JSON list, with {c} (or {}) for the class name; default \""+cli.DefaultTemplate+"\"")
	fs.StringVar(&o.tokenizer, "tokenizer", "", "tokenizer `NAME` for --texts and --classes (clip-bpe, bert-wordpiece, byte-level or auto); default: the training run's, else auto, the model's own: bert-wordpiece over text_cfg.hf_tokenizer_name for a Hugging Face text tower (a tokenizer/ folder next to the checkpoint, else the Hugging Face cache, downloaded if missing), clip-bpe over --vocab otherwise")
	fs.StringVar(&o.vocab, "vocab", "", "vocabulary `FILE`: for clip-bpe OpenCLIP's bpe_simple_vocab_16e6.txt.gz; for a Hugging Face text tower (bert-wordpiece) a BERT vocab.txt, the tokenizer folder holding it, or hf-hub:ORG/NAME; default: the training run's")
	cliflag.Backend(fs, &o.backend)
	cliflag.BatchSize(fs, &o.batch, 32, "images or texts encoded at once (`N`)")
	cliflag.Precision(fs, &o.precision)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: embed --checkpoint PATH [--model-config FILE] [--images FILE ...] [--texts TEXT ...]\n"+
			"             [--pixels F.safetensors:NAME] [--tokens F.safetensors:NAME] [--dump-pixels FILE]\n"+
			"             (--output OUT.safetensors | --classes \"a,b,c\" [--templates FILE])\n\n"+
			"Encodes images and texts with a CLIP model as OpenCLIP's encode_image/encode_text do.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(expandLists(args, "images", "texts")); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q (inputs go after --images or --texts)", fs.Arg(0))
	case len(o.images)+len(o.texts) == 0:
		fs.Usage()
		return errors.New("nothing to encode: give --images, --pixels, --texts or --tokens")
	case o.out == "" && o.classes == "":
		return errors.New("--output is required (or --classes for a zero-shot table)")
	case o.classes != "" && len(o.images) == 0:
		return errors.New("--classes needs images (--images or --pixels)")
	case o.batch < 1:
		return fmt.Errorf("--batch-size %d: must be positive", o.batch)
	}
	var classes []string
	if o.classes != "" {
		for _, c := range strings.Split(o.classes, ",") {
			if c = strings.TrimSpace(c); c != "" {
				classes = append(classes, c)
			}
		}
		if len(classes) < 2 {
			return fmt.Errorf("--classes %q: need at least two class names", o.classes)
		}
	}
	return embed(ctx, o, classes, stdout, stderr)
}

// embed opens the model, reads the inputs (all before the model runs, so
// a bad path fails fast), encodes them and writes what was asked for.
func embed(ctx context.Context, o options, classes []string, stdout, stderr io.Writer) error {
	ck, err := o.model.Open(ctx, stderr)
	if err != nil {
		return err
	}
	modelflag.Warn(stderr, ck)
	job, err := cli.NewEmbedJob(ctx, ck, cli.EmbedArgs{Images: o.images, Texts: o.texts, Classes: classes, Templates: o.templates,
		Tokenizer: o.tokenizer, Vocab: o.vocab, Backend: o.backend, BatchSize: o.batch, Precision: o.precision}, stderr)
	ck.Close()
	if err != nil {
		return err
	}
	cfg := job.Config()
	n, m, e, s := job.NumImages(), job.NumTexts(), cfg.EmbedDim, cfg.VisionCfg.ImageSize
	if o.dumpPixels != "" {
		sd := weights.StateDict{"pixels": weights.FromFloat32s([]int{n, 3, s, s}, job.Pixels)}
		if err := weights.WriteFile(o.dumpPixels, sd, map[string]string{"format": "pt"}); err != nil {
			return err
		}
	}
	res, err := job.Run(ctx)
	if err != nil {
		return err
	}
	out := weights.StateDict{}
	if n > 0 {
		out["image_features"] = weights.FromFloat32s([]int{n, e}, res.ImageFeatures)
	}
	if m > 0 {
		out["text_features"] = weights.FromFloat32s([]int{m, e}, res.TextFeatures)
	}
	if res.LogitsPerImage != nil {
		out["logits_per_image"] = weights.FromFloat32s([]int{n, m}, res.LogitsPerImage)
	}
	if res.ZeroShotProbs != nil {
		printTable(stdout, job.Labels, classes, res.ZeroShotProbs)
		out["zero_shot_probs"] = weights.FromFloat32s([]int{n, len(classes)}, res.ZeroShotProbs)
	}
	if o.out != "" {
		if err := weights.WriteFile(o.out, out, map[string]string{"format": "pt"}); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s: %d images, %d texts, embed_dim %d\n", o.out, n, m, e)
	}
	return nil
}

// printTable writes one row per image: its probabilities and the top class.
func printTable(w io.Writer, labels, classes []string, probs []float32) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "image\t")
	for _, c := range classes {
		fmt.Fprintf(tw, "%s\t", c)
	}
	fmt.Fprint(tw, "top\t\n")
	for i, l := range labels {
		fmt.Fprintf(tw, "%s\t", l)
		best := 0
		for k := range classes {
			p := probs[i*len(classes)+k]
			if p > probs[i*len(classes)+best] {
				best = k
			}
			fmt.Fprintf(tw, "%.4f\t", p)
		}
		fmt.Fprintf(tw, "%s\t\n", classes[best])
	}
	tw.Flush()
}
