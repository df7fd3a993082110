package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/eval/tasks"
)

// plantTrainShard writes a training shard holding, byte for byte, the
// images of the first n samples of each eval shard named; it returns the
// shard's path.
func plantTrainShard(t *testing.T, dir string, evalShards map[string]int) string {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	put := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	k := 0
	for shard, n := range evalShards {
		f, err := os.Open(shard)
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		for s, err := range stream.ReadShard(context.Background(), shard, f) {
			if err != nil {
				t.Fatal(err)
			}
			if i == n {
				break
			}
			ext, data, ok := s.Image()
			if !ok {
				t.Fatalf("%s: sample without image", shard)
			}
			key := strings.TrimSuffix(filepath.Base(shard), ".tar") + "_" + string(rune('a'+k))
			put(key+"."+ext, data)
			put(key+".txt", []byte("a caption"))
			k++
			i++
		}
		f.Close()
	}
	tw.Close()
	path := filepath.Join(dir, "train-000.tar")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEvalTrainOverlap plants three images of the demo's modality task and
// two of its retrieval task in a training shard: the report finds exactly
// those, the leaderboard and results carry it, --exclude-overlap scores
// the tasks without them (keeping the scores with them), and without a
// checkpoint only the report is made.
func TestEvalTrainOverlap(t *testing.T) {
	d := sharedDemo(t)
	suite, err := tasks.LoadSuite(d.suite)
	if err != nil {
		t.Fatal(err)
	}
	evalShard := func(task string) string {
		for _, tk := range suite.Tasks {
			if tk.Name == task {
				return tk.Paths()[0]
			}
		}
		t.Fatalf("no task %s", task)
		return ""
	}
	dir := t.TempDir()
	train := plantTrainShard(t, dir, map[string]int{evalShard("modality"): 3, evalShard("retrieval"): 2})

	// The report alone.
	var report bytes.Buffer
	results, err := Eval(context.Background(), EvalArgs{Suite: d.suite, TrainShards: []string{train}, OverlapDistance: -1, Output: filepath.Join(dir, "report"), Out: &report})
	if err != nil || results != nil {
		t.Fatalf("report only: %v, %d results\n%s", err, len(results), report.String())
	}
	for _, want := range []string{"exact copies only", "5 training images in 1 shards", "modality", "25.0%"} {
		if !strings.Contains(report.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, report.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "report", OverlapFile)); err != nil {
		t.Error(err)
	}
	// With a cache, a second check reads the shard's hashes from it, not
	// the shard, and reports the same.
	cacheDir := t.TempDir()
	for _, want := range []string{"0 shards' hashes from the cache", "1 shards' hashes from the cache"} {
		report.Reset()
		if _, err := Eval(context.Background(), EvalArgs{Suite: d.suite, TrainShards: []string{train}, OverlapDistance: -1, CacheDir: cacheDir, Out: &report}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(report.String(), want) || !strings.Contains(report.String(), "25.0%") || strings.Contains(report.String(), "warning") {
			t.Errorf("report lacks %q or the overlap, or warns:\n%s", want, report.String())
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(cacheDir, TrainHashesDir, "*", "*.hashes")); len(entries) != 1 {
		t.Errorf("hash cache entries %v, want the one shard's", entries)
	}

	plain, err := Eval(context.Background(), EvalArgs{Checkpoint: d.run, Suite: d.suite, Out: io.Discard, Progress: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "eval")
	report.Reset()
	excluded, err := Eval(context.Background(), EvalArgs{Checkpoint: d.run, Suite: d.suite, TrainShards: []string{train}, OverlapDistance: -1,
		ExcludeOverlap: true, Output: out, Out: &report, Progress: io.Discard})
	if err != nil {
		t.Fatalf("%v\n%s", err, report.String())
	}
	planted := map[string]int{"modality": 3, "retrieval": 2}
	for i, r := range excluded {
		o := r.Overlap
		if o == nil || o.ExactFile != planted[r.Task] || o.Near != 0 || o.Checked != plain[i].Examples || o.Excluded != planted[r.Task] {
			t.Errorf("%s: overlap %+v", r.Task, o)
			continue
		}
		if r.Examples != plain[i].Examples-planted[r.Task] {
			t.Errorf("%s: %d examples scored, want %d", r.Task, r.Examples, plain[i].Examples-planted[r.Task])
		}
		if planted[r.Task] > 0 {
			if !reflect.DeepEqual(o.MetricsWithOverlap, plain[i].Metrics) {
				t.Errorf("%s: metrics with the overlap %v, plain run %v", r.Task, o.MetricsWithOverlap, plain[i].Metrics)
			}
			for j, m := range o.Matches {
				if m.Example != j || m.Kind != tasks.MatchExactFile || m.TrainShard != train {
					t.Errorf("%s: match %+v, want example %d", r.Task, m, j)
				}
			}
		} else if !reflect.DeepEqual(r.Metrics, plain[i].Metrics) {
			t.Errorf("%s: untouched task changed: %v vs %v", r.Task, r.Metrics, plain[i].Metrics)
		}
	}
	md, _ := os.ReadFile(filepath.Join(out, "leaderboard.md"))
	for _, want := range []string{"## Training-data overlap", "**leave these images out**", "| modality | 12 | **3** | 0 | 0 | 25.0% |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("leaderboard.md lacks %q:\n%s", want, md)
		}
	}
	js, _ := os.ReadFile(filepath.Join(out, "results.json"))
	for _, want := range []string{`"train_overlap"`, `"metrics_with_overlap"`, `"kind": "exact_file"`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("results.json lacks %s", want)
		}
	}
	if !strings.Contains(report.String(), "[3 of 12 images in the training data, left out]") {
		t.Errorf("table lacks the overlap note:\n%s", report.String())
	}
	if _, err := Eval(context.Background(), EvalArgs{Checkpoint: d.run, Suite: d.suite, ExcludeOverlap: true, Out: io.Discard}); err == nil {
		t.Error("--exclude-overlap without --train-shards accepted")
	}
}
