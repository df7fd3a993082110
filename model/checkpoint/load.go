package checkpoint

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/model/weights/hf"
)

// Options change how Open reads a checkpoint.
type Options struct {
	// ModelConfig, when set, is the model to load into; otherwise the
	// config next to the weights is used.
	ModelConfig *ModelConfig
	// HFConfigs, when the config is read next to the weights and its text
	// tower is a Hugging Face model, supplies that model's config.json
	// (clip.ParseConfigJSONWith); nil uses only what the file carries and
	// the built-in configurations.
	HFConfigs clip.HFConfigSource
	// Partial accepts missing tensors (they keep a seeded initialisation,
	// see InitSeed) and unexpected ones (ignored), as
	// load_state_dict(strict=False) does. Mis-shaped tensors are errors
	// either way.
	Partial bool
}

// InitSeed seeds the initialisation of tensors a partial load does not find.
const InitSeed = 0

// IgnoredOpenCLIP are entries of OpenCLIP-named state dicts that are not
// parameters of the model: OpenAI's scripted models keep their input
// resolution, context length and vocabulary size as tensors, and old code
// saved the text tower's causal mask.
var IgnoredOpenCLIP = []string{"input_resolution", "context_length", "vocab_size", "attn_mask",
	// transformers before 4.31 saved BERT's position ids buffer; OpenCLIP's
	// load_checkpoint deletes it.
	"text.transformer.embeddings.position_ids"}

// Checkpoint is an open checkpoint mapped onto a model config: every
// tensor of the model (clip.Params) can be read by its OpenCLIP name.
// Close it when done.
type Checkpoint struct {
	// Path is the weights file (the index for sharded checkpoints).
	Path string
	// Dir is the directory holding it: for a bmca run, the checkpoint
	// directory its latest file named.
	Dir string
	// Training is the state a bmca training run saved with the checkpoint
	// (step, data position, seed, run config); nil for any other
	// checkpoint. Optimizer reads its AdamW moments.
	Training *TrainingState
	// Format is what the file was detected to be.
	Format Format
	// Model is the configuration the weights were checked against.
	Model ModelConfig
	// Missing and Unexpected list, in the checkpoint's own names, what a
	// partial load (Options.Partial) skipped; both are empty otherwise.
	Missing, Unexpected []string

	src   source
	raw   map[string]string // stripped name → name in the file
	rules map[string]hf.Rule
	order []string // model parameters, OpenCLIP names, in clip.Params order
}

// MismatchError is a checkpoint that does not fit the model config. Names
// are the checkpoint's own (stripped of any module. prefix).
type MismatchError struct {
	Path   string
	Format Format
	// Config names where the model config came from.
	Config     string
	Missing    []string
	Unexpected []string
	// Mismatched describes tensors present with a wrong shape or dtype.
	Mismatched []string
}

// Error lists every problem, one kind per line, like PyTorch's
// load_state_dict.
func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "checkpoint %s (%s) does not match the model config (%s): %d missing, %d unexpected, %d mis-shaped tensors",
		e.Path, e.Format, e.Config, len(e.Missing), len(e.Unexpected), len(e.Mismatched))
	for _, part := range []struct {
		label string
		names []string
	}{{"missing", e.Missing}, {"unexpected", e.Unexpected}, {"size or dtype mismatch", e.Mismatched}} {
		if len(part.names) > 0 {
			fmt.Fprintf(&b, "\n  %s (%d): %s", part.label, len(part.names), strings.Join(part.names, ", "))
		}
	}
	return b.String()
}

// Open opens a checkpoint for every command (through cli.OpenCheckpoint,
// which first turns a hub reference into its downloaded directory): a bmca
// run directory (its latest checkpoint) or checkpoint directory, an
// OpenCLIP or transformers directory (one of WeightFiles), or a weights
// file. Open detects the format, finds the
// model config and its preprocessing (Model), reads a bmca run's
// training state (Training), and checks that every tensor is there with
// the right shape, reading no tensor data: tensors are read one at a time
// later (NewStore, StateDict, Export).
func Open(path string, opts Options) (*Checkpoint, error) {
	path, err := localPath(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if dir, ok, err := ResolveRun(path); err != nil {
		return nil, err
	} else if ok {
		path = dir
	}
	file, err := resolveWeights(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	src, container, err := openSource(file)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var mc ModelConfig
	if opts.ModelConfig != nil {
		mc = *opts.ModelConfig
	} else if mc, err = findConfig(filepath.Dir(file), opts.HFConfigs); err != nil {
		src.close()
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := mc.Validate(); err != nil {
		src.close()
		return nil, fmt.Errorf("checkpoint %s: model config %s: %w", path, mc.Source, err)
	}
	c := &Checkpoint{Path: file, Dir: filepath.Dir(file), Model: mc, src: src}
	if err := c.plan(container, opts.Partial); err != nil {
		src.close()
		return nil, err
	}
	if c.Training, err = readTraining(c.Dir); err != nil {
		src.close()
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return c, nil
}

// Files lists the files the tensors are read from: Path, or for a
// sharded checkpoint every shard its index names.
func (c *Checkpoint) Files() []string {
	if s, ok := c.src.(*shardedSource); ok {
		return slices.Clone(s.paths)
	}
	return []string{c.Path}
}

// Close releases the files.
func (c *Checkpoint) Close() error { return c.src.close() }

// Config is the model configuration.
func (c *Checkpoint) Config() clip.Config { return c.Model.Config }

// plan strips wrapper prefixes, detects the layout and maps every model
// parameter to the tensors it is read from, collecting all mismatches.
func (c *Checkpoint) plan(container Container, partial bool) error {
	names := c.src.names()
	c.raw = make(map[string]string, len(names))
	prefix := commonPrefix(names, "module.", "_orig_mod.")
	layout := OpenCLIP
	for _, n := range names {
		stripped := strings.TrimPrefix(n, prefix)
		c.raw[stripped] = n
		if hf.IsHFName(stripped) {
			layout = HF
		}
	}
	c.Format = Format{Container: container, Layout: layout}
	ignored := IgnoredOpenCLIP
	if layout == HF {
		ignored = hf.Ignored
	}

	mm := &MismatchError{Path: c.Path, Format: c.Format, Config: c.Model.Source}
	used := map[string]bool{}
	c.rules = map[string]hf.Rule{}
	for _, p := range clip.Params(c.Model.Config) {
		c.order = append(c.order, p.Name)
		rule := hf.Rule{OpenCLIP: p.Name, Sources: []string{p.Name}, Op: hf.Copy}
		if layout == HF {
			var err error
			if rule, err = hf.RuleFor(p.Name); err != nil {
				return fmt.Errorf("checkpoint %s: %w", c.Path, err)
			}
		}
		var shapes [][]int
		var absent []string
		for _, s := range rule.Sources {
			raw, ok := c.raw[s]
			if !ok {
				absent = append(absent, s)
				continue
			}
			used[s] = true
			dtype, shape := c.src.info(raw)
			if !isFloat(dtype) {
				mm.Mismatched = append(mm.Mismatched, fmt.Sprintf("%s: dtype %s, a floating-point tensor is needed", s, dtypeName(dtype)))
			}
			shapes = append(shapes, shape)
		}
		if len(absent) > 0 {
			mm.Missing = append(mm.Missing, absent...)
			continue
		}
		shape, err := rule.Shape(shapes)
		if err == nil && p.Name == clip.LogitScaleName && slices.Equal(shape, []int{1}) {
			shape = nil // OpenCLIP reshapes a [1] logit_scale to the 0-d parameter
		}
		switch {
		case err != nil:
			mm.Mismatched = append(mm.Mismatched, err.Error())
		case !slices.Equal(shape, p.Shape):
			mm.Mismatched = append(mm.Mismatched, fmt.Sprintf("%s: checkpoint %v, model %v", describe(rule), shape, p.Shape))
		default:
			c.rules[p.Name] = rule
		}
	}
	for _, n := range names {
		s := strings.TrimPrefix(n, prefix)
		if !used[s] && !slices.Contains(ignored, s) {
			mm.Unexpected = append(mm.Unexpected, s)
		}
	}
	if len(mm.Mismatched) > 0 || (!partial && len(mm.Missing)+len(mm.Unexpected) > 0) {
		return mm
	}
	c.Missing, c.Unexpected = mm.Missing, mm.Unexpected
	return nil
}

// commonPrefix returns the wrapper prefixes every name starts with, as a
// concatenation ("module._orig_mod." for a compiled model under DDP), or ""
// when there is none. An empty checkpoint has no prefix.
func commonPrefix(names []string, prefixes ...string) string {
	all := ""
	for found := true; found && len(names) > 0; {
		found = false
		for _, p := range prefixes {
			if !slices.ContainsFunc(names, func(n string) bool { return !strings.HasPrefix(n, all+p) }) {
				all += p
				found = true
				break
			}
		}
	}
	return all
}

// describe names a rule's sources for messages, with the OpenCLIP name when
// it differs.
func describe(r hf.Rule) string {
	s := strings.Join(r.Sources, "+")
	if len(r.Sources) == 1 && r.Sources[0] == r.OpenCLIP {
		return s
	}
	return s + " (" + r.OpenCLIP + ")"
}

func isFloat(d weights.DType) bool {
	return d == weights.F32 || d == weights.F16 || d == weights.BF16 || d == weights.F64
}

func dtypeName(d weights.DType) string {
	if d == "" {
		return "unsupported"
	}
	return string(d)
}

// Names lists the model's tensors (OpenCLIP names) in clip.Params order.
func (c *Checkpoint) Names() []string { return slices.Clone(c.order) }

// Tensor reads one model tensor by its OpenCLIP name, in the dtype the
// checkpoint stores it in. A tensor a partial load did not find is freshly
// initialised (float32).
func (c *Checkpoint) Tensor(name string) (weights.Tensor, error) {
	rule, ok := c.rules[name]
	if !ok {
		for _, p := range clip.Params(c.Model.Config) {
			if p.Name == name {
				return initTensor(p), nil
			}
		}
		return weights.Tensor{}, fmt.Errorf("checkpoint %s: the model has no tensor %q", c.Path, name)
	}
	parts := make([]weights.Tensor, len(rule.Sources))
	for i, s := range rule.Sources {
		t, err := c.src.read(c.raw[s])
		if err != nil {
			return weights.Tensor{}, fmt.Errorf("checkpoint %s: %w", c.Path, err)
		}
		parts[i] = t
	}
	t, err := rule.Apply(parts)
	if err != nil {
		return weights.Tensor{}, fmt.Errorf("checkpoint %s: %w", c.Path, err)
	}
	if name == clip.LogitScaleName && len(t.Shape) == 1 {
		t.Shape = nil
	}
	return t, nil
}

// StateDict reads every model tensor into an OpenCLIP state dict, keeping
// the checkpoint's dtypes. It is the one full copy of the weights.
func (c *Checkpoint) StateDict() (weights.StateDict, error) {
	return c.stateDict("")
}

// stateDict reads every tensor, converting each to dtype ("" keeps it)
// right after it is read, so only one copy of the weights is ever held.
func (c *Checkpoint) stateDict(dtype weights.DType) (weights.StateDict, error) {
	sd := make(weights.StateDict, len(c.order))
	var gc garbage
	for _, name := range c.order {
		t, err := c.Tensor(name)
		if err != nil {
			return nil, err
		}
		if rule, ok := c.rules[name]; ok && rule.Op != hf.Copy {
			gc.add(len(t.Data)) // the q/k/v or untransposed sources
		}
		if dtype != "" && dtype != t.DType {
			spent := len(t.Data)
			if t, err = t.To(dtype); err != nil {
				return nil, fmt.Errorf("checkpoint %s: %s: %w", c.Path, name, err)
			}
			gc.add(spent)
		}
		sd[name] = t
	}
	return sd, nil
}

// initTensor draws a parameter the way clip.Init would (normal, ones,
// zeros or a constant), from its own seeded stream.
func initTensor(p transformer.ParamSpec) weights.Tensor {
	return clip.InitTensor(p, rand.New(rand.NewPCG(InitSeed, hashName(p.Name))))
}

// hashName is FNV-1a, so each parameter gets its own random stream.
func hashName(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// IsCheckpoint reports whether path is a file or directory Open can read
// (the config aside), by its bytes.
func IsCheckpoint(path string) bool {
	if dir, ok, err := ResolveRun(path); err != nil {
		return false
	} else if ok {
		path = dir
	}
	file, err := resolveWeights(path)
	if err != nil {
		return false
	}
	if strings.HasSuffix(file, ".index.json") {
		return true
	}
	_, err = sniff(file)
	return err == nil
}
