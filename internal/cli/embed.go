package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/text/tokenizer"
	"github.com/gomlx/gomlx/ml/model"
)

// DefaultTemplate is cmd/embed's zero-shot prompt when no templates are given.
const DefaultTemplate = "a photo of {c}."

// EmbedInput is one --images/--pixels or --texts/--tokens argument of
// cmd/embed; inputs keep command-line order within each side.
type EmbedInput struct {
	// Tensor marks a ready tensor, FILE.safetensors:NAME (--pixels,
	// --tokens), rather than an image file or a text.
	Tensor bool
	// Value is the image path, the text, or FILE.safetensors:NAME.
	Value string
}

// EmbedArgs are cmd/embed's inputs besides the model.
type EmbedArgs struct {
	// Images are encoded after the model's eval preprocessing; Texts after
	// tokenizing.
	Images, Texts []EmbedInput
	// Classes, when given, are the zero-shot class names; Templates is the
	// file of their prompt templates ("": DefaultTemplate).
	Classes   []string
	Templates string
	// Tokenizer and Vocab choose the tokenizer of texts and prompts (empty:
	// the training run's, else clip-bpe).
	Tokenizer, Vocab string
	// Backend is the GoMLX backend configuration ("": the default).
	Backend string
	// BatchSize is how many images or texts are encoded at once.
	BatchSize int
	// Precision is the arithmetic of the encoders.
	Precision transformer.Precision
}

// EmbedJob is cmd/embed's work on one model, with every input read and
// checked before anything runs, so that a bad path fails fast.
type EmbedJob struct {
	args      EmbedArgs
	cfg       clip.Config
	store     *model.Store
	tok       tokenizer.Tokenizer
	templates []string
	// Pixels are the images, [N,3,S,S] with S the model's image size;
	// Labels name each row for the zero-shot table (its file, or
	// FILE:NAME[i] for ready tensors).
	Pixels []float32
	Labels []string
	// Tokens are the texts' ids, [M, context_length].
	Tokens []int32
}

// NewEmbedJob loads the model's weights from ck and reads the inputs of
// args: images preprocessed as the model was trained (Preprocess), texts
// tokenized, ready tensors checked against the model. A tokenizer that
// must be downloaded shows its progress on progress. ck may be closed
// afterwards.
func NewEmbedJob(ctx context.Context, ck *checkpoint.Checkpoint, args EmbedArgs, progress io.Writer) (*EmbedJob, error) {
	j := &EmbedJob{args: args, cfg: ck.Config()}
	// How the encoders compute: the one runtime setting an embedding has.
	j.cfg.Precision = args.Precision
	var err error
	if j.store, err = ck.NewStore(); err != nil {
		return nil, err
	}
	if j.Pixels, j.Labels, err = readImages(args.Images, ck.Model); err != nil {
		return nil, err
	}
	if hasText(args.Texts) || len(args.Classes) > 0 {
		if j.tok, err = embedTokenizer(ctx, args, ck, j.cfg, progress); err != nil {
			return nil, err
		}
	}
	if j.Tokens, err = readTokens(args.Texts, j.tok, j.cfg); err != nil {
		return nil, err
	}
	if len(args.Classes) > 0 {
		j.templates = []string{DefaultTemplate}
		if args.Templates != "" {
			if j.templates, err = readTemplates(args.Templates); err != nil {
				return nil, err
			}
		}
	}
	return j, nil
}

// Config is the model configuration, with the precision the job encodes in.
func (j *EmbedJob) Config() clip.Config { return j.cfg }

// NumImages is the number of image rows.
func (j *EmbedJob) NumImages() int { return len(j.Labels) }

// NumTexts is the number of token rows.
func (j *EmbedJob) NumTexts() int { return len(j.Tokens) / j.cfg.TextCfg.ContextLength }

// Embeddings are what an EmbedJob computes, float32 and row-major; a part
// whose inputs were not given is nil.
type Embeddings struct {
	// ImageFeatures [N,E] and TextFeatures [M,E] are OpenCLIP's
	// encode_image and encode_text, not normalised.
	ImageFeatures, TextFeatures []float32
	// LogitsPerImage [N,M] is the model's logits_per_image.
	LogitsPerImage []float32
	// ZeroShotProbs [N,C] are each image's probabilities over the classes
	// (softmax of 100 · cosine similarity to the class prompts).
	ZeroShotProbs []float32
}

// Run encodes the inputs on the backend of j's args and, when both images
// and texts were given, takes their logits; with classes it builds
// OpenCLIP's zero-shot classifier and classifies the images.
func (j *EmbedJob) Run(ctx context.Context) (*Embeddings, error) {
	be, err := OpenBackend(j.args.Backend, j.cfg.Precision)
	if err != nil {
		return nil, err
	}
	enc, err := clip.NewEncoder(be, j.store, j.cfg)
	if err != nil {
		return nil, err
	}
	defer enc.Finalize()
	n, m, batch := j.NumImages(), j.NumTexts(), j.args.BatchSize
	s := j.cfg.VisionCfg.ImageSize
	var out Embeddings
	if n > 0 {
		if out.ImageFeatures, err = batched(ctx, n, batch, 3*s*s, j.Pixels, enc.EncodeImages); err != nil {
			return nil, fmt.Errorf("encoding images: %w", err)
		}
	}
	if m > 0 {
		if out.TextFeatures, err = batched(ctx, m, batch, j.cfg.TextCfg.ContextLength, j.Tokens, enc.EncodeTexts); err != nil {
			return nil, fmt.Errorf("encoding texts: %w", err)
		}
	}
	if n > 0 && m > 0 {
		if out.LogitsPerImage, err = enc.LogitsPerImage(out.ImageFeatures, out.TextFeatures, n, m); err != nil {
			return nil, err
		}
	}
	if len(j.args.Classes) > 0 {
		cls, err := tasks.BuildClassifier(ctx, enc, tasks.FromTokenizer(j.tok), j.args.Classes, j.templates, batch)
		if err != nil {
			return nil, err
		}
		if out.ZeroShotProbs, err = cls.Probabilities(out.ImageFeatures, n); err != nil {
			return nil, err
		}
	}
	return &out, nil
}

func hasText(in []EmbedInput) bool {
	for _, x := range in {
		if !x.Tensor {
			return true
		}
	}
	return false
}

// readImages preprocesses --images and reads --pixels, in command-line
// order, and labels each row for the zero-shot table.
func readImages(in []EmbedInput, mc checkpoint.ModelConfig) ([]float32, []string, error) {
	s := mc.VisionCfg.ImageSize
	var pixels []float32
	var labels []string
	var pre preprocess.Config
	for _, x := range in {
		if x.Tensor {
			t, err := readTensor(x.Value)
			if err != nil {
				return nil, nil, fmt.Errorf("--pixels: %w", err)
			}
			if len(t.Shape) != 4 || t.Shape[1] != 3 || t.Shape[2] != s || t.Shape[3] != s {
				return nil, nil, fmt.Errorf("--pixels %s: shape %v, the model takes [N,3,%d,%d]", x.Value, t.Shape, s, s)
			}
			v, err := t.Float32s()
			if err != nil {
				return nil, nil, fmt.Errorf("--pixels %s: %w", x.Value, err)
			}
			pixels = append(pixels, v...)
			for i := range t.Shape[0] {
				labels = append(labels, fmt.Sprintf("%s[%d]", x.Value, i))
			}
			continue
		}
		if pre.ImageSize == 0 {
			var err error
			if pre, err = Preprocess(mc); err != nil {
				return nil, nil, fmt.Errorf("--images: %w (pass --pixels instead)", err)
			}
		}
		data, err := os.ReadFile(x.Value)
		if err != nil {
			return nil, nil, fmt.Errorf("--images: %w", err)
		}
		v, err := pre.Apply(data)
		if err != nil {
			return nil, nil, fmt.Errorf("--images %s: %w", x.Value, err)
		}
		pixels = append(pixels, v...)
		labels = append(labels, x.Value)
	}
	return pixels, labels, nil
}

// readTokens tokenizes --texts and reads --tokens, in command-line order.
func readTokens(in []EmbedInput, tok tokenizer.Tokenizer, cfg clip.Config) ([]int32, error) {
	l := cfg.TextCfg.ContextLength
	vocab := cfg.TextCfg.TokenVocabSize()
	var out []int32
	for _, x := range in {
		if !x.Tensor {
			out = append(out, tok.Encode(x.Value)...)
			continue
		}
		t, err := readTensor(x.Value)
		if err != nil {
			return nil, fmt.Errorf("--tokens: %w", err)
		}
		if len(t.Shape) != 2 || t.Shape[1] != l {
			return nil, fmt.Errorf("--tokens %s: shape %v, the model takes [M,%d]", x.Value, t.Shape, l)
		}
		if t.DType != weights.I64 && t.DType != weights.I32 {
			return nil, fmt.Errorf("--tokens %s: dtype %s, want I64 or I32", x.Value, t.DType)
		}
		ids, err := t.Int64s()
		if err != nil {
			return nil, fmt.Errorf("--tokens %s: %w", x.Value, err)
		}
		for i, id := range ids {
			if id < 0 || id >= int64(vocab) {
				return nil, fmt.Errorf("--tokens %s: row %d position %d: id %d outside the vocabulary [0,%d)", x.Value, i/l, i%l, id, vocab)
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

// embedTokenizer builds the tokenizer (ResolveTokenizer decides): args
// first, then the run config saved with a bmca training checkpoint, then
// the model's own (auto). A vocabulary alone names the vocabulary of the
// model's kind of tokenizer: bert-wordpiece for a Hugging Face text tower.
func embedTokenizer(ctx context.Context, args EmbedArgs, ck *checkpoint.Checkpoint, cfg clip.Config, progress io.Writer) (tokenizer.Tokenizer, error) {
	choice := config.Tokenizer{Name: args.Tokenizer, Vocab: args.Vocab}
	origin := "--tokenizer/--vocab"
	run := runTokenizer(ck)
	switch {
	case choice.Name != "":
	case args.Vocab != "" && cfg.TextCfg.IsHF():
		choice.Name = tokenizer.NameBERTWordPiece
	case run.Name != "":
		choice.Name, origin = run.Name, "the checkpoint's run config"
	}
	if choice.Vocab == "" && choice.Name == run.Name {
		choice.Vocab = run.Vocab
	}
	tok, err := ResolveTokenizer(ctx, TokenizerRequest{Choice: choice, Origin: origin, Model: cfg, CheckpointDir: ck.Dir,
		Flags: TokenizerFlags{Name: "--tokenizer ", Vocab: "--vocab "}, Progress: progress})
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
