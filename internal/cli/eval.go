package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/bmca/bmca/backend"
	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/model/clip"
	"github.com/bmca/bmca/train"
	"github.com/schollz/progressbar/v3"
)

// EvalArgs are the inputs of Eval.
type EvalArgs struct {
	// Checkpoint is a checkpoint or run directory.
	Checkpoint string
	// Suite is the suite YAML file.
	Suite string
	// Config, when set, replaces the run config stored in the checkpoint.
	Config *ConfigFlags
	// BatchSize overrides the config's eval.batch_size when positive.
	BatchSize int
	// Output, when set, receives results.json.
	Output string
	// Out receives the report; Progress the progress bars.
	Out, Progress io.Writer
}

// Eval runs cmd/eval and returns the results it printed.
func Eval(ctx context.Context, args EvalArgs) ([]tasks.Result, error) {
	checkpointPath, suitePath, batch := args.Checkpoint, args.Suite, args.BatchSize
	ckpt, err := train.Load(checkpointPath)
	if err != nil {
		return nil, err
	}
	cfg, err := runConfig(ckpt, args.Config)
	if err != nil {
		return nil, err
	}
	model := ckpt.ModelConfig
	synthetic := cfg.Data.Synthetic.Enabled
	if synthetic {
		// The held-out data is regenerated (bit-identically, from its seed) if absent.
		if _, _, err := SyntheticData(ctx, cfg, args.Out); err != nil {
			return nil, err
		}
	}
	suite, err := tasks.LoadSuite(suitePath)
	if err != nil {
		return nil, err
	}
	tok, err := Tokenizer(cfg, model)
	if err != nil {
		return nil, err
	}
	be, err := backend.Open(cfg.Backend)
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
	if batch <= 0 {
		batch = cfg.Eval.BatchSize
	}
	bars := map[string]*progressbar.ProgressBar{}
	progress := func(task string, done, total int) {
		bar, ok := bars[task]
		if !ok {
			bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(args.Progress), progressbar.OptionSetDescription(task),
				progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
			bars[task] = bar
		}
		_ = bar.Set(done)
		if done == total {
			_ = bar.Finish()
		}
	}
	fmt.Fprintf(args.Out, "evaluating %s (step %d) on suite %s\n", checkpointPath, ckpt.State.Step, suite.Name)
	results, err := tasks.Run(ctx, suite, EvalEnv(enc, tok, model, batch, progress))
	if err != nil {
		return nil, err
	}
	PrintResults(args.Out, results, synthetic)
	if args.Output != "" {
		return results, WriteResults(args.Output, results)
	}
	return results, nil
}

// runConfig is --config when given, else the run config saved in the checkpoint.
func runConfig(ckpt *train.Checkpoint, flags *ConfigFlags) (*config.Config, error) {
	if flags != nil && flags.Path != "" {
		return flags.Load()
	}
	if len(ckpt.State.RunConfig) == 0 {
		return nil, fmt.Errorf("the checkpoint has no run config (an exported model?): pass --config to say which tokenizer to use")
	}
	cfg := config.Default()
	if err := json.Unmarshal(ckpt.State.RunConfig, &cfg); err != nil {
		return nil, fmt.Errorf("checkpoint run config: %w", err)
	}
	return &cfg, nil
}
