// Command embed runs a CLIP model on images and texts and writes what
// OpenCLIP's encode_image and encode_text return (features before
// normalisation) and logits_per_image, as float32 safetensors; with
// --classes it prints zero-shot class probabilities per image instead of,
// or besides, writing them.
//
//	go run ./cmd/embed --checkpoint runs/demo --images a.png b.jpg --texts "a chest x-ray" "an MRI" --out feats.safetensors
//	go run ./cmd/embed --checkpoint bmc-clip/ --pixels cases.safetensors:pixels --tokens cases.safetensors:tokens --out feats.safetensors
//	go run ./cmd/embed --checkpoint bmc-clip/ --vocab bpe_simple_vocab_16e6.txt.gz --images x.png --classes "tuberculosis,normal"
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/bmca/bmca/cmd/internal/modelflag"
	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/internal/cli"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/text/tokenizer"
	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		cli.Fatal("embed", err)
	}
}

// DefaultTemplate is the zero-shot prompt when --templates is not given.
const DefaultTemplate = "a photo of {c}."

// input is one --images/--pixels or --texts/--tokens argument; inputs keep
// command-line order within each side.
type input struct {
	tensor bool   // --pixels or --tokens: FILE.safetensors:NAME
	value  string // a path, a text, or FILE:NAME
}

// inputFlag appends to a shared, ordered input list.
type inputFlag struct {
	list   *[]input
	tensor bool
}

func (f inputFlag) String() string { return "" }
func (f inputFlag) Set(v string) error {
	*f.list = append(*f.list, input{tensor: f.tensor, value: v})
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
	images, texts []input
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
	fs.StringVar(&o.out, "out", "", "output `FILE` (.safetensors): image_features [N,E], text_features [M,E] (not normalised) and logits_per_image [N,M], float32; with --classes also zero_shot_probs [N,C]")
	fs.StringVar(&o.dumpPixels, "dump-pixels", "", "also write the preprocessed images as tensor \"pixels\" [N,3,H,W] to `FILE` (.safetensors)")
	fs.StringVar(&o.classes, "classes", "", "zero-shot mode: comma-separated class `NAMES`; prints each image's class probabilities (softmax of 100 · cosine similarity to the class prompts)")
	fs.StringVar(&o.templates, "templates", "", "zero-shot prompt templates `FILE`: one per line, or a JSON list, with {c} (or {}) for the class name; default \""+DefaultTemplate+"\"")
	fs.StringVar(&o.tokenizer, "tokenizer", "", "tokenizer `NAME` for --texts and --classes (clip-bpe, bert-wordpiece, byte-level or auto); default: the training run's, else auto, the model's own: bert-wordpiece over text_cfg.hf_tokenizer_name for a Hugging Face text tower (a tokenizer/ folder next to the checkpoint, else the Hugging Face cache, downloaded if missing), clip-bpe over --vocab otherwise")
	fs.StringVar(&o.vocab, "vocab", "", "vocabulary `FILE`: for clip-bpe OpenCLIP's bpe_simple_vocab_16e6.txt.gz; for a Hugging Face text tower (bert-wordpiece) a BERT vocab.txt, the tokenizer folder holding it, or hf-hub:ORG/NAME; default: the training run's")
	fs.StringVar(&o.backend, "backend", "", "GoMLX `BACKEND` (default $GOMLX_BACKEND, else the pure-Go CPU backend)")
	fs.IntVar(&o.batch, "batch-size", 32, "images or texts encoded at once (`N`)")
	fs.Var(&o.precision, "precision", cli.PrecisionUsage)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: embed --checkpoint PATH [--model-config FILE] [--images FILE ...] [--texts TEXT ...]\n"+
			"             [--pixels F.safetensors:NAME] [--tokens F.safetensors:NAME] [--dump-pixels FILE]\n"+
			"             (--out OUT.safetensors | --classes \"a,b,c\" [--templates FILE])\n\n"+
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
		return errors.New("--out is required (or --classes for a zero-shot table)")
	case o.classes != "" && len(o.images) == 0:
		return errors.New("--classes needs images (--images or --pixels)")
	case o.batch < 1:
		return fmt.Errorf("--batch-size %d: must be positive", o.batch)
	}
	return embed(ctx, o, stdout, stderr)
}

func embed(ctx context.Context, o options, stdout, stderr io.Writer) error {
	ck, err := o.model.Open(ctx, stderr)
	if err != nil {
		return err
	}
	modelflag.Warn(stderr, ck)
	cfg := ck.Config()
	store, err := ck.NewStore()
	ck.Close()
	if err != nil {
		return err
	}
	// Inputs are all read before the model runs, so a bad path fails fast.
	pixels, labels, err := readImages(o.images, ck.Model)
	if err != nil {
		return err
	}
	var tok tokenizer.Tokenizer
	if hasText(o.texts) || o.classes != "" {
		if tok, err = newTokenizer(ctx, o, ck, cfg, stderr); err != nil {
			return err
		}
	}
	tokens, err := readTokens(o.texts, tok, cfg)
	if err != nil {
		return err
	}
	n, m := len(labels), len(tokens)/cfg.TextCfg.ContextLength
	s := cfg.VisionCfg.ImageSize
	if o.dumpPixels != "" {
		sd := weights.StateDict{"pixels": weights.FromFloat32s([]int{n, 3, s, s}, pixels)}
		if err := weights.WriteFile(o.dumpPixels, sd, map[string]string{"format": "pt"}); err != nil {
			return err
		}
	}

	be, err := cli.OpenBackend(o.backend, o.precision)
	if err != nil {
		return err
	}
	cfg.Precision = o.precision
	enc, err := clip.NewEncoder(be, store, cfg)
	if err != nil {
		return err
	}
	defer enc.Finalize()
	out := weights.StateDict{}
	var imgFeat, txtFeat []float32
	e := cfg.EmbedDim
	if n > 0 {
		if imgFeat, err = batched(ctx, n, o.batch, 3*s*s, pixels, enc.EncodeImages); err != nil {
			return fmt.Errorf("encoding images: %w", err)
		}
		out["image_features"] = weights.FromFloat32s([]int{n, e}, imgFeat)
	}
	if m > 0 {
		if txtFeat, err = batched(ctx, m, o.batch, cfg.TextCfg.ContextLength, tokens, enc.EncodeTexts); err != nil {
			return fmt.Errorf("encoding texts: %w", err)
		}
		out["text_features"] = weights.FromFloat32s([]int{m, e}, txtFeat)
	}
	if n > 0 && m > 0 {
		logits, err := logitsPerImage(be, store, imgFeat, txtFeat, n, m, e)
		if err != nil {
			return err
		}
		out["logits_per_image"] = weights.FromFloat32s([]int{n, m}, logits)
	}
	if o.classes != "" {
		probs, classes, err := zeroShot(ctx, o, enc, tok, imgFeat, n)
		if err != nil {
			return err
		}
		printTable(stdout, labels, classes, probs)
		out["zero_shot_probs"] = weights.FromFloat32s([]int{n, len(classes)}, probs)
	}
	if o.out != "" {
		if err := weights.WriteFile(o.out, out, map[string]string{"format": "pt"}); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s: %d images, %d texts, embed_dim %d\n", o.out, n, m, e)
	}
	return nil
}

func hasText(in []input) bool {
	for _, x := range in {
		if !x.tensor {
			return true
		}
	}
	return false
}

// readImages preprocesses --images and reads --pixels, in command-line
// order, and labels each row for the zero-shot table.
func readImages(in []input, mc checkpoint.ModelConfig) ([]float32, []string, error) {
	s := mc.VisionCfg.ImageSize
	var pixels []float32
	var labels []string
	var pre preprocess.Config
	for _, x := range in {
		if x.tensor {
			t, err := readTensor(x.value)
			if err != nil {
				return nil, nil, fmt.Errorf("--pixels: %w", err)
			}
			if len(t.Shape) != 4 || t.Shape[1] != 3 || t.Shape[2] != s || t.Shape[3] != s {
				return nil, nil, fmt.Errorf("--pixels %s: shape %v, the model takes [N,3,%d,%d]", x.value, t.Shape, s, s)
			}
			v, err := t.Float32s()
			if err != nil {
				return nil, nil, fmt.Errorf("--pixels %s: %w", x.value, err)
			}
			pixels = append(pixels, v...)
			for i := range t.Shape[0] {
				labels = append(labels, fmt.Sprintf("%s[%d]", x.value, i))
			}
			continue
		}
		if pre.ImageSize == 0 {
			var err error
			if pre, err = cli.Preprocess(mc); err != nil {
				return nil, nil, fmt.Errorf("--images: %w (pass --pixels instead)", err)
			}
		}
		data, err := os.ReadFile(x.value)
		if err != nil {
			return nil, nil, fmt.Errorf("--images: %w", err)
		}
		v, err := pre.Apply(data)
		if err != nil {
			return nil, nil, fmt.Errorf("--images %s: %w", x.value, err)
		}
		pixels = append(pixels, v...)
		labels = append(labels, x.value)
	}
	return pixels, labels, nil
}

// readTokens tokenizes --texts and reads --tokens, in command-line order.
func readTokens(in []input, tok tokenizer.Tokenizer, cfg clip.Config) ([]int32, error) {
	l := cfg.TextCfg.ContextLength
	var out []int32
	for _, x := range in {
		if !x.tensor {
			out = append(out, tok.Encode(x.value)...)
			continue
		}
		t, err := readTensor(x.value)
		if err != nil {
			return nil, fmt.Errorf("--tokens: %w", err)
		}
		if len(t.Shape) != 2 || t.Shape[1] != l {
			return nil, fmt.Errorf("--tokens %s: shape %v, the model takes [M,%d]", x.value, t.Shape, l)
		}
		if t.DType != weights.I64 && t.DType != weights.I32 {
			return nil, fmt.Errorf("--tokens %s: dtype %s, want I64 or I32", x.value, t.DType)
		}
		ids, err := t.Int64s()
		if err != nil {
			return nil, fmt.Errorf("--tokens %s: %w", x.value, err)
		}
		for i, id := range ids {
			if id < 0 || id >= int64(cfg.TextCfg.TokenVocabSize()) {
				return nil, fmt.Errorf("--tokens %s: row %d position %d: id %d outside the vocabulary [0,%d)", x.value, i/l, i%l, id, cfg.TextCfg.TokenVocabSize())
			}
			out = append(out, int32(id))
		}
	}
	return out, nil
}

// readTensor reads NAME from FILE for a "FILE:NAME" argument (the last
// colon splits, so Windows drive letters survive).
func readTensor(spec string) (weights.Tensor, error) {
	i := strings.LastIndex(spec, ":")
	if i <= 0 || i == len(spec)-1 {
		return weights.Tensor{}, fmt.Errorf("%q: want FILE.safetensors:NAME", spec)
	}
	f, err := weights.Open(spec[:i])
	if err != nil {
		return weights.Tensor{}, err
	}
	defer f.Close()
	t, err := f.Tensor(spec[i+1:])
	if errors.Is(err, weights.ErrNotFound) {
		return weights.Tensor{}, fmt.Errorf("%s has no tensor %q (it has %s)", spec[:i], spec[i+1:], strings.Join(f.Names(), ", "))
	}
	return t, err
}

// newTokenizer builds the tokenizer (cli.ResolveTokenizer decides): the
// flags first, then the run config saved with a bmca training checkpoint,
// then the model's own (auto). --vocab alone names the vocabulary of the
// model's kind of tokenizer: bert-wordpiece for a Hugging Face text tower.
func newTokenizer(ctx context.Context, o options, ck *checkpoint.Checkpoint, cfg clip.Config, progress io.Writer) (tokenizer.Tokenizer, error) {
	choice := config.Tokenizer{Name: o.tokenizer, Vocab: o.vocab}
	origin := "--tokenizer/--vocab"
	run := runTokenizer(ck)
	switch {
	case choice.Name != "":
	case o.vocab != "" && cfg.TextCfg.IsHF():
		choice.Name = tokenizer.NameBERTWordPiece
	case run.Name != "":
		choice.Name, origin = run.Name, "the checkpoint's run config"
	}
	if choice.Vocab == "" && choice.Name == run.Name {
		choice.Vocab = run.Vocab
	}
	tok, err := cli.ResolveTokenizer(ctx, cli.TokenizerRequest{Choice: choice, Origin: origin, Model: cfg, CheckpointDir: ck.Dir,
		Flags: cli.TokenizerFlags{Name: "--tokenizer ", Vocab: "--vocab "}, Progress: progress})
	if err != nil {
		return nil, fmt.Errorf("tokenizer for --texts/--classes: %w", err)
	}
	return tok.Tokenizer, nil
}

// runTokenizer is the tokenizer section of the run config a bmca training
// checkpoint stores, or the zero value.
func runTokenizer(ck *checkpoint.Checkpoint) config.Tokenizer {
	if ck.Training == nil || len(ck.Training.RunConfig) == 0 {
		return config.Tokenizer{}
	}
	rc, err := config.ParseRun(ck.Training.RunConfig, ck.Dir, nil)
	if err != nil {
		return config.Tokenizer{}
	}
	return rc.Tokenizer
}

// batched runs encode over n rows of rowLen values, batch rows at a time.
func batched[T any](ctx context.Context, n, batch, rowLen int, rows []T, encode func([]T, int) ([]float32, error)) ([]float32, error) {
	var out []float32
	for start := 0; start < n; start += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		end := min(start+batch, n)
		f, err := encode(rows[start*rowLen:end*rowLen], end-start)
		if err != nil {
			return nil, err
		}
		out = append(out, f...)
	}
	return out, nil
}

// logitsPerImage is clip.Logits (exp(logit_scale) · cosine similarity) on
// the whole feature sets.
func logitsPerImage(be compute.Backend, store *model.Store, img, txt []float32, n, m, e int) ([]float32, error) {
	exec, err := model.NewExec(be, store, func(scope *model.Scope, a, b *Node) *Node {
		return clip.Logits(scope, a, b)
	})
	if err != nil {
		return nil, err
	}
	defer exec.Finalize()
	outs, err := exec.Call(tensors.FromFlatDataAndDimensions(img, n, e), tensors.FromFlatDataAndDimensions(txt, m, e))
	if err != nil {
		return nil, fmt.Errorf("logits: %w", err)
	}
	defer outs[0].FinalizeAll()
	return tensors.CopyFlatData[float32](outs[0])
}

// zeroShot builds OpenCLIP's zero-shot classifier for --classes and returns
// softmax(100 · normalize(img) · W) per image.
func zeroShot(ctx context.Context, o options, enc *clip.Encoder, tok tokenizer.Tokenizer, img []float32, n int) ([]float32, []string, error) {
	var classes []string
	for _, c := range strings.Split(o.classes, ",") {
		if c = strings.TrimSpace(c); c != "" {
			classes = append(classes, c)
		}
	}
	if len(classes) < 2 {
		return nil, nil, fmt.Errorf("--classes %q: need at least two class names", o.classes)
	}
	templates := []string{DefaultTemplate}
	if o.templates != "" {
		var err error
		if templates, err = readTemplates(o.templates); err != nil {
			return nil, nil, err
		}
	}
	cls, err := tasks.BuildClassifier(ctx, enc, tasks.FromTokenizer(tok), classes, templates, o.batch)
	if err != nil {
		return nil, nil, err
	}
	logits, err := cls.Logits(img, n)
	if err != nil {
		return nil, nil, err
	}
	c := len(classes)
	probs := make([]float32, len(logits))
	for i := range n {
		row := logits[i*c : (i+1)*c]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = max(mx, float64(v))
		}
		z := 0.0
		for _, v := range row {
			z += math.Exp(float64(v) - mx)
		}
		for k, v := range row {
			probs[i*c+k] = float32(math.Exp(float64(v)-mx) / z)
		}
	}
	return probs, classes, nil
}

// readTemplates reads a JSON list of templates, or one per line (blank
// lines and lines starting with # skipped).
func readTemplates(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--templates: %w", err)
	}
	var out []string
	if trimmed := strings.TrimSpace(string(data)); strings.HasPrefix(trimmed, "[") {
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, fmt.Errorf("--templates %s: %w", path, err)
		}
	} else {
		for _, line := range strings.Split(string(data), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				out = append(out, line)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--templates %s: no templates", path)
	}
	return out, nil
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
