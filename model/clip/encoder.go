package clip

import (
	"fmt"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/support/exceptions"
)

// Encoder runs the two towers for inference. Graphs are compiled once per
// batch size and cached. An Encoder is not safe for concurrent use.
type Encoder struct {
	cfg        Config
	backend    compute.Backend
	store      *model.Store
	imageExec  *model.Exec
	textExec   *model.Exec
	logitsExec *model.Exec // compiled at the first LogitsPerImage
}

// NewEncoder prepares inference over the model held in store, in the
// precision c.Runtime names. Gradient checkpointing does not apply: an
// encoder has no backward pass, and its checkpoints would only keep the
// backend from fusing across blocks.
func NewEncoder(backend compute.Backend, store *model.Store, c Config) (*Encoder, error) {
	c.GradCheckpointing = false
	e := &Encoder{cfg: c, backend: backend, store: store}
	err := exceptions.TryCatch[error](func() {
		e.imageExec = model.MustNewExec(backend, store, func(scope *model.Scope, pixels *Node) *Node {
			return EncodeImage(scope, c, pixels)
		})
		e.textExec = model.MustNewExec(backend, store, func(scope *model.Scope, tokens *Node) *Node {
			return EncodeText(scope, c, tokens)
		})
	})
	if err != nil {
		return nil, fmt.Errorf("clip encoder: %w", err)
	}
	return e, nil
}

// Config is the model configuration the encoder runs.
func (e *Encoder) Config() Config { return e.cfg }

// EncodeImages maps n preprocessed images (row-major [n,3,S,S]) to features
// [n, embed_dim], not normalised (OpenCLIP's encode_image).
func (e *Encoder) EncodeImages(pixels []float32, n int) ([]float32, error) {
	s := e.cfg.VisionCfg.ImageSize
	if len(pixels) != n*3*s*s {
		return nil, fmt.Errorf("encode images: got %d values, want %d images × 3×%d×%d", len(pixels), n, s, s)
	}
	return e.run(e.imageExec, tensors.FromFlatDataAndDimensions(pixels, n, 3, s, s))
}

// EncodeTexts maps n token rows (row-major [n, context_length]) to features
// [n, embed_dim], not normalised (OpenCLIP's encode_text).
func (e *Encoder) EncodeTexts(tokens []int32, n int) ([]float32, error) {
	l := e.cfg.TextCfg.ContextLength
	if len(tokens) != n*l {
		return nil, fmt.Errorf("encode texts: got %d ids, want %d rows × %d", len(tokens), n, l)
	}
	vocab := e.cfg.TextCfg.TokenVocabSize()
	for i, id := range tokens {
		if id < 0 || int(id) >= vocab {
			return nil, fmt.Errorf("encode texts: row %d position %d: token id %d outside the vocabulary [0,%d)", i/l, i%l, id, vocab)
		}
	}
	return e.run(e.textExec, tensors.FromFlatDataAndDimensions(tokens, n, l))
}

// LogitsPerImage is OpenCLIP's logits_per_image for n image and m text
// feature rows as EncodeImages and EncodeTexts return them: exp(logit_scale)
// times their cosine similarities (Logits), [n, m].
func (e *Encoder) LogitsPerImage(img, txt []float32, n, m int) ([]float32, error) {
	d := e.cfg.EmbedDim
	if len(img) != n*d || len(txt) != m*d {
		return nil, fmt.Errorf("logits: got %d image and %d text values, want %d×%d and %d×%d", len(img), len(txt), n, d, m, d)
	}
	if e.logitsExec == nil {
		exec, err := model.NewExec(e.backend, e.store, func(scope *model.Scope, img, txt *Node) *Node {
			return Logits(scope, img, txt)
		})
		if err != nil {
			return nil, fmt.Errorf("logits: %w", err)
		}
		e.logitsExec = exec
	}
	logits, err := e.run(e.logitsExec, tensors.FromFlatDataAndDimensions(img, n, d), tensors.FromFlatDataAndDimensions(txt, m, d))
	if err != nil {
		return nil, fmt.Errorf("logits: %w", err)
	}
	return logits, nil
}

func (e *Encoder) run(exec *model.Exec, inputs ...any) ([]float32, error) {
	outputs, err := exec.Call(inputs...)
	if err != nil {
		return nil, err
	}
	defer outputs[0].FinalizeAll()
	return tensors.CopyFlatData[float32](outputs[0])
}

// Finalize releases the compiled graphs.
func (e *Encoder) Finalize() {
	e.imageExec.Finalize()
	e.textExec.Finalize()
	if e.logitsExec != nil {
		e.logitsExec.Finalize()
	}
}
