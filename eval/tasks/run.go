package tasks

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bmca/bmca/data/stream"
)

// DefaultBatchSize is CLIP_benchmark's default batch size.
const DefaultBatchSize = 64

// Env is what Run needs besides the suite: the model, how to turn text into
// tokens and image bytes into pixels, and how to read shards.
type Env struct {
	// Encoder is the model under evaluation (required).
	Encoder Encoder
	// Tokenize turns prompts and captions into token rows (required).
	Tokenize TokenizeFunc
	// Image decodes and preprocesses one image (required). It must be safe
	// for concurrent use: Run calls it from Workers goroutines.
	Image ImageFunc
	// BatchSize is the number of images (or texts) per encoder call;
	// 0 means DefaultBatchSize.
	BatchSize int
	// Workers is the number of images preprocessed at once; 0 means
	// GOMAXPROCS.
	Workers int
	// Bootstrap configures the acc1 confidence interval; the zero value
	// means 1000 resamples, 95%, seed 0.
	Bootstrap Bootstrap
	// Shards lists and reads WebDataset shards; nil means DefaultShards
	// (local files through data/stream).
	Shards ShardSource
	// Progress, if set, is called after each batch with the images done so
	// far. total is max_examples when the task sets it, else -1 (unknown);
	// the last call of a task has done == total.
	Progress func(task string, done, total int)
}

func (env Env) withDefaults() (Env, error) {
	var missing []string
	if env.Encoder == nil {
		missing = append(missing, "Encoder")
	}
	if env.Tokenize == nil {
		missing = append(missing, "Tokenize")
	}
	if env.Image == nil {
		missing = append(missing, "Image")
	}
	if len(missing) > 0 {
		return env, fmt.Errorf("eval env: %s not set", strings.Join(missing, ", "))
	}
	if env.BatchSize <= 0 {
		env.BatchSize = DefaultBatchSize
	}
	if env.Workers <= 0 {
		env.Workers = runtime.GOMAXPROCS(0)
	}
	if env.Shards == nil {
		env.Shards = DefaultShards()
	}
	return env, nil
}

// Result is the outcome of one task. Metrics use CLIP_benchmark's keys (see
// the Metric constants, ImageRetrievalRecallKey, TextRetrievalRecallKey).
type Result struct {
	Task     string  `json:"task"`
	Kind     Kind    `json:"kind"`
	Domain   string  `json:"domain,omitempty"`
	Examples int     `json:"examples"`          // images evaluated
	Texts    int     `json:"texts,omitempty"`   // captions evaluated (retrieval)
	Classes  int     `json:"classes,omitempty"` // class count (classification)
	Metrics  Metrics `json:"metrics,omitempty"`
	// Skipped is set, with the reason, when the task's shards are absent.
	Skipped bool   `json:"skipped,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Run validates the suite and runs its tasks in order, returning one Result
// per task. A task whose shards do not exist is reported skipped; any other
// failure stops the run and is returned, with the results of the tasks
// finished before it.
func Run(ctx context.Context, suite *Suite, env Env) ([]Result, error) {
	env, err := env.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := suite.Validate(); err != nil {
		return nil, err
	}
	var results []Result
	for _, t := range suite.Tasks {
		r, err := RunTask(ctx, t, env)
		if err != nil {
			return results, fmt.Errorf("suite %s: task %q: %w", suite.Name, t.Name, err)
		}
		results = append(results, r)
	}
	return results, nil
}

// RunTask runs one task (validated by the caller, as Run does). Shards that
// do not exist give a skipped Result, not an error.
func RunTask(ctx context.Context, t Task, env Env) (Result, error) {
	env, err := env.withDefaults()
	if err != nil {
		return Result{}, err
	}
	t = t.withDefaults()
	res := Result{Task: t.Name, Kind: t.Kind, Domain: t.Domain}
	shards, reason, err := locateShards(env.Shards, t.Shards)
	if err != nil {
		return res, err
	}
	if reason != "" {
		res.Skipped, res.Reason = true, reason
		return res, nil
	}
	switch t.Kind {
	case ZeroShotClassification:
		return runClassification(ctx, t, env, shards, res)
	case Retrieval:
		return runRetrieval(ctx, t, env, shards, res)
	default:
		return res, fmt.Errorf("unknown kind %q", t.Kind)
	}
}

// locateShards expands the patterns and returns a skip reason when shards
// are absent.
func locateShards(src ShardSource, patterns []string) ([]string, string, error) {
	shards, err := src.Expand(patterns)
	if IsAbsent(err) {
		return nil, err.Error(), nil
	}
	if err != nil {
		return nil, "", err
	}
	if len(shards) == 0 {
		return nil, fmt.Sprintf("no shard matches %q", patterns), nil
	}
	return shards, "", nil
}

// example is one image with its label or captions, still encoded.
type example struct {
	key, url string
	image    []byte
	label    int
	captions []string
}

// forEachBatch streams the task's samples, extracts examples with extract,
// and calls process on batches of at most env.BatchSize, stopping after
// max_examples. It reports progress and returns the number of examples.
func forEachBatch(ctx context.Context, t Task, env Env, shards []string,
	extract func(stream.Sample) (example, error), process func([]example) error) (int, error) {
	total := -1
	if t.MaxExamples > 0 {
		total = t.MaxExamples
	}
	done := 0
	batch := make([]example, 0, env.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := process(batch); err != nil {
			return err
		}
		done += len(batch)
		batch = batch[:0]
		if env.Progress != nil {
			env.Progress(t.Name, done, total)
		}
		return ctx.Err()
	}
	for s, err := range env.Shards.Read(ctx, shards) {
		if err != nil {
			return done, err
		}
		ex, err := extract(s)
		if err != nil {
			return done, fmt.Errorf("shard %s, sample %q: %w", s.URL, s.Key, err)
		}
		batch = append(batch, ex)
		if len(batch) == env.BatchSize {
			if err := flush(); err != nil {
				return done, err
			}
		}
		if t.MaxExamples > 0 && done+len(batch) >= t.MaxExamples {
			break
		}
	}
	if err := flush(); err != nil {
		return done, err
	}
	if done == 0 {
		return 0, fmt.Errorf("no samples in %d shard(s)", len(shards))
	}
	if env.Progress != nil && total != done {
		env.Progress(t.Name, done, done)
	}
	return done, nil
}

// imageMember returns the first of the task's image members present.
func imageMember(t Task, s stream.Sample) ([]byte, error) {
	keys := t.imageKeys()
	for _, k := range keys {
		if b, ok := s.Members[k]; ok {
			return b, nil
		}
	}
	return nil, fmt.Errorf("no image member (looked for %s; sample has %s)", strings.Join(keys, ", "), memberNames(s))
}

func memberNames(s stream.Sample) string {
	var names []string
	for k := range s.Members {
		names = append(names, k)
	}
	if len(names) == 0 {
		return "no members"
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// encodeImages preprocesses a batch with env.Workers goroutines and encodes
// it, returning features [len(batch), dim].
func encodeImages(env Env, batch []example) ([]float32, int, error) {
	pixels := make([][]float32, len(batch))
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(env.Workers, len(batch)) {
		wg.Go(func() {
			for i := range next {
				pixels[i], errs[i] = env.Image(batch[i].image)
			}
		})
	}
	for i := range batch {
		next <- i
	}
	close(next)
	wg.Wait()
	size := len(pixels[0])
	flat := make([]float32, 0, size*len(batch))
	for i, p := range pixels {
		if errs[i] != nil {
			return nil, 0, fmt.Errorf("shard %s, sample %q: image: %w", batch[i].url, batch[i].key, errs[i])
		}
		if len(p) != size || size == 0 {
			return nil, 0, fmt.Errorf("shard %s, sample %q: image preprocessed to %d values, others to %d", batch[i].url, batch[i].key, len(p), size)
		}
		flat = append(flat, p...)
	}
	f, err := env.Encoder.EncodeImages(flat, len(batch))
	if err != nil {
		return nil, 0, fmt.Errorf("encode images (batch starting at sample %q): %w", batch[0].key, err)
	}
	dim, err := featureDim(f, len(batch))
	if err != nil {
		return nil, 0, fmt.Errorf("encode images: %w", err)
	}
	return f, dim, nil
}

func runClassification(ctx context.Context, t Task, env Env, shards []string, res Result) (Result, error) {
	res.Classes = len(t.Classes)
	cls, err := BuildClassifier(ctx, env.Encoder, env.Tokenize, t.Classes, t.Templates, env.BatchSize)
	if err != nil {
		return res, err
	}
	keep := min(5, len(t.Classes))
	var ranked [][]int
	var targets []int
	extract := func(s stream.Sample) (example, error) {
		img, err := imageMember(t, s)
		if err != nil {
			return example{}, err
		}
		raw, ok := s.Members[t.LabelKey]
		if !ok {
			return example{}, fmt.Errorf("no label member %q (sample has %s)", t.LabelKey, memberNames(s))
		}
		label, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil {
			return example{}, fmt.Errorf("label member %q: %q is not a decimal class index", t.LabelKey, truncate(string(raw), 40))
		}
		if label < 0 || label >= len(t.Classes) {
			return example{}, fmt.Errorf("label %d outside the %d classes", label, len(t.Classes))
		}
		return example{key: s.Key, url: s.URL, image: img, label: label}, nil
	}
	process := func(batch []example) error {
		f, dim, err := encodeImages(env, batch)
		if err != nil {
			return err
		}
		if dim != cls.Dim {
			return fmt.Errorf("image features have %d values, text features %d", dim, cls.Dim)
		}
		logits, err := cls.Logits(f, len(batch))
		if err != nil {
			return err
		}
		c := cls.NumClasses
		for i, ex := range batch {
			ranked = append(ranked, TopK(logits[i*c:(i+1)*c], keep))
			targets = append(targets, ex.label)
		}
		return nil
	}
	n, err := forEachBatch(ctx, t, env, shards, extract, process)
	if err != nil {
		return res, err
	}
	res.Examples = n
	res.Metrics, err = ClassificationMetrics(ranked, targets, len(t.Classes), env.Bootstrap)
	return res, err
}

func runRetrieval(ctx context.Context, t Task, env Env, shards []string, res Result) (Result, error) {
	var images, texts []float32
	var textImage []int
	dim := 0
	extract := func(s stream.Sample) (example, error) {
		img, err := imageMember(t, s)
		if err != nil {
			return example{}, err
		}
		raw, ok := s.Members[t.CaptionKey]
		if !ok {
			return example{}, fmt.Errorf("no caption member %q (sample has %s)", t.CaptionKey, memberNames(s))
		}
		return example{key: s.Key, url: s.URL, image: img, captions: splitLines(string(raw))}, nil
	}
	process := func(batch []example) error {
		f, d, err := encodeImages(env, batch)
		if err != nil {
			return err
		}
		var captions []string
		first := len(images) / max(d, 1)
		for i, ex := range batch {
			captions = append(captions, ex.captions...)
			for range ex.captions {
				textImage = append(textImage, first+i)
			}
		}
		normalizeRows(f, d)
		images = append(images, f...)
		if len(captions) == 0 {
			return nil
		}
		tokens, err := env.Tokenize(captions)
		if err != nil {
			return fmt.Errorf("tokenize captions: %w", err)
		}
		tf, td, err := encodeTextsBatched(ctx, env.Encoder, tokens, len(captions), env.BatchSize)
		if err != nil {
			return err
		}
		if td != d || (dim != 0 && d != dim) {
			return fmt.Errorf("image features have %d values, text features %d", d, td)
		}
		dim = d
		normalizeRows(tf, td)
		texts = append(texts, tf...)
		return nil
	}
	n, err := forEachBatch(ctx, t, env, shards, extract, process)
	if err != nil {
		return res, err
	}
	res.Examples, res.Texts = n, len(textImage)
	if dim == 0 {
		return res, fmt.Errorf("no captions in %d images", n)
	}
	res.Metrics, err = RetrievalRecall(images, texts, dim, textImage, t.RecallK)
	return res, err
}

// splitLines splits text as Python's str.splitlines does, which is how
// CLIP_benchmark separates the captions of a retrieval sample: at \n, \r,
// \r\n, \v, \f, \x1c, \x1d, \x1e, U+0085, U+2028 and U+2029, with no empty
// entry after a final line break.
func splitLines(s string) []string {
	var out []string
	start := 0
	for i, r := range s {
		switch r {
		case '\n', '\r', '\v', '\f', '\x1c', '\x1d', '\x1e', '\u0085', '\u2028', '\u2029':
		default:
			continue
		}
		if i < start { // the \n of a \r\n already consumed
			continue
		}
		out = append(out, s[start:i])
		start = i + len(string(r))
		if r == '\r' && strings.HasPrefix(s[start:], "\n") {
			start++
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
