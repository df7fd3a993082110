// Package cli is the wiring the bmca commands share: the run-config flags
// (--config, --set and their shorthands --output, --backend, --precision;
// the flags every command shares are declared in package cliflag), building the tokenizer, preprocessing and evaluation
// environment from a run config, preparing the synthetic demo data, and
// printing evaluation tables; and the commands' work behind their flags
// (Train, Eval, EmbedJob), so that each main only parses flags, calls in
// here and writes its output. Only commands import it.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/data/synth"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/internal/atomicfile"
	"github.com/bmca/bmca/internal/cli/cliflag"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/text/tokenizer"
)

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ", ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// ConfigFlags are the flags of the commands that read a run config
// (train, eval): the config file, --set overrides, and the flags that are
// shorthands for overrides (--output, --backend, train's --precision).
type ConfigFlags struct {
	Path string
	Sets multiFlag
	// Output, when given, replaces the config's output (train) or is
	// where the command writes (eval).
	Output string
	// Backend, when given, replaces the config's backend.
	Backend string
	// precision, when given, replaces the config's train.precision.
	precision precisionOverride
}

// Register adds --config, --set and --backend to fs.
func (f *ConfigFlags) Register(fs *flag.FlagSet, defaultConfig string) {
	fs.StringVar(&f.Path, "config", defaultConfig, "run configuration YAML `FILE` (see the README's config reference)")
	fs.Var(&f.Sets, "set", "override one config field, `key=value` with the YAML path as key (e.g. train.steps=20); repeatable")
	cliflag.Backend(fs, &f.Backend)
}

// RegisterOutput adds --output (and its alias --out) to fs; usage says
// what the command writes there.
func (f *ConfigFlags) RegisterOutput(fs *flag.FlagSet, usage string) {
	cliflag.Output(fs, &f.Output, usage)
}

// RegisterPrecision adds --precision to fs as an override of the
// config's train.precision, for the command that trains.
func (f *ConfigFlags) RegisterPrecision(fs *flag.FlagSet) {
	cliflag.Precision(fs, &f.precision)
}

// overrides are the --set values followed by those of the shorthand
// flags given (--backend, --precision), which therefore win.
func (f *ConfigFlags) overrides() []string {
	sets := append([]string(nil), f.Sets...)
	if f.Backend != "" {
		sets = append(sets, "backend="+strconv.Quote(f.Backend))
	}
	if f.precision.given {
		sets = append(sets, "train.precision="+f.precision.p.String())
	}
	return sets
}

// Load reads the config with the overrides applied.
func (f *ConfigFlags) Load() (*config.Config, error) {
	if f.Path == "" {
		return nil, fmt.Errorf("--config is required")
	}
	sets := f.overrides()
	if f.Output != "" {
		// --output is relative to the working directory, not to the config
		// file as paths inside the config are.
		out, err := filepath.Abs(f.Output)
		if err != nil {
			return nil, err
		}
		sets = append(sets, "output="+strconv.Quote(out))
	}
	return config.Load(f.Path, sets)
}

// precisionOverride is a --precision that replaces the config's
// train.precision only when given; it prints the same default (f32) as
// the other commands' --precision.
type precisionOverride struct {
	p     transformer.Precision
	given bool
}

func (o *precisionOverride) String() string { return o.p.String() }

// Set parses s as transformer.ParsePrecision does.
func (o *precisionOverride) Set(s string) error {
	if err := o.p.Set(s); err != nil {
		return err
	}
	o.given = true
	return nil
}

// Preprocess is the one place a model's image transform is decided, for
// training, eval and embed alike: the model's image size and the
// checkpoint's preprocess_cfg (mean, std; package checkpoint gives
// OpenAI's values when a checkpoint has none). Only OpenCLIP's default
// resize (shortest side, bicubic) is implemented; other interpolations or
// resize modes are refused rather than silently replaced.
func Preprocess(mc checkpoint.ModelConfig) (preprocess.Config, error) {
	p := mc.Preprocess
	if p.Interpolation != "bicubic" || p.ResizeMode != "shortest" {
		return preprocess.Config{}, fmt.Errorf("the model's preprocess_cfg (%s) asks for %s resizing in mode %s; only bicubic/shortest (OpenCLIP's default) is implemented", mc.Source, p.Interpolation, p.ResizeMode)
	}
	c := preprocess.Config{ImageSize: mc.VisionCfg.ImageSize}
	for i := range 3 {
		c.Mean[i], c.Std[i] = float32(p.Mean[i]), float32(p.Std[i])
	}
	if err := c.Validate(); err != nil {
		return preprocess.Config{}, fmt.Errorf("the model's preprocess_cfg (%s): %w", mc.Source, err)
	}
	return c, nil
}

// SyntheticData writes (or reuses) the demo dataset the config asks for.
func SyntheticData(ctx context.Context, cfg *config.Config, log io.Writer) (*synth.Manifest, string, error) {
	sc, dir := cfg.Data.Synthetic.Config, cfg.Data.Synthetic.Dir
	if existing, err := synth.ReadManifest(dir); err == nil && existing.ConfigHash == sc.Hash() {
		fmt.Fprintf(log, "SYNTHETIC data: reusing the generated demo dataset in %s (%d training pairs)\n", dir, existing.Train.Samples)
	} else {
		fmt.Fprintf(log, "SYNTHETIC data: generating the demo dataset in %s (%d training pairs, seed %d)...\n", dir, sc.TrainSamples, sc.Seed)
	}
	m, err := synth.Write(ctx, dir, sc)
	if err != nil {
		return nil, "", fmt.Errorf("synthetic dataset %s: %w", dir, err)
	}
	return m, dir, nil
}

// TrainShards lists the shards to train on: the synthetic dataset's when
// enabled, else the configured patterns.
func TrainShards(m *synth.Manifest, dir string, cfg *config.Config) []string {
	if m == nil {
		return cfg.Data.TrainShards
	}
	out := make([]string, len(m.Train.Shards))
	for i, s := range m.Train.Shards {
		out[i] = filepath.Join(dir, filepath.FromSlash(s))
	}
	return out
}

// EvalEnv bundles what tasks.Run needs for a model whose images are
// preprocessed by pre (see Preprocess).
func EvalEnv(enc tasks.Encoder, tok tokenizer.Tokenizer, pre preprocess.Config, batchSize int, progress func(task string, done, total int)) tasks.Env {
	return tasks.Env{
		Encoder:   enc,
		Tokenize:  tasks.FromTokenizer(tok),
		Image:     pre.Apply,
		BatchSize: batchSize,
		Progress:  progress,
	}
}

// Summary flattens results into the metrics a training log records:
// <task>/<metric>.
func Summary(results []tasks.Result) map[string]float64 {
	out := make(map[string]float64)
	for _, r := range results {
		if r.Skipped || r.Failed {
			continue
		}
		for k, v := range r.Metrics {
			out[r.Task+"/"+k] = v
		}
	}
	return out
}

// PrintResults writes a plain-text table of results, flagging synthetic data.
func PrintResults(w io.Writer, results []tasks.Result, synthetic bool) {
	label := ""
	if synthetic {
		label = " (SYNTHETIC held-out data)"
	}
	fmt.Fprintf(w, "\nEvaluation%s\n", label)
	fmt.Fprintf(w, "%-12s %-24s %8s  %s\n", "task", "kind", "examples", "metrics")
	for _, r := range results {
		switch {
		case r.Failed:
			fmt.Fprintf(w, "%-12s %-24s %8s  FAILED: %s\n", r.Task, r.Kind, "-", strings.ReplaceAll(r.Reason, "\n", "; "))
			continue
		case r.Skipped:
			fmt.Fprintf(w, "%-12s %-24s %8s  skipped: %s\n", r.Task, r.Kind, "-", r.Reason)
			continue
		}
		fmt.Fprintf(w, "%-12s %-24s %8d  %s\n", r.Task, r.Kind, r.Examples, strings.Join(metricParts(r, false), "  "))
	}
}

// metricParts is the metrics column of a result: the headline numbers and
// chance level, and with full the secondary ones as well (mean recall,
// R@100, top-5, macro-F1, the probe's L2).
func metricParts(r tasks.Result, full bool) []string {
	var parts []string
	if r.Kind == tasks.Retrieval {
		ks := []int{1, 5, 10}
		if full {
			parts = append(parts, fmt.Sprintf("mean recall %.3f", r.Metrics[tasks.MetricMeanRecall]))
			ks = append(ks, 100)
		}
		for _, k := range ks {
			i2t, ok1 := r.Metrics[tasks.TextRetrievalRecallKey(k)]
			t2i, ok2 := r.Metrics[tasks.ImageRetrievalRecallKey(k)]
			if ok1 && ok2 {
				parts = append(parts, fmt.Sprintf("R@%d i→t %.3f t→i %.3f", k, i2t, t2i))
			}
		}
		return append(parts, fmt.Sprintf("(chance R@1 %.3f)", 1/float64(max(r.Examples, 1))))
	}
	if r.Kind == tasks.ZeroShotMultiLabel {
		lo, hi := tasks.CIKeys(tasks.MetricMeanAveragePrecision)
		parts = append(parts, fmt.Sprintf("mAP %.3f [%.3f, %.3f]", r.Metrics[tasks.MetricMeanAveragePrecision], r.Metrics[lo], r.Metrics[hi]))
		if v, ok := r.Metrics[tasks.MetricMeanAUROC]; ok {
			parts = append(parts, fmt.Sprintf("mean AUROC %.3f", v))
		}
		// A random ranking's AP is the class's prevalence.
		sum, n := 0.0, 0
		for _, p := range r.ClassPositives {
			if p > 0 {
				sum += float64(p) / float64(max(r.Examples, 1))
				n++
			}
		}
		return append(parts, fmt.Sprintf("(chance mAP %.3f, AUROC 0.5)", sum/float64(max(n, 1))))
	}
	lo, hi := tasks.CIKeys(tasks.MetricAcc1)
	parts = append(parts, fmt.Sprintf("top-1 %.3f [%.3f, %.3f]", r.Metrics[tasks.MetricAcc1], r.Metrics[lo], r.Metrics[hi]))
	if v, ok := r.Metrics[tasks.MetricAcc5]; ok && full {
		parts = append(parts, fmt.Sprintf("top-5 %.3f", v))
	}
	parts = append(parts, fmt.Sprintf("balanced %.3f", r.Metrics[tasks.MetricMeanPerClassRecall]))
	if full {
		parts = append(parts, fmt.Sprintf("macro-F1 %.3f", r.Metrics[tasks.MetricMacroF1]))
	}
	parts = append(parts, fmt.Sprintf("(chance %.3f)", 1/float64(max(r.Classes, 1))))
	if r.Probe != nil && full {
		parts = append(parts, fmt.Sprintf("L2 %.3g", r.Probe.L2))
	}
	return parts
}

// Main is a command's main: it runs run with the command-line arguments
// and a context that Ctrl-C and SIGTERM cancel, exits 0 after --help, and
// otherwise, on an error, prints it and exits 1 (Fatal).
func Main(command string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		Fatal(command, err)
	}
}

// Fatal prints err and exits with status 1; commands call it from main.
func Fatal(command string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", command, err)
	os.Exit(1)
}

// WriteResults stores results as DIR/results.json (one object per task).
func WriteResults(dir string, results []tasks.Result) error {
	data, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "results.json"), append(data, '\n'), 0o644)
}

// SyntheticSuite is the evaluation suite of a synthetic dataset's held-out
// tasks, as its manifest lists them.
func SyntheticSuite(m *synth.Manifest, dir string) *tasks.Suite {
	suite := &tasks.Suite{Name: "synthetic"}
	for _, t := range m.Tasks {
		task := tasks.Task{Name: t.Name, Domain: "synthetic", Kind: tasks.Kind(t.Kind), Classes: t.ClassNames, Templates: t.Templates}
		for _, s := range t.Shards {
			task.Shards = append(task.Shards, filepath.Join(dir, filepath.FromSlash(s)))
		}
		suite.Tasks = append(suite.Tasks, task)
	}
	return suite
}
