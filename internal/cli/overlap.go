package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bmca/bmca/data/remote"
	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/eval/contamination"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/internal/atomicfile"
	"github.com/schollz/progressbar/v3"
)

// OverlapFile is the contamination report cmd/eval writes to --output.
const OverlapFile = "train_overlap.json"

// TrainHashesDir is the folder of the feature cache (EvalArgs.CacheDir)
// that holds the contamination check's per-shard hashes
// (contamination.HashCache).
const TrainHashesDir = "train-hashes"

// overlapReports hashes the suite's evaluation images, streams the
// training shards once and returns each task's report (see
// eval/contamination), printing a summary.
func overlapReports(ctx context.Context, args EvalArgs, suite *tasks.Suite) (map[string]*tasks.Overlap, error) {
	idx := contamination.NewIndex(args.OverlapDistance)
	var bars map[string]*progressbar.ProgressBar
	var progress func(task string, done int)
	if args.Progress != nil {
		bars = map[string]*progressbar.ProgressBar{}
		progress = func(task string, done int) {
			bar, ok := bars[task]
			if !ok {
				bar = progressbar.NewOptions(-1, progressbar.OptionSetWriter(args.Progress), progressbar.OptionSetDescription("hashing "+task),
					progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
				bars[task] = bar
			}
			_ = bar.Set(done)
		}
	}
	fmt.Fprintf(args.Out, "contamination check: hashing the evaluation images of suite %s\n", suite.Name)
	absent, err := idx.AddSuite(ctx, suite, nil, progress)
	for _, bar := range bars {
		_ = bar.Finish()
	}
	if err != nil {
		return nil, fmt.Errorf("contamination check: %w", err)
	}
	mode := fmt.Sprintf("exact copies and near-duplicates (perceptual hashes ≤ %d bits apart)", args.OverlapDistance)
	if args.OverlapDistance < 0 {
		mode = "exact copies only (no training image decoded)"
	}
	fmt.Fprintf(args.Out, "contamination check: %d evaluation images hashed (%d tasks without data); scanning %q for %s\n",
		idx.Len(), len(absent), args.TrainShards, mode)
	var scanBar *progressbar.ProgressBar
	opts := contamination.ScanOptions{Rehash: args.OverlapRehash}
	if args.CacheDir != "" {
		opts.Cache = contamination.NewHashCache(filepath.Join(args.CacheDir, TrainHashesDir))
	}
	var warnMu sync.Mutex
	opts.Warn = func(err error) {
		warnMu.Lock()
		defer warnMu.Unlock()
		fmt.Fprintf(args.Out, "contamination check: warning: %v\n", err)
	}
	if args.Progress != nil {
		scanBar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(args.Progress), progressbar.OptionSetDescription("scanning training images"),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(200*time.Millisecond))
		opts.Progress = func(s contamination.Stats) {
			scanBar.Describe(fmt.Sprintf("scanning training images (%d shards, %.0f images/s)", s.Shards, float64(s.Images)/max(s.Elapsed.Seconds(), 1e-9)))
			_ = scanBar.Set64(s.Images)
		}
	}
	// Gated Hugging Face datasets (BIOMEDICA) need the token, as training does.
	cfg := stream.Config{Shards: args.TrainShards, HTTP: remote.Options{Token: remote.Secret(os.Getenv("HF_TOKEN"))}}
	stats, err := idx.Scan(ctx, cfg, opts)
	if scanBar != nil {
		_ = scanBar.Finish()
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(args.Out, "contamination check: %d training images in %d shards scanned in %s (%.0f images/s; %d shards' hashes from the cache, %d perceptual hashes read from the json, %d images decoded for one, %d verified, %d undecodable)\n",
		stats.Images, stats.Shards, stats.Elapsed.Round(10*time.Millisecond), float64(stats.Images)/max(stats.Elapsed.Seconds(), 1e-9),
		stats.CachedShards, stats.Stored, stats.Perceptual, stats.Verified, stats.Undecodable)
	reports := idx.Reports()
	printOverlap(args.Out, suite, reports, absent)
	return reports, nil
}

// printOverlap writes one line per task: how many of its images are in the
// training data.
func printOverlap(w io.Writer, suite *tasks.Suite, reports map[string]*tasks.Overlap, absent map[string]string) {
	width := len("task")
	for _, t := range suite.Tasks {
		width = max(width, len(t.Name))
	}
	fmt.Fprintf(w, "\nTraining-data overlap\n%-*s %8s %10s %11s %6s %8s\n", width, "task", "checked", "same file", "same pixels", "near", "overlap")
	for _, t := range suite.Tasks {
		o := reports[t.Name]
		if o == nil {
			reason := absent[t.Name]
			if reason == "" {
				reason = "not checked"
			}
			fmt.Fprintf(w, "%-*s %8s  %s\n", width, t.Name, "-", reason)
			continue
		}
		share := 0.0
		if o.Checked > 0 {
			share = 100 * float64(o.Overlapping()) / float64(o.Checked)
		}
		fmt.Fprintf(w, "%-*s %8d %10d %11d %6d %7.1f%%\n", width, t.Name, o.Checked, o.ExactFile, o.ExactPixels, o.Near, share)
	}
}

// writeOverlap stores the reports as DIR/train_overlap.json, in suite
// order.
func writeOverlap(dir string, suite *tasks.Suite, reports map[string]*tasks.Overlap) (string, error) {
	type entry struct {
		Task string `json:"dataset"`
		*tasks.Overlap
	}
	var out []entry
	for _, t := range suite.Tasks {
		if o := reports[t.Name]; o != nil {
			out = append(out, entry{t.Name, o})
		}
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, OverlapFile)
	return path, atomicfile.WriteFile(path, append(data, '\n'), 0o644)
}
