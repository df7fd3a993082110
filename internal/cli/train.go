package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/data/synth"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/internal/dirlock"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/model/weights"
	"github.com/bmca/bmca/text/tokenizer"
	"github.com/bmca/bmca/train"
)

// TrainArgs are the inputs of Train besides the config.
type TrainArgs struct {
	// Resume is a checkpoint path, or "latest" for the newest in cfg.Output.
	Resume string
	// Pretrained is a checkpoint whose weights start a new run.
	Pretrained string
	// AllowChanges resumes even when the recipe, data or seed differ from
	// the run config the checkpoint recorded (see checkResume).
	AllowChanges bool
	// Out receives the report; Progress the progress bar and notes.
	Out, Progress io.Writer
}

// Train runs cmd/train: it prepares data, model and evaluation from cfg,
// trains, and prints and stores the final evaluation.
func Train(ctx context.Context, cfg *config.Config, args TrainArgs) error {
	// A config built or changed in code has not been through Load's
	// validation; one that has passes again at no cost.
	if err := cfg.Validate(); err != nil {
		return err
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(args.Out, "warning: %s\n", w)
	}
	start := time.Now()
	lock, err := lockOutput(cfg.Output, args.Out)
	if err != nil {
		return err
	}
	defer lock.Release()

	model := cfg.Model.Config
	from, err := startingPoint(ctx, cfg, model, args)
	if err != nil {
		return err
	}
	pre, err := Preprocess(from.model)
	if err != nil {
		return err
	}
	var manifest *synth.Manifest
	var synthDir string
	if cfg.Data.Synthetic.Enabled {
		if manifest, synthDir, err = SyntheticData(ctx, cfg, args.Out); err != nil {
			return err
		}
	}
	// A replayed batch file carries its own token ids: the tokenizer is
	// then needed only for an evaluation suite's prompts.
	var tok tokenizer.Tokenizer
	if cfg.Data.Tensors == "" || cfg.Eval.Suite != "" {
		t, err := ResolveTokenizer(ctx, TokenizerRequest{Choice: cfg.Tokenizer, Origin: "the run config", Model: model,
			CheckpointDir: from.dir, Flags: ConfigTokenizerFlags, Progress: args.Progress})
		if err != nil {
			return err
		}
		tok = t.Tokenizer
	}
	// How this run computes, set once on the model configuration that
	// everything below receives: the training steps and the evaluations
	// inside the run (which follow the training precision, as OpenCLIP's
	// evaluate and zero_shot_eval run under the training autocast, and as
	// the backend's TF32 switch applies to the whole run anyway).
	model.Runtime = cfg.Train.Runtime
	be, err := OpenBackend(cfg.Backend, model.Precision)
	if err != nil {
		return err
	}
	in, err := openTrainInput(cfg, model, tok, pre, TrainShards(manifest, synthDir, cfg))
	if err != nil {
		return err
	}
	defer in.close()
	devices, meshSize, err := trainDevices(cfg, be)
	if err != nil {
		return err
	}
	suite, err := trainSuite(cfg, manifest, synthDir)
	if err != nil {
		return err
	}
	opts, err := trainOptions(cfg, meshSize, from)
	if err != nil {
		return err
	}

	bar := newProgress(args.Progress, cfg.Train.Steps, cfg.Data.Synthetic.Enabled)
	hooks, lastResults := trainHooks(cfg, bar, in, suite, tok, pre)
	fmt.Fprintf(args.Out, "training %s%s: %s, backend %s, output %s\n", describe(model), syntheticLabel(cfg),
		recipeDesc(cfg, model, devices, opts.Recipe), be.Description(), cfg.Output)
	res, err := train.Loop(ctx, be, model, opts, in.source(), hooks)
	bar.finish()
	if err != nil {
		if errors.Is(err, train.ErrNonFinite) {
			return fmt.Errorf("training diverged: %w", err)
		}
		return err
	}
	return reportRun(args.Out, cfg, res, time.Since(start), *lastResults)
}

// lockOutput creates the output folder and takes its lock: one run per
// folder, since a second would interleave checkpoints and metrics.
// Everything after it, reading "latest" included, happens under the lock.
// What an interrupted save left behind is removed and named.
func lockOutput(output string, out io.Writer) (*dirlock.Lock, error) {
	if err := os.MkdirAll(output, 0o755); err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	lock, err := dirlock.Acquire(output)
	if err != nil {
		return nil, fmt.Errorf("output: %w", err)
	}
	removed, err := train.CleanLeftovers(output)
	if len(removed) > 0 {
		fmt.Fprintf(out, "removed what an interrupted save left in %s: %s\n", output, strings.Join(removed, ", "))
	}
	if err != nil {
		lock.Release()
		return nil, err
	}
	return lock, nil
}

// runStart is where a run's weights come from: a resumed checkpoint, a
// pretrained one, or a fresh initialisation.
type runStart struct {
	// model carries the preprocessing training, its evaluations and the
	// saved checkpoints use: OpenAI's for a new model, else the one the
	// resumed or pretrained checkpoint was made with.
	model checkpoint.ModelConfig
	// dir is the checkpoint the run starts from ("" for a new model),
	// where a saved tokenizer may lie.
	dir string
	// init are a new run's starting weights (random or pretrained); nil on
	// resume, whose weights come with resume.
	init   weights.StateDict
	resume *train.Checkpoint
}

// startingPoint opens --resume (checked against the config) or else
// --pretrained / train.pretrained, or initialises a new model.
func startingPoint(ctx context.Context, cfg *config.Config, model clip.Config, args TrainArgs) (runStart, error) {
	from := runStart{model: checkpoint.ModelConfig{Config: model, Preprocess: clip.OpenAIPreprocess, Source: "OpenCLIP's default for a new model"}}
	if path := args.Resume; path != "" {
		if path == "latest" {
			path = cfg.Output
			if _, ok, err := checkpoint.ResolveRun(path); err == nil && !ok {
				return from, fmt.Errorf("--resume latest: %s holds no checkpoint yet, so there is nothing to resume; start the run without --resume", path)
			}
		}
		ck, err := OpenCheckpoint(ctx, path, checkpoint.Options{}, args.Progress)
		if err != nil {
			return from, fmt.Errorf("--resume: %w", err)
		}
		resume, err := train.FromOpen(ck)
		ck.Close()
		if err != nil {
			return from, fmt.Errorf("--resume: %w", err)
		}
		if err := sameModel(resume.ModelConfig, model); err != nil {
			return from, fmt.Errorf("--resume %s: %w", path, err)
		}
		if err := checkResume(args.Out, resume, cfg, args.AllowChanges); err != nil {
			return from, fmt.Errorf("--resume: %w", err)
		}
		from.model.Preprocess, from.model.Source = resume.PreprocessConfig(), resume.Dir
		from.dir, from.resume = resume.Dir, resume
		return from, nil // the loop starts from the resumed weights; no init is drawn
	}
	pretrained := args.Pretrained
	if pretrained == "" {
		pretrained = cfg.Train.Pretrained
	}
	if pretrained == "" {
		from.init = clip.Init(model, cfg.Train.Seed)
		return from, nil
	}
	ck, err := openPretrained(ctx, pretrained, model, args.Progress)
	if err != nil {
		return from, fmt.Errorf("--pretrained: %w", err)
	}
	defer ck.Close()
	from.model.Preprocess, from.model.Source = ck.Model.Preprocess, ck.Model.Source
	from.dir = ck.Dir
	if from.init, err = ck.StateDict(); err != nil {
		return from, fmt.Errorf("--pretrained: %w", err)
	}
	return from, nil
}

// trainInput is the run's data: a replayed batch file (data.tensors) or
// the streamed shards, with what the progress line reports of the latter.
type trainInput struct {
	tensors *tensorSource
	shards  *streamSource
}

// openTrainInput opens data.tensors, else a stream over shards.
func openTrainInput(cfg *config.Config, model clip.Config, tok tokenizer.Tokenizer, pre preprocess.Config, shards []string) (trainInput, error) {
	if cfg.Data.Tensors != "" {
		ts, err := openTensorSource(cfg, model)
		if err != nil {
			return trainInput{}, err
		}
		// B comes from the file; the recorded run config says so.
		cfg.Train.BatchSize = ts.MicroBatchSize()
		return trainInput{tensors: ts}, nil
	}
	ss, err := newSource(cfg, shards, tok, model, pre)
	if err != nil {
		return trainInput{}, err
	}
	return trainInput{shards: ss}, nil
}

// close releases a batch file; a stream needs no closing.
func (in trainInput) close() {
	if in.tensors != nil {
		in.tensors.Close()
	}
}

// source is what the loop reads batches from.
func (in trainInput) source() train.Source {
	if in.tensors != nil {
		return in.tensors
	}
	return in.shards
}

// trainOptions gathers the loop's options from the config and the
// starting point; the recipe's device count is the mesh actually used.
func trainOptions(cfg *config.Config, meshSize int, from runStart) (train.Options, error) {
	runConfig, err := cfg.MarshalRun()
	if err != nil {
		return train.Options{}, fmt.Errorf("recording the run config in checkpoints: %w", err)
	}
	recipe := cfg.Train.Recipe
	recipe.Devices = meshSize
	return train.Options{
		Output: cfg.Output, Steps: cfg.Train.Steps, Schedule: cfg.Train.LRSchedule(), Recipe: recipe,
		CheckpointEvery: cfg.Train.CheckpointEvery, Keep: cfg.Train.KeepCheckpoints, LogEvery: cfg.Train.LogEvery,
		EvalEvery: cfg.Eval.Every, Seed: cfg.Train.Seed, RunConfig: runConfig, Preprocess: from.model.Preprocess,
		Init: from.init, Resume: from.resume,
	}, nil
}

// trainHooks connects the loop to the progress bar, the metrics plot and
// the evaluation suite; the returned pointer holds the last evaluation's
// results once the loop has run.
func trainHooks(cfg *config.Config, bar *progress, in trainInput, suite *tasks.Suite, tok tokenizer.Tokenizer, pre preprocess.Config) (train.Hooks, *[]tasks.Result) {
	var lastResults []tasks.Result
	hooks := train.Hooks{
		OnStep: bar.update,
		OnCheckpoint: func(dir string, step int) {
			bar.note(fmt.Sprintf("%scheckpoint step %d → %s", bar.synthetic, step, dir))
			if err := train.PlotMetrics(cfg.Output); err != nil && !errors.Is(err, train.ErrNothingToPlot) {
				bar.note(fmt.Sprintf("warning: metrics plot: %v", err))
			}
		},
	}
	if in.shards != nil {
		hooks.DataStats, hooks.Data = func() any { return in.shards.Stats() }, in.shards.Report
	}
	if suite != nil {
		hooks.Evaluate = func(ctx context.Context, step int, enc *clip.Encoder) (map[string]float64, error) {
			bar.note(fmt.Sprintf("%sevaluating suite %s at step %d in %s", bar.synthetic, suite.Name, step, enc.Config().Precision))
			results, err := tasks.Run(ctx, suite, EvalEnv(enc, tok, pre, cfg.Eval.BatchSize, nil))
			if err != nil {
				return nil, err
			}
			if err := tasks.Failures(results); err != nil {
				bar.note(fmt.Sprintf("warning: evaluation at step %d: %v", step, err))
			}
			lastResults = results
			return Summary(results), nil
		}
	}
	return hooks, &lastResults
}

// syntheticLabel marks every summary line of a run on the built-in
// synthetic data, so its numbers are never mistaken for real ones.
func syntheticLabel(cfg *config.Config) string {
	if cfg.Data.Synthetic.Enabled {
		return " on SYNTHETIC data"
	}
	return ""
}

// reportRun prints how the run ended and stores the final evaluation.
func reportRun(out io.Writer, cfg *config.Config, res *train.Result, wall time.Duration, lastResults []tasks.Result) error {
	if err := train.PlotMetrics(cfg.Output); err != nil {
		fmt.Fprintf(out, "warning: metrics plot: %v\n", err)
	}
	label := syntheticLabel(cfg)
	if res.Interrupted {
		if res.Checkpoint == "" {
			fmt.Fprintf(out, "interrupted at step %d%s while waiting for data, before this session took a step; nothing new to save\n", res.Step, label)
			return nil
		}
		fmt.Fprintf(out, "interrupted at step %d%s: checkpoint %s; continue with --resume latest\n", res.Step, label, res.Checkpoint)
		return nil
	}
	fmt.Fprintf(out, "done: %d steps%s, final loss %.4f, %s, checkpoint %s, wall time %s\n",
		res.Step, label, res.Loss, stepTiming(res), res.Checkpoint, wall.Round(time.Second))
	if res.EvalInterrupted {
		fmt.Fprintf(out, "the final evaluation was interrupted (training is complete and saved); --resume latest with the same config evaluates the finished run\n")
		return nil
	}
	if lastResults != nil {
		PrintResults(out, lastResults, cfg.Data.Synthetic.Enabled)
		if err := WriteResults(cfg.Output, lastResults); err != nil {
			return err
		}
	}
	return nil
}

// trainSuite is the suite evaluated during and after training: eval.suite,
// else the synthetic dataset's tasks, else none.
func trainSuite(cfg *config.Config, manifest *synth.Manifest, synthDir string) (*tasks.Suite, error) {
	switch {
	case cfg.Eval.Suite != "":
		return tasks.LoadSuite(cfg.Eval.Suite)
	case manifest != nil:
		return SyntheticSuite(manifest, synthDir), nil
	}
	return nil, nil
}

// recipeDesc describes the run's recipe for the start line: steps and
// batch, parameters and what weight decay reaches, and the arithmetic.
func recipeDesc(cfg *config.Config, model clip.Config, devices int, r train.Recipe) string {
	arithmetic := model.Precision.String()
	if model.GradCheckpointing {
		arithmetic += ", gradient checkpointing"
	}
	return fmt.Sprintf("%d steps × batch %s, %s params, %s, %s",
		cfg.Train.Steps, batchDesc(cfg, devices), humanCount(clip.NumParams(model)), decayDesc(model, r), arithmetic)
}

// stepTiming describes this session's steps for the summary line.
func stepTiming(res *train.Result) string {
	switch {
	case res.SessionSteps == 0:
		return "nothing left to train (the run had finished)"
	case res.MeanStepTime == 0:
		return "mean step not measured (only the first step, which compiles, ran)"
	}
	return fmt.Sprintf("mean step %s", res.MeanStepTime.Round(time.Millisecond))
}

func batchDesc(cfg *config.Config, devices int) string {
	b, k := cfg.Train.BatchSize, cfg.Train.AccumFreq
	var parts []string
	if k > 1 {
		parts = append(parts, fmt.Sprintf("%d × accum %d", b, k))
	}
	if devices > 1 {
		parts = append(parts, fmt.Sprintf("%d per device on %d devices", b/devices, devices))
	}
	desc := fmt.Sprint(b * k)
	if len(parts) > 0 {
		desc += " (" + strings.Join(parts, "; ") + ")"
	}
	if cfg.Data.Tensors != "" {
		desc += " replayed in order from " + cfg.Data.Tensors
	}
	return desc
}

// decayDesc says which parameters AdamW's weight decay reaches, by which
// rule: the choice that differs between OpenCLIP versions.
func decayDesc(model clip.Config, r train.Recipe) string {
	if r.AdamW.WeightDecay == 0 {
		return "no weight decay"
	}
	n := train.DecayedParams(model, r)
	return fmt.Sprintf("weight decay %g (%s rule) on %d of %d tensors, %s of %s params",
		r.AdamW.WeightDecay, r.AdamW.DecayRule, n.Tensors, n.TrainedTensors, humanCount(n.Params), humanCount(n.TrainedParams))
}

// openPretrained opens --pretrained weights for a new run of model. A
// checkpoint with its own model config must describe the same model
// (the activation and the head count do not show in tensor shapes, so a
// shape check alone would let a QuickGELU model train as a GELU one); one
// without (a bare state dict such as BMC_CLIP_CF.pt) loads into the
// configured model.
func openPretrained(ctx context.Context, ref string, model clip.Config, progress io.Writer) (*checkpoint.Checkpoint, error) {
	ck, err := OpenCheckpoint(ctx, ref, checkpoint.Options{}, progress)
	if errors.Is(err, checkpoint.ErrNoConfig) {
		return OpenCheckpoint(ctx, ref, checkpoint.Options{ModelConfig: &checkpoint.ModelConfig{
			Config: model, Preprocess: clip.OpenAIPreprocess, Source: "the run config's model section"}}, progress)
	}
	if err != nil {
		return nil, err
	}
	if err := sameModel(ck.Config(), model); err != nil {
		ck.Close()
		return nil, fmt.Errorf("%s (%s): %w; set the run config's model section to the checkpoint's", ref, ck.Model.Source, err)
	}
	return ck, nil
}

// sameModel reports how a checkpoint's model config differs from the run
// config's model section. Defaults are filled in first (head_width 64,
// mlp_ratio 4), and the initial logit scale, which the weights replace,
// is ignored.
func sameModel(ckpt, run clip.Config) error {
	norm := func(c clip.Config) clip.Config {
		c.InitLogitScale = nil
		if c.VisionCfg.HeadWidth == 0 {
			c.VisionCfg.HeadWidth = 64
		}
		if c.VisionCfg.MLPRatio == 0 {
			c.VisionCfg.MLPRatio = 4
		}
		if c.TextCfg.MLPRatio == 0 {
			c.TextCfg.MLPRatio = 4
		}
		return c
	}
	ja, err := json.Marshal(norm(ckpt))
	if err != nil {
		return err
	}
	jb, err := json.Marshal(norm(run))
	if err != nil {
		return err
	}
	if string(ja) != string(jb) {
		return fmt.Errorf("the checkpoint's model config %s differs from the configured %s", ja, jb)
	}
	// A Hugging Face text model's shape is not in model_cfg's JSON.
	if ckpt.TextCfg.IsHF() {
		a, errA := ckpt.TextCfg.HFModel()
		b, errB := run.TextCfg.HFModel()
		if errA == nil && errB == nil && a != b {
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			return fmt.Errorf("the checkpoint's text model %s has the config %s, the configured one %s (text_cfg.hf_model_config)", ckpt.TextCfg.HFModelName, ja, jb)
		}
	}
	return nil
}

// describe names the model's towers and their sizes for the first line of
// a training run.
func describe(c clip.Config) string {
	return describeVision(c) + " + " + describeText(c) + fmt.Sprintf(", embed %d", c.EmbedDim)
}

func describeVision(c clip.Config) string {
	v := c.VisionCfg
	if !v.IsTimm() {
		return fmt.Sprintf("CLIP ViT (%dpx/p%d, w%d×%d)", v.ImageSize, v.PatchSize, v.Width, v.Layers)
	}
	t, err := v.Timm(c.EmbedDim)
	if err != nil {
		return "timm " + v.TimmModelName
	}
	return fmt.Sprintf("timm %s (%dpx/p%d, w%d×%d)", v.TimmModelName, t.ImageSize, t.PatchSize, t.Width, t.Depth)
}

func describeText(c clip.Config) string {
	t := c.TextCfg
	if !t.IsHF() {
		return fmt.Sprintf("text (w%d×%d)", t.Width, t.Layers)
	}
	m, err := t.HFModel()
	if err != nil {
		return "HF " + t.HFModelName
	}
	return fmt.Sprintf("HF %s (BERT w%d×%d)", t.HFModelName, m.HiddenSize, m.NumHiddenLayers)
}

func humanCount(n int) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
