package tasks

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

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
	// Cache, if set, keeps image (and caption) features between runs; see
	// FeatureKey for what invalidates an entry.
	Cache FeatureCache
	// Overlaps, when set, holds each task's contamination report (by task
	// name; see eval/contamination), copied into its Result.
	Overlaps map[string]*Overlap
	// ExcludeOverlap scores each task without the images its report lists
	// (its test split; a probe's training split is not filtered), keeping
	// the metrics on all images in Overlap.MetricsWithOverlap.
	ExcludeOverlap bool
	// ModelKey identifies the model for the cache: it must change whenever
	// the weights, the image preprocessing or the tokenizer do (cmd/eval
	// hashes the weights file, model config, preprocessing and tokenizer).
	// Required with Cache.
	ModelKey string
	// Progress, if set, is called after each batch with the images done so
	// far. task is the task's name, with "/train" or "/val" appended for a
	// probe's other splits. total is the image count when the data layout
	// tells it (capped by max_examples), else max_examples, else -1
	// (unknown); the last call of a split has done == total.
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
	if env.Cache != nil && env.ModelKey == "" {
		return env, fmt.Errorf("eval env: Cache needs ModelKey (what identifies the model's features)")
	}
	return env, nil
}

// Result is the outcome of one task. JSON keys follow CLIP_benchmark's
// output where it has them: the task's name is "dataset", its kind "task",
// and metric keys are CLIP_benchmark's (see the Metric constants,
// ImageRetrievalRecallKey, TextRetrievalRecallKey).
type Result struct {
	Task string `json:"dataset"`
	Kind Kind   `json:"task"`
	// Model and Pretrained name the model evaluated (set by the caller: a
	// label and the checkpoint path).
	Model      string `json:"model,omitempty"`
	Pretrained string `json:"pretrained,omitempty"`
	Domain     string `json:"domain,omitempty"`
	Examples   int    `json:"examples"`          // images evaluated
	Texts      int    `json:"texts,omitempty"`   // captions evaluated (retrieval)
	Classes    int    `json:"classes,omitempty"` // class count (classification)
	// Classnames are the class names, in label order, as CLIP_benchmark
	// records them.
	Classnames []string `json:"classnames,omitempty"`
	// ClassPositives counts, per class in Classnames order, the examples
	// the class applies to (multi-label tasks).
	ClassPositives []int `json:"class_positives,omitempty"`
	// Excluded counts the examples dropped by exclude_labels.
	Excluded int     `json:"excluded,omitempty"`
	Metrics  Metrics `json:"metrics,omitempty"`
	// LeaderboardMetrics are the task's metrics setting: what leaderboards
	// show, the headline first.
	LeaderboardMetrics []string `json:"leaderboard_metrics,omitempty"`
	// Probe describes a linear probe's fit.
	Probe *ProbeResult `json:"linear_probe,omitempty"`
	// Source is the task's data set source, copied from the suite.
	Source string `json:"source,omitempty"`
	// FeaturesCached is set when every split's features came from the
	// feature cache.
	FeaturesCached bool `json:"features_cached,omitempty"`
	// Seconds is the task's wall time.
	Seconds float64 `json:"seconds"`
	// Skipped is set, with the reason, when the task's data is absent.
	Skipped bool `json:"skipped,omitempty"`
	// Failed is set, with the error as the reason, when the task could not
	// be evaluated: its definition is invalid, or its data is malformed (a
	// label that is no class, an image that does not decode, a missing
	// column). The suite's other tasks still run.
	Failed bool   `json:"failed,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Overlap is the task's contamination report, when one was made
	// (Env.Overlaps).
	Overlap *Overlap `json:"train_overlap,omitempty"`
	// Paired compares this result with another model's on the same
	// examples (set by the caller, e.g. cmd/eval --compare; see
	// PairedBootstrap).
	Paired *PairedDiff `json:"paired,omitempty"`
	// Outcomes are the per-example outcomes the metrics came from, for
	// paired comparisons; in memory only.
	Outcomes *Outcomes `json:"-"`
	// Warnings are problems that did not stop the task (a cache that could
	// not be written).
	Warnings []string `json:"warnings,omitempty"`

	splits, cacheHits int // for FeaturesCached
}

// Run validates the suite and runs its tasks in order, returning one Result
// per task. A task whose data is absent is reported skipped. A task that
// fails — its definition is invalid (see LoadOptions.KeepInvalid) or its
// data malformed — is reported failed, with the error as its reason, and
// the others still run: one bad task does not cost the rest of the suite
// (Failures collects them). Run itself fails only when env is incomplete,
// the suite as a whole is invalid, or ctx is cancelled; then the results
// of the tasks finished before come back with the error.
func Run(ctx context.Context, suite *Suite, env Env) ([]Result, error) {
	env, err := env.withDefaults()
	if err != nil {
		return nil, err
	}
	invalid, err := suite.taskErrors()
	if err != nil {
		return nil, err
	}
	var results []Result
	seen := map[string]bool{}
	for i, t := range suite.Tasks {
		if err := invalid[i]; err != nil {
			// Results are keyed by name: an unnamed or duplicate task gets its position.
			if strings.TrimSpace(t.Name) == "" || seen[t.Name] {
				t.Name = strings.TrimSpace(t.Name + fmt.Sprintf(" (tasks[%d])", i))
			}
			results = append(results, failed(t.withDefaults(), fmt.Errorf("invalid task: %w", err), 0))
			continue
		}
		seen[t.Name] = true
		r, err := RunTask(ctx, t, env)
		if err != nil {
			if ctx.Err() != nil {
				return results, fmt.Errorf("suite %s: task %q: %w", suite.Name, t.Name, err)
			}
			r = failed(t.withDefaults(), err, r.Seconds)
		}
		results = append(results, r)
	}
	return results, nil
}

// failed is the Result of a task that could not be evaluated.
func failed(t Task, err error, seconds float64) Result {
	return Result{Task: t.Name, Kind: t.Kind, Domain: t.Domain, LeaderboardMetrics: t.Metrics, Source: t.Source,
		Failed: true, Reason: err.Error(), Seconds: seconds}
}

// Failures joins the reasons of the failed results, one "task …: reason"
// each (with the model when set); nil when none failed.
func Failures(results []Result) error {
	var errs []error
	for _, r := range results {
		if !r.Failed {
			continue
		}
		if r.Model != "" {
			errs = append(errs, fmt.Errorf("%s: task %q: %s", r.Model, r.Task, r.Reason))
		} else {
			errs = append(errs, fmt.Errorf("task %q: %s", r.Task, r.Reason))
		}
	}
	return errors.Join(errs...)
}

// RunTask runs one task (validated by the caller, as Run does). Data that
// does not exist gives a skipped Result, not an error.
func RunTask(ctx context.Context, t Task, env Env) (Result, error) {
	env, err := env.withDefaults()
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	t = t.withDefaults()
	res := Result{Task: t.Name, Kind: t.Kind, Domain: t.Domain, LeaderboardMetrics: t.Metrics, Source: t.Source}
	var reason string
	switch t.Kind {
	case ZeroShotClassification:
		reason, err = runClassification(ctx, t, env, &res)
	case Retrieval:
		reason, err = runRetrieval(ctx, t, env, &res)
	case LinearProbe:
		reason, err = runProbe(ctx, t, env, &res)
	case ZeroShotMultiLabel:
		reason, err = runMultiLabel(ctx, t, env, &res)
	default:
		err = fmt.Errorf("unknown kind %q", t.Kind)
	}
	res.Seconds = time.Since(start).Seconds()
	res.FeaturesCached = res.splits > 0 && res.cacheHits == res.splits
	if reason != "" {
		return Result{Task: t.Name, Kind: t.Kind, Domain: t.Domain, LeaderboardMetrics: t.Metrics, Source: t.Source,
			Skipped: true, Reason: reason, Seconds: res.Seconds}, nil
	}
	return res, err
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

// labelCheck vets raw labels while the data is read, so a bad label stops
// the task before the rest is encoded; nil when classes come from the data.
func labelCheck(t Task) func(string) error {
	if t.ClassesFromData {
		return nil
	}
	m, err := newLabelMap(t)
	if err != nil {
		return nil
	}
	return func(raw string) error {
		_, err := m.lookup(raw)
		return err
	}
}

// rankScores returns each row's top min(5, c) classes of scores [n, c].
func rankScores(scores []float32, n, c int) [][]int {
	ranked := make([][]int, n)
	for i := range n {
		ranked[i] = TopK(scores[i*c:(i+1)*c], min(5, c))
	}
	return ranked
}

func runClassification(ctx context.Context, t Task, env Env, res *Result) (string, error) {
	f, reason, err := splitFeatures(ctx, t, env, split{"test", t.Name, t.Paths()}, labelCheck(t), res)
	if err != nil || reason != "" {
		return reason, err
	}
	lm, err := newLabelMap(t, f.Labels)
	if err != nil {
		return "", err
	}
	res.Excluded, res.Classes, res.Classnames = f.Excluded, len(lm.classes), lm.classes
	cls, err := BuildClassifier(ctx, env.Encoder, env.Tokenize, lm.classes, t.Templates, env.BatchSize)
	if err != nil {
		return "", err
	}
	if f.Dim != cls.Dim {
		return "", fmt.Errorf("image features have %d values, text features %d", f.Dim, cls.Dim)
	}
	scored, err := scoreTest(t, env, f, res, func(f *Features) (Metrics, *Outcomes, error) {
		targets, err := lm.targets(f.Labels)
		if err != nil {
			return nil, nil, err
		}
		logits, err := cls.Logits(f.Images, f.Len())
		if err != nil {
			return nil, nil, err
		}
		return classify(rankScores(logits, f.Len(), cls.NumClasses), targets, cls.NumClasses, env.Bootstrap)
	})
	res.Examples = scored.Len()
	return "", err
}

// classify is ClassificationMetrics with the per-example outcomes.
func classify(ranked [][]int, targets []int, numClasses int, b Bootstrap) (Metrics, *Outcomes, error) {
	m, err := ClassificationMetrics(ranked, targets, numClasses, b)
	if err != nil {
		return nil, nil, err
	}
	return m, ClassificationOutcomes(ranked, targets, numClasses), nil
}

func runRetrieval(ctx context.Context, t Task, env Env, res *Result) (string, error) {
	f, reason, err := splitFeatures(ctx, t, env, split{"test", t.Name, t.Paths()}, nil, res)
	if err != nil || reason != "" {
		return reason, err
	}
	scored, err := scoreTest(t, env, f, res, func(f *Features) (Metrics, *Outcomes, error) {
		if len(f.TextImage) == 0 {
			return nil, nil, fmt.Errorf("no captions in %d images", f.Len())
		}
		images, texts := slices.Clone(f.Images), slices.Clone(f.Texts)
		normalizeRows(images, f.Dim)
		normalizeRows(texts, f.Dim)
		ranks, err := retrievalRanks(images, texts, f.Dim, f.TextImage)
		if err != nil {
			return nil, nil, err
		}
		m, err := ranks.metrics(t.RecallK, nil)
		if err != nil {
			return nil, nil, err
		}
		return m, newRetrievalOutcomes(ranks, t.RecallK), nil
	})
	res.Examples, res.Texts = scored.Len(), len(scored.TextImage)
	return "", err
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
