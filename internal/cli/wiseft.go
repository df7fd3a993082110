package cli

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/bmca/bmca/model/merge"
	"github.com/bmca/bmca/train"
)

// DefaultAlphas is the WiSE-FT sweep of cmd/eval --alphas.
const DefaultAlphas = "0:1:0.1"

// WiseFTChart is the plot of the sweep written to --output.
const WiseFTChart = "wise-ft.png"

// ParseAlphas reads a sweep: "START:STOP:STEP" (STOP included when the
// steps land on it, e.g. 0:1:0.1 gives 0, 0.1, …, 1) or a comma-separated
// list ("0,0.25,0.5"). Values are rounded to 9 decimals so that 0.1·3 is
// 0.3; they must be finite and distinct.
func ParseAlphas(s string) ([]float64, error) {
	round := func(v float64) float64 { return math.Round(v*1e9) / 1e9 }
	var out []float64
	if parts := strings.Split(s, ":"); len(parts) == 3 {
		var v [3]float64
		for i, p := range parts {
			f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("alphas %q: %q is not a number (want START:STOP:STEP or a list a,b,c)", s, p)
			}
			v[i] = f
		}
		start, stop, step := v[0], v[1], v[2]
		if step <= 0 || stop < start {
			return nil, fmt.Errorf("alphas %q: want START ≤ STOP and STEP > 0", s)
		}
		n := int(math.Floor((stop-start)/step + 1e-9))
		if n > 1000 {
			return nil, fmt.Errorf("alphas %q: %d values; a sweep of more than 1000 evaluations is surely a typo", s, n+1)
		}
		for i := 0; i <= n; i++ {
			out = append(out, round(start+float64(i)*step))
		}
		return out, nil
	}
	seen := map[float64]bool{}
	for _, p := range strings.Split(s, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("alphas %q: %q is not a number (want START:STOP:STEP or a list a,b,c)", s, p)
		}
		f = round(f)
		if seen[f] {
			return nil, fmt.Errorf("alphas %q: %g listed twice", s, f)
		}
		seen[f] = true
		out = append(out, f)
	}
	return out, nil
}

// AlphaLabel is the leaderboard label of a WiSE-FT mix.
func AlphaLabel(alpha float64) string { return fmt.Sprintf("α=%g", alpha) }

// wiseSweep holds the two checkpoints of a WiSE-FT sweep, loaded once for
// all its mixes.
type wiseSweep struct {
	basePath, otherPath string
	once                sync.Once
	base, other         *train.Checkpoint
	baseDir, otherDir   string
	err                 error

	digestOnce sync.Once
	digest     []byte // SHA-256 of both weights files, for the cache key
	digestErr  error
}

// wiseMix is one mix of a sweep.
type wiseMix struct {
	sweep *wiseSweep
	alpha float64
}

// wiseModels are the specs of a sweep, one per alpha, in order: the first
// (the smallest α, usually 0, the base itself) is the reference of the
// paired comparisons.
func wiseModels(paths []string, alphas []float64) ([]modelSpec, error) {
	if len(paths) != 2 {
		return nil, fmt.Errorf("--wise-ft needs two checkpoints, BASE and OTHER, got %d", len(paths))
	}
	if len(alphas) == 0 {
		return nil, fmt.Errorf("--wise-ft needs --alphas")
	}
	sweep := &wiseSweep{basePath: paths[0], otherPath: paths[1]}
	var out []modelSpec
	for _, a := range alphas {
		out = append(out, modelSpec{label: AlphaLabel(a), path: fmt.Sprintf("wise-ft α=%g of %s and %s", a, paths[0], paths[1]),
			wise: &wiseMix{sweep: sweep, alpha: a}})
	}
	return out, nil
}

// load reads both checkpoints (once) and checks they can be mixed.
func (s *wiseSweep) load(ctx context.Context, progress io.Writer) error {
	s.once.Do(func() {
		open := func(ref string) (*train.Checkpoint, string, error) {
			return loadCheckpoint(ctx, ref, progress) // as every checkpoint cmd/eval evaluates
		}
		if s.base, s.baseDir, s.err = open(s.basePath); s.err != nil {
			s.err = fmt.Errorf("--wise-ft BASE: %w", s.err)
			return
		}
		if s.other, s.otherDir, s.err = open(s.otherPath); s.err != nil {
			s.err = fmt.Errorf("--wise-ft OTHER: %w", s.err)
			return
		}
		if a, b := s.base.PreprocessConfig(), s.other.PreprocessConfig(); a != b {
			s.err = fmt.Errorf("--wise-ft: %s and %s preprocess images differently (preprocess_cfg %+v and %+v); a mix of the two has no one right input", s.basePath, s.otherPath, a, b)
			return
		}
		if diffs := merge.ConfigDiff(s.base.ModelConfig, s.other.ModelConfig); len(diffs) > 0 {
			s.err = fmt.Errorf("--wise-ft: %s and %s are different architectures; only models of one architecture can be interpolated:\n  %s",
				s.basePath, s.otherPath, strings.Join(diffs, "\n  "))
		}
	})
	return s.err
}

// open mixes the weights: a checkpoint with the base's config and run
// config, a description, and what identifies the mix for the feature cache
// (both weights files and alpha).
func (m *wiseMix) open(ctx context.Context, progress io.Writer) (*train.Checkpoint, string, func(io.Writer) error, error) {
	s := m.sweep
	if err := s.load(ctx, progress); err != nil {
		return nil, "", nil, err
	}
	mixed, err := merge.Interpolate(s.base.Weights, s.other.Weights, m.alpha)
	if err != nil {
		return nil, "", nil, err
	}
	ck := &train.Checkpoint{ModelConfig: s.base.ModelConfig, Preprocess: s.base.Preprocess, Weights: mixed, State: s.base.State}
	id := func(w io.Writer) error {
		s.digestOnce.Do(func() { // read each file once for the whole sweep
			h := sha256.New()
			if s.digestErr = hashFiles(h, s.base.Files); s.digestErr == nil {
				s.digestErr = hashFiles(h, s.other.Files)
			}
			s.digest = h.Sum(nil)
		})
		if s.digestErr != nil {
			return s.digestErr
		}
		fmt.Fprintf(w, "wise-ft %x\n", s.digest)
		return binary.Write(w, binary.LittleEndian, m.alpha)
	}
	return ck, fmt.Sprintf("wise-ft α=%g of %s and %s", m.alpha, s.baseDir, s.otherDir), id, nil
}
