// Command merge interpolates two checkpoints of one architecture in weight
// space, as WiSE-FT does: θ = (1−α)·θ_base + α·θ_other over every tensor.
// The result is an OpenCLIP checkpoint directory (open_clip_model.safetensors
// + open_clip_config.json with the base's model config and preprocessing)
// that every bmca command opens; it also carries the base's run config
// (training_state.json, for the tokenizer) and merge.json saying how it was
// made.
//
//	go run ./cmd/merge --alpha 0.5 runs/openclip-base runs/bmc-continued --output runs/wise-ft-0.5
//
// To sweep α and evaluate each mix without writing them, see
// cmd/eval --wise-ft.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bmca/bmca/cmd/internal/modelflag"
	"github.com/bmca/bmca/internal/atomicfile"
	"github.com/bmca/bmca/internal/cli"
	"github.com/bmca/bmca/internal/cli/cliflag"
	"github.com/bmca/bmca/model/checkpoint"
	"github.com/bmca/bmca/model/merge"
	"github.com/bmca/bmca/train"
)

func main() { cli.Main("merge", run) }

// MergeFile records how a merged checkpoint was made.
const MergeFile = "merge.json"

// provenance is merge.json.
type provenance struct {
	Method string  `json:"method"`
	Alpha  float64 `json:"alpha"`
	// Base and Other are the inputs as given, with the weights files read.
	Base      string `json:"base"`
	Other     string `json:"other"`
	BaseFile  string `json:"base_weights"`
	OtherFile string `json:"other_weights"`
	Formula   string `json:"formula"`
	CreatedAt string `json:"created_at"`
}

// run is the command: flags in, files out, a summary on stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	alphaText := fs.String("alpha", "", "mixing weight `A`: 0 gives BASE, 1 gives OTHER, 0.5 their mean (WiSE-FT's α; values outside [0, 1] extrapolate)")
	var out string
	cliflag.Output(fs, &out, "output `DIR` (created if missing; refused if it is BASE's or OTHER's own directory)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: merge --alpha A BASE OTHER --output DIR\n\n"+
			"Writes θ = (1−A)·θ_BASE + A·θ_OTHER for every tensor (computed in float64, stored in BASE's\n"+
			"dtypes; A = 0 and 1 reproduce BASE and OTHER bit for bit) as an OpenCLIP checkpoint directory\n"+
			"with BASE's model config and preprocessing. BASE and OTHER are bmca checkpoint or run\n"+
			"directories, OpenCLIP or Hugging Face directories, or weight files, of one architecture:\n"+
			"models that differ are refused with the differences listed.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var inputs []string
	for { // flags may come before, between or after the two paths
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		inputs = append(inputs, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(inputs) != 2 || *alphaText == "" || out == "" {
		fs.Usage()
		return fmt.Errorf("want --alpha A BASE OTHER --output DIR (got %d checkpoints: %q)", len(inputs), inputs)
	}
	alpha, err := strconv.ParseFloat(*alphaText, 64)
	if err != nil || math.IsNaN(alpha) || math.IsInf(alpha, 0) {
		return fmt.Errorf("--alpha %q: want a number such as 0.5", *alphaText)
	}
	base, err := open(ctx, inputs[0], stderr)
	if err != nil {
		return fmt.Errorf("BASE: %w", err)
	}
	defer base.ck.Close()
	other, err := open(ctx, inputs[1], stderr)
	if err != nil {
		return fmt.Errorf("OTHER: %w", err)
	}
	defer other.ck.Close()
	for _, in := range []*input{base, other} {
		if same, _ := sameDir(out, filepath.Dir(in.ck.Path)); same {
			return fmt.Errorf("--output %s is where %s's weights are: write the merge elsewhere", out, in.path)
		}
	}
	if diffs := merge.ConfigDiff(base.ck.Config(), other.ck.Config()); len(diffs) > 0 {
		return fmt.Errorf("%s and %s are different architectures; only models of one architecture can be interpolated:\n  %s",
			inputs[0], inputs[1], strings.Join(diffs, "\n  "))
	}
	if a, b := base.ck.Model.Preprocess, other.ck.Model.Preprocess; a != b {
		return fmt.Errorf("%s and %s preprocess images differently (preprocess_cfg %+v and %+v); a mix of the two has no one right input", inputs[0], inputs[1], a, b)
	}
	baseSD, err := base.ck.StateDict()
	if err != nil {
		return err
	}
	otherSD, err := other.ck.StateDict()
	if err != nil {
		return err
	}
	mixed, err := merge.Interpolate(baseSD, otherSD, alpha)
	if err != nil {
		return err
	}
	files, err := checkpoint.WriteOpenCLIP(out, base.ck.Config(), base.ck.Model.Preprocess, mixed)
	if err != nil {
		return err
	}
	if base.runConfig != nil {
		state, err := json.MarshalIndent(train.State{RunConfig: base.runConfig, Seed: base.seed, SavedAt: time.Now().UTC().Format(time.RFC3339)}, "", "  ")
		if err != nil {
			return err
		}
		p := filepath.Join(out, train.StateFile)
		if err := atomicfile.WriteFile(p, state, 0o644); err != nil {
			return err
		}
		files = append(files, p)
	}
	prov, err := json.MarshalIndent(provenance{Method: "wise-ft", Alpha: alpha, Base: inputs[0], Other: inputs[1],
		BaseFile: base.ck.Path, OtherFile: other.ck.Path, Formula: "(1-alpha)*base + alpha*other, per tensor, in float64",
		CreatedAt: time.Now().UTC().Format(time.RFC3339)}, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(out, MergeFile)
	if err := atomicfile.WriteFile(p, append(prov, '\n'), 0o644); err != nil {
		return err
	}
	files = append(files, p)
	fmt.Fprintf(stdout, "merged %s and %s at alpha %g (%d tensors): wrote %s\n", inputs[0], inputs[1], alpha, len(mixed), strings.Join(files, ", "))
	return nil
}

// input is an opened checkpoint and the run config that came with it.
type input struct {
	path      string
	ck        *checkpoint.Checkpoint
	runConfig json.RawMessage // nil when the checkpoint has no bmca training state
	seed      uint64
}

// open is the one place cmd/merge opens a model: through the same flags
// logic as cmd/export and cmd/embed (hub references included, downloads
// reported on progress), plus the bmca training state (for the run config)
// when there is one.
func open(ctx context.Context, path string, progress io.Writer) (*input, error) {
	ck, err := (&modelflag.Flags{Checkpoint: path}).Open(ctx, progress)
	if err != nil {
		return nil, err
	}
	in := &input{path: path, ck: ck}
	if ck.Training != nil {
		in.runConfig, in.seed = ck.Training.RunConfig, ck.Training.Seed
	}
	return in, nil
}

// sameDir reports whether a and b name the same directory.
func sameDir(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}
