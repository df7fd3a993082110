package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/eval/cache"
	"github.com/bmca/bmca/eval/formats"
	"github.com/bmca/bmca/eval/leaderboard"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/hub"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/text/tokenizer"
	"github.com/bmca/bmca/train"
	"github.com/schollz/progressbar/v3"
)

// EvalArgs are the inputs of Eval.
type EvalArgs struct {
	// Checkpoint is a checkpoint or run directory or a hub model
	// (hf-hub:ORG/NAME[@REVISION]), optionally written "label=path" to
	// name its leaderboard column.
	Checkpoint string
	// Compare lists further checkpoints ("label=path" or path) evaluated
	// on the same suite and put side by side in one leaderboard.
	Compare []string
	// WiseFT, when set, holds BASE and OTHER: instead of checkpoints, the
	// WiSE-FT mixes (1−α)·BASE + α·OTHER are evaluated, one per Alphas
	// value, and plotted against α.
	WiseFT []string
	// Alphas are the mixing weights of the WiSE-FT sweep.
	Alphas []float64
	// TrainShards, when set, are the training shards (data.train_shards'
	// syntax) the evaluation images are looked for in (eval/contamination);
	// the overlap is reported per task. Without checkpoints, only the
	// report is made.
	TrainShards []string
	// OverlapDistance is the perceptual-hash distance up to which an image
	// counts as a near-duplicate; negative: exact copies only.
	OverlapDistance int
	// ExcludeOverlap scores every task without its overlapping images.
	ExcludeOverlap bool
	// OverlapRehash decodes every training image for its perceptual hash,
	// ignoring the hashes stored in the shards' json and in the cache.
	OverlapRehash bool
	// Suite is the suite YAML file.
	Suite string
	// Config, when set, replaces the run config stored in each checkpoint.
	Config *ConfigFlags
	// BatchSize overrides the config's eval.batch_size when positive.
	BatchSize int
	// Output, when set, receives results.json, leaderboard.md,
	// leaderboard.csv and a chart per domain.
	Output string
	// CacheDir, when set, keeps image features between runs (see
	// eval/cache), and under TrainHashesDir the training shards' hashes of
	// the contamination check; empty means no cache.
	CacheDir string
	// DataRoot, when set, replaces the suite's data_root.
	DataRoot string
	// Tasks, when set, restricts the suite to these task names or domains.
	Tasks []string
	// Precision is the arithmetic of the encoders (float32 by default).
	Precision transformer.Precision
	// Out receives the report; Progress the progress bars.
	Out, Progress io.Writer

	overlaps map[string]*tasks.Overlap // the contamination reports, for each model's env
}

// modelSpec is a model to evaluate and its leaderboard label: the
// checkpoint at path, or a WiSE-FT mix when wise is set.
type modelSpec struct {
	label, path string
	wise        *wiseMix
}

// parseModels turns --checkpoint and --compare values into labelled
// checkpoints; a label defaults to the path's last element (its run
// directory's name for a step directory), made unique with a suffix.
func parseModels(args EvalArgs) ([]modelSpec, error) {
	if args.Checkpoint == "" && len(args.Compare) == 0 && len(args.WiseFT) == 0 && len(args.TrainShards) > 0 {
		return nil, nil // the contamination report alone
	}
	if len(args.WiseFT) > 0 {
		if args.Checkpoint != "" || len(args.Compare) > 0 {
			return nil, fmt.Errorf("--wise-ft evaluates its own mixes: give it without --checkpoint or --compare")
		}
		return wiseModels(args.WiseFT, args.Alphas)
	}
	var raw []string
	if args.Checkpoint != "" {
		raw = append(raw, args.Checkpoint)
	}
	raw = append(raw, args.Compare...)
	if len(raw) == 0 {
		return nil, fmt.Errorf("no checkpoint to evaluate: give --checkpoint or --compare")
	}
	var out []modelSpec
	seen := map[string]int{}
	for _, r := range raw {
		label, path, ok := strings.Cut(r, "=")
		if !ok {
			path, label = r, defaultLabel(r)
		}
		if path == "" || label == "" {
			return nil, fmt.Errorf("checkpoint %q: want PATH or LABEL=PATH", r)
		}
		seen[label]++
		if n := seen[label]; n > 1 {
			label = fmt.Sprintf("%s-%d", label, n)
		}
		out = append(out, modelSpec{label: label, path: path})
	}
	return out, nil
}

func defaultLabel(path string) string {
	clean := filepath.Clean(path)
	base := filepath.Base(clean)
	if strings.HasPrefix(base, "step-") { // runs/x/checkpoints/step-N → x@step-N
		if parent := filepath.Dir(filepath.Dir(clean)); parent != "." {
			return filepath.Base(parent) + "@" + base
		}
	}
	return base
}

// SplitCompare takes "--compare A B …" (or "-compare", or "--compare=A,B")
// out of command-line arguments: the values are every following argument up
// to the next one starting with '-'. It returns the other arguments, for the
// flag package, and the values.
func SplitCompare(args []string) (rest, compare []string, err error) {
	return SplitList(args, "compare")
}

// SplitList takes "--NAME A B …" (or "-NAME", or "--NAME=A,B") out of
// command-line arguments as SplitCompare does for --compare.
func SplitList(args []string, flagName string) (rest, values []string, err error) {
	compare := values
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != flagName {
			rest = append(rest, a)
			continue
		}
		n := len(compare)
		if hasValue {
			for _, v := range strings.Split(value, ",") {
				if v != "" {
					compare = append(compare, v)
				}
			}
		}
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++
			compare = append(compare, args[i])
		}
		if len(compare) == n {
			return nil, nil, fmt.Errorf("--%s needs checkpoints: --%s A B …", flagName, flagName)
		}
	}
	return rest, compare, nil
}

// Eval runs cmd/eval: it evaluates each checkpoint on the suite, prints a
// table per model and the per-domain means, writes the leaderboard files to
// args.Output, and returns every result (each with Model and Pretrained set).
//
// Nothing finished is lost to one failure: a malformed task (invalid in the
// suite file, or with malformed data) is reported failed and the others
// run; a checkpoint that cannot be evaluated does not stop the others; an
// interrupt stops the run. In each case the results obtained so far are
// written, and the returned error lists what failed.
func Eval(ctx context.Context, args EvalArgs) ([]tasks.Result, error) {
	start := time.Now()
	models, err := parseModels(args)
	if err != nil {
		return nil, err
	}
	suite, err := tasks.LoadSuiteWith(args.Suite, tasks.LoadOptions{DataRoot: args.DataRoot, KeepInvalid: true})
	if err != nil {
		return nil, err
	}
	if suite, err = suite.Select(args.Tasks); err != nil {
		return nil, err
	}
	if err := suite.Validate(); err != nil {
		fmt.Fprintf(args.Out, "warning: malformed tasks in %s are reported as failed; the other tasks run:\n%v\n\n", args.Suite, err)
	}
	if args.ExcludeOverlap && len(args.TrainShards) == 0 {
		return nil, fmt.Errorf("--exclude-overlap needs --train-shards: the training data to look for the evaluation images in")
	}
	var overlaps map[string]*tasks.Overlap
	if len(args.TrainShards) > 0 {
		if overlaps, err = overlapReports(ctx, args, suite); err != nil {
			return nil, err
		}
		if args.Output != "" {
			path, err := writeOverlap(args.Output, suite, overlaps)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(args.Out, "wrote %s\n", path)
		}
		if len(models) == 0 {
			return nil, nil
		}
	}
	args.overlaps = overlaps
	var fc tasks.FeatureCache
	if args.CacheDir != "" {
		fc = cache.New(args.CacheDir)
	}
	var runs []leaderboard.Run
	var all []tasks.Result
	var errs []error
	for _, m := range models {
		results, err := evalCheckpoint(ctx, args, m, suite, fc)
		if len(results) > 0 {
			runs = append(runs, leaderboard.Run{Model: m.label, Results: results})
			all = append(all, results...)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.label, err))
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(args.Out, "\n%s: %v\n", m.label, err)
		}
	}
	if len(runs) == 0 {
		return all, errors.Join(errs...)
	}
	board := leaderboard.Build(suite.Name, runs)
	if len(runs) > 1 {
		for _, p := range board.Pair(runs, tasks.Bootstrap{}) {
			fmt.Fprintf(args.Out, "warning: paired comparison: %v\n", p)
		}
		all = all[:0]
		for _, r := range runs {
			all = append(all, r.Results...) // now with their comparisons
		}
	}
	printMeans(args.Out, board)
	printPaired(args.Out, board)
	done, cached, skipped, failed := 0, 0, 0, 0
	for _, r := range all {
		switch {
		case r.Failed:
			failed++
		case r.Skipped:
			skipped++
		case r.FeaturesCached:
			cached++
			done++
		default:
			done++
		}
	}
	fmt.Fprintf(args.Out, "\n%d task runs evaluated (%d from cached features), %d skipped, %d failed; wall time %s\n",
		done, cached, skipped, failed, time.Since(start).Round(10*time.Millisecond))
	if skipped > 0 {
		fmt.Fprintf(args.Out, "skipped tasks have no data under %s: set $BMCA_EVAL_DATA or --data-root (layouts: configs/suites/README.md)\n", suite.DataDir())
	}
	sweep := len(args.WiseFT) > 0 && len(runs) == len(models)
	if sweep {
		printSweep(args.Out, board, args.Alphas)
	}
	if args.Output != "" {
		files, err := leaderboard.Write(args.Output, board, runs)
		if err != nil {
			return all, errors.Join(append(errs, err)...)
		}
		if sweep {
			chart := filepath.Join(args.Output, WiseFTChart)
			title := fmt.Sprintf("WiSE-FT on %s: (1−α)·%s + α·%s", suite.Name, filepath.Base(filepath.Clean(args.WiseFT[0])), filepath.Base(filepath.Clean(args.WiseFT[1])))
			if err := board.SweepChart(chart, args.Alphas, "α", title); err != nil {
				return all, errors.Join(append(errs, err)...)
			}
			files = append(files, chart)
		}
		fmt.Fprintf(args.Out, "wrote %s\n", strings.Join(files, ", "))
	}
	if err := tasks.Failures(all); err != nil {
		errs = append(errs, fmt.Errorf("%d task runs failed (the other results are complete):\n%w", failed, err))
	}
	return all, errors.Join(errs...)
}

// open loads the model a spec names: its checkpoint, a description of where
// it came from (the checkpoint directory), and what identifies its weights
// for the feature cache.
func (m modelSpec) open(ctx context.Context, progress io.Writer) (*train.Checkpoint, string, func(io.Writer) error, error) {
	if m.wise != nil {
		return m.wise.open(ctx, progress)
	}
	ckpt, dir, err := loadCheckpoint(ctx, m.path, progress)
	if err != nil {
		return nil, "", nil, err
	}
	return ckpt, dir, func(w io.Writer) error { return hashFiles(w, ckpt.Files) }, nil
}

// loadCheckpoint is how cmd/eval opens a checkpoint reference
// (OpenCheckpoint, as every command) and reads it into memory (a WiSE-FT
// sweep mixes the weights). It also names where the model came from: the
// checkpoint directory, or the file for a single-file checkpoint.
func loadCheckpoint(ctx context.Context, ref string, progress io.Writer) (*train.Checkpoint, string, error) {
	ck, err := OpenCheckpoint(ctx, ref, checkpoint.Options{}, progress)
	if err != nil {
		return nil, "", err
	}
	defer ck.Close()
	ckpt, err := train.FromOpen(ck)
	if err != nil {
		return nil, "", err
	}
	where := ck.Dir
	if st, err := os.Stat(ck.Path); err == nil && !st.IsDir() && filepath.Clean(ref) == filepath.Clean(ck.Path) {
		where = ck.Path
	}
	return ckpt, where, nil
}

// evalCheckpoint loads one model and runs the suite on it.
func evalCheckpoint(ctx context.Context, args EvalArgs, m modelSpec, suite *tasks.Suite, fc tasks.FeatureCache) ([]tasks.Result, error) {
	ckpt, dir, weightsID, err := m.open(ctx, args.Progress)
	if err != nil {
		return nil, err
	}
	cfg, origin, err := runConfig(ckpt, args.Config)
	if err != nil {
		return nil, err
	}
	model := ckpt.ModelConfig
	model.Precision = args.Precision
	pre, err := Preprocess(checkpoint.ModelConfig{Config: model, Preprocess: ckpt.PreprocessConfig(), Source: dir})
	if err != nil {
		return nil, err
	}
	synthetic := cfg.Data.Synthetic.Enabled && readsUnder(suite, cfg.Data.Synthetic.Dir)
	if synthetic {
		// The held-out data is regenerated (bit-identically, from its seed) if absent.
		if _, _, err := SyntheticData(ctx, cfg, args.Out); err != nil {
			return nil, err
		}
	}
	if err := cfg.Tokenizer.Fits(model.TextCfg); err != nil && args.Config != nil && args.Config.Path != "" {
		return nil, fmt.Errorf("tokenizer %s of --config %s cannot feed this model: %w\n(without --config, each checkpoint's run config names its tokenizer, and a checkpoint without one, like a hub model, uses its own)",
			cfg.Tokenizer.Name, args.Config.Path, err)
	}
	tok, err := ResolveTokenizer(ctx, TokenizerRequest{Choice: cfg.Tokenizer, Origin: origin, Model: model,
		CheckpointDir: ckpt.Dir, Flags: ConfigTokenizerFlags, Progress: args.Progress})
	if err != nil {
		return nil, err
	}
	be, err := OpenBackend(cfg.Backend, args.Precision)
	if err != nil {
		return nil, err
	}
	store, err := clip.NewStore(model, ckpt.Weights)
	if err != nil {
		return nil, err
	}
	enc, err := clip.NewEncoder(be, store, model)
	if err != nil {
		return nil, err
	}
	defer enc.Finalize()
	batch := args.BatchSize
	if batch <= 0 {
		batch = cfg.Eval.BatchSize
	}
	env := evalEnv(enc, tok.Tokenizer, pre, batch, progressBars(args.Progress, m.label))
	env.Overlaps, env.ExcludeOverlap = args.overlaps, args.ExcludeOverlap
	if fc != nil {
		env.Cache = fc
		if env.ModelKey, err = modelKey(weightsID, model, pre, tok); err != nil {
			return nil, err
		}
	}
	step := "not a training checkpoint"
	if len(ckpt.State.RunConfig) > 0 || ckpt.State.Step > 0 {
		step = fmt.Sprintf("step %d", ckpt.State.Step)
	}
	fmt.Fprintf(args.Out, "evaluating %s (%s, %s; tokenizer %s) on suite %s: %d tasks\n", m.label, dir, step, tok, suite.Name, len(suite.Tasks))
	results, err := tasks.Run(ctx, suite, env)
	pretrained := dir
	if hub.IsRef(m.path) { // name the model as the user did
		pretrained = m.path
	}
	for i := range results {
		results[i].Model, results[i].Pretrained = m.label, pretrained
	}
	printTable(args.Out, m.label, results, synthetic)
	return results, err
}

// readsUnder reports whether any task of the suite reads data below dir
// (the synthetic demo data, which is generated when absent and labelled as
// synthetic in reports).
func readsUnder(suite *tasks.Suite, dir string) bool {
	root, err := filepath.Abs(dir)
	if err != nil || dir == "" {
		return false
	}
	for _, t := range suite.Tasks {
		for _, p := range append(append(t.Paths(), t.TrainData...), t.ValData...) {
			abs, err := filepath.Abs(p)
			if err != nil {
				continue
			}
			if rel, err := filepath.Rel(root, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				return true
			}
		}
	}
	return false
}

// evalEnv is EvalEnv with TIFF and BMP decoding added, which the public
// pathology and cytology data sets of the biomedical suites need.
func evalEnv(enc tasks.Encoder, tok tokenizer.Tokenizer, pre preprocess.Config, batchSize int, progress func(task string, done, total int)) tasks.Env {
	env := EvalEnv(enc, tok, pre, batchSize, progress)
	env.Image = formats.WithExtraDecoders(pre.Apply, pre.ApplyImage)
	return env
}

// progressBars returns a Progress callback drawing one bar per task.
func progressBars(w io.Writer, label string) func(task string, done, total int) {
	if w == nil {
		return nil
	}
	bars := map[string]*progressbar.ProgressBar{}
	return func(task string, done, total int) {
		bar, ok := bars[task]
		if !ok {
			bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(label+": "+task),
				progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
			bars[task] = bar
		}
		if total > 0 && bar.GetMax() != total {
			bar.ChangeMax(total)
		}
		_ = bar.Set(done)
		if done == total {
			_ = bar.Finish()
		}
	}
}

// hashFiles writes the files' content to h.
func hashFiles(h io.Writer, paths []string) error {
	for _, p := range paths {
		if err := hashFile(h, p); err != nil {
			return err
		}
	}
	return nil
}

// hashFile writes a file's content to h.
func hashFile(h io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("feature cache key: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("feature cache key: %s: %w", path, err)
	}
	return nil
}

// modelKey identifies a model's features for the cache: a SHA-256 of what
// identifies its weights (weightsID writes it: the weights file's content,
// or how a mix was made), the model config, the image preprocessing and
// the tokenizer (name, context length, vocabulary content). Hashing the
// weights reads the whole file (about a second per GB), which is small
// next to encoding any real data set, and unlike a path+mtime key it
// survives copies and notices in-place rewrites.
func modelKey(weightsID func(io.Writer) error, model clip.Config, pre preprocess.Config, tok *Tokenizer) (string, error) {
	h := sha256.New()
	if err := weightsID(h); err != nil {
		return "", err
	}
	mc, err := json.Marshal(model)
	if err != nil {
		return "", err
	}
	// Precision is not part of the model's JSON but changes the features.
	fmt.Fprintf(h, "\nmodel %s\nprecision %s\npreprocess %+v\ntokenizer %s %d\n", mc, model.Precision, pre, tok.Name, model.TextCfg.ContextLength)
	if tok.Vocab != "" {
		if err := hashVocabulary(h, tok.Vocab); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashVocabulary writes a vocabulary's content to h: the file, or for a
// tokenizer folder the files a tokenizer reads from it.
func hashVocabulary(h io.Writer, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("feature cache key: %w", err)
	}
	if !st.IsDir() {
		return hashFile(h, path)
	}
	for _, name := range append(slices.Clone(hub.TokenizerFiles), "vocab.json", "merges.txt") {
		p := filepath.Join(path, name)
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			continue
		}
		fmt.Fprintf(h, "\n%s\n", name)
		if err := hashFile(h, p); err != nil {
			return err
		}
	}
	return nil
}

// printTable writes one model's results: per task its headline metric and
// the classification or retrieval details, or why it was skipped.
func printTable(w io.Writer, label string, results []tasks.Result, synthetic bool) {
	note := ""
	if synthetic {
		note = " (SYNTHETIC held-out data)"
	}
	width := len("task")
	for _, r := range results {
		width = max(width, len(r.Task))
	}
	fmt.Fprintf(w, "\nEvaluation of %s%s\n", label, note)
	fmt.Fprintf(w, "%-*s %-18s %-24s %8s  %s\n", width, "task", "domain", "kind", "examples", "metrics")
	for _, r := range results {
		switch {
		case r.Failed:
			fmt.Fprintf(w, "%-*s %-18s %-24s %8s  FAILED: %s\n", width, r.Task, r.Domain, r.Kind, "-", strings.ReplaceAll(r.Reason, "\n", "; "))
			continue
		case r.Skipped:
			fmt.Fprintf(w, "%-*s %-18s %-24s %8s  skipped: %s\n", width, r.Task, r.Domain, r.Kind, "-", r.Reason)
			continue
		}
		parts := metricParts(r, true)
		if o := r.Overlap; o != nil && o.Overlapping() > 0 {
			note := fmt.Sprintf("[%d of %d images in the training data", o.Overlapping(), o.Checked)
			if o.Excluded > 0 {
				note += ", left out"
			}
			parts = append(parts, note+"]")
		}
		if r.FeaturesCached {
			parts = append(parts, "[cached features]")
		}
		for _, warn := range r.Warnings {
			parts = append(parts, "warning: "+warn)
		}
		fmt.Fprintf(w, "%-*s %-18s %-24s %8d  %s\n", width, r.Task, r.Domain, r.Kind, r.Examples, strings.Join(parts, "  "))
	}
}

// printMeans writes the per-domain and overall means of the headline metric.
func printMeans(w io.Writer, b *leaderboard.Board) {
	fmt.Fprintf(w, "\nPer-domain mean of the headline metric (%%; over tasks every model was evaluated on)\n")
	fmt.Fprintf(w, "%-20s %8s", "domain", "tasks")
	for _, m := range b.Models {
		fmt.Fprintf(w, " %14s", m)
	}
	fmt.Fprintln(w)
	for _, m := range append(b.Domains, b.Overall) {
		fmt.Fprintf(w, "%-20s %8s", m.Name, fmt.Sprintf("%d/%d", m.Tasks, m.Total))
		for _, v := range m.Values {
			if math.IsNaN(v) {
				fmt.Fprintf(w, " %14s", "-")
			} else {
				fmt.Fprintf(w, " %14.1f", 100*v)
			}
		}
		fmt.Fprintln(w)
	}
}

// printSweep names the best mix of a WiSE-FT sweep on the overall mean.
func printSweep(w io.Writer, b *leaderboard.Board, alphas []float64) {
	best := -1
	for j, v := range b.Overall.Values {
		if !math.IsNaN(v) && (best < 0 || v > b.Overall.Values[best]) {
			best = j
		}
	}
	if best < 0 {
		fmt.Fprintf(w, "\nWiSE-FT sweep: no task was evaluated for every α\n")
		return
	}
	fmt.Fprintf(w, "\nWiSE-FT sweep over α = %v: best overall mean at α = %g (%.1f%%; α = 0 is the base, %.1f%%)\n",
		alphas, alphas[best], 100*b.Overall.Values[best], 100*b.Overall.Values[0])
}

// printPaired writes the paired differences of the per-domain and overall
// means from the first model, when models were compared.
func printPaired(w io.Writer, b *leaderboard.Board) {
	if !b.Paired() {
		return
	}
	fmt.Fprintf(w, "\nPaired difference from %s of the mean headline (percentage points, 95%% paired-bootstrap interval; * excludes zero)\n", b.Models[0])
	fmt.Fprintf(w, "%-20s %8s", "domain", "tasks")
	for _, m := range b.Models[1:] {
		fmt.Fprintf(w, " %26s", m)
	}
	fmt.Fprintln(w)
	for _, m := range append(b.Domains, b.Overall) {
		fmt.Fprintf(w, "%-20s %8d", m.Name, m.Tasks)
		for j := 1; j < len(b.Models); j++ {
			cell := "-"
			if j < len(m.Paired) && m.Paired[j] != nil {
				d := m.Paired[j]
				cell = fmt.Sprintf("%+.1f [%+.1f, %+.1f]", 100*d.Difference, 100*d.Low, 100*d.High)
				if d.Significant {
					cell += " *"
				}
			}
			fmt.Fprintf(w, " %26s", cell)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "per-task differences: leaderboard.md (with --output)\n")
}

// runConfig is --config when given, else the run config saved in the
// checkpoint; --set overrides apply to either. A checkpoint without one (a
// hub model, an export) gets the defaults with tokenizer.name auto: the
// model decides its tokenizer (see ResolveTokenizer). It also says where
// the config came from, for errors.
func runConfig(ckpt *train.Checkpoint, flags *ConfigFlags) (*config.Config, string, error) {
	if flags != nil && flags.Path != "" {
		cfg, err := flags.Load()
		return cfg, "--config " + flags.Path, err
	}
	var sets []string
	if flags != nil {
		sets = flags.overrides()
	}
	if len(ckpt.State.RunConfig) == 0 {
		const origin = "the defaults for a checkpoint without a run config"
		cfg, err := config.Parse([]byte("tokenizer: {name: "+config.TokenizerAuto+"}\n"), origin, sets)
		return cfg, origin, err
	}
	cfg, err := config.ParseRun(ckpt.State.RunConfig, ckpt.Dir, sets)
	if err != nil {
		return nil, "", fmt.Errorf("checkpoint %s: %w", ckpt.Dir, err)
	}
	return cfg, "the run config of " + ckpt.Dir, nil
}
