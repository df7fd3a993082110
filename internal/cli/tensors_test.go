package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/train"
)

// microReplay writes a run config that replays the committed micro batch
// file (3 batches of 6) into dir, with trainYAML as the train section's
// extra keys, and loads it.
func microReplay(t *testing.T, dir, trainYAML string) *config.Config {
	t.Helper()
	micro, err := filepath.Abs(filepath.Join("testdata", "openclip-train-step", "micro"))
	if err != nil {
		t.Fatal(err)
	}
	modelJSON, err := os.ReadFile(filepath.Join(micro, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("model: %s\ntokenizer: {name: byte-level}\ndata: {tensors: %q}\ntrain: {lr: 1.0e-3, warmup: 1, log_every: 1, pretrained: %q, %s}\noutput: run\n",
		bytes.TrimSpace(modelJSON), filepath.Join(micro, "batches.safetensors"), filepath.Join(micro, "weights.safetensors"), trainYAML)
	path := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestBatchFileReplayResumes stops a replay after 2 of 3 steps and resumes
// it: the checkpoint's stream position is the step index, and the resumed
// run ends with the same weights, bit for bit, as one that ran through
// (accumulating over two micro-batches per file batch, so the position also
// has to land on batch boundaries).
func TestBatchFileReplayResumes(t *testing.T) {
	through := microReplay(t, t.TempDir(), "steps: 3, accum_freq: 2, schedule: const")
	var report bytes.Buffer
	if err := Train(context.Background(), through, TrainArgs{Out: &report, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if want := "3 steps × batch 6 (3 × accum 2) replayed in order from "; !strings.Contains(report.String(), want) {
		t.Errorf("start line lacks %q:\n%s", want, report.String())
	}

	dir := t.TempDir()
	first := microReplay(t, dir, "steps: 2, accum_freq: 2, schedule: const")
	if err := Train(context.Background(), first, TrainArgs{Out: io.Discard, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	stopped, err := train.Load(first.Output)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(string(stopped.State.Stream)), ""); stopped.State.Step != 2 || got != `{"step":2}` {
		t.Errorf("checkpoint after step %d holds stream position %s, want step 2 and {\"step\":2}", stopped.State.Step, got)
	}
	resumed := microReplay(t, dir, "steps: 3, accum_freq: 2, schedule: const")
	if err := Train(context.Background(), resumed, TrainArgs{Resume: "latest", Out: io.Discard, Progress: io.Discard}); err != nil {
		t.Fatal(err)
	}
	read := func(cfg *config.Config) []byte {
		data, err := os.ReadFile(filepath.Join(cfg.Output, train.CheckpointsDir, train.StepDirName(3), train.WeightsFile))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if !bytes.Equal(read(through), read(resumed)) {
		t.Error("2 steps + resume to 3 ended with other weights than 3 steps in one go")
	}
	a, b := trainMetrics(t, filepath.Join(through.Output, train.MetricsFile)), trainMetrics(t, filepath.Join(resumed.Output, train.MetricsFile))
	if len(a) != 3 || len(b) != 3 || a[2] != b[2] {
		t.Errorf("step 3 logged %+v in one go, %+v resumed", a, b)
	}
}

// TestBatchFileRefusesWhatItCannotReplay checks the errors a user meets
// before any training: they name the file, the tensor and the setting.
func TestBatchFileRefusesWhatItCannotReplay(t *testing.T) {
	for _, c := range []struct{ train, want string }{
		{"steps: 4", `tensor "pixels" holds 3 batches, but train.steps is 4`},
		{"steps: 3, accum_freq: 4", "batches of 6 pairs do not split into train.accum_freq = 4"},
	} {
		cfg := microReplay(t, t.TempDir(), c.train)
		err := Train(context.Background(), cfg, TrainArgs{Out: io.Discard, Progress: io.Discard})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "batches.safetensors") || !strings.Contains(err.Error(), "data.tensors") {
			t.Errorf("%s: error %v, want one naming data.tensors, the file and %q", c.train, err, c.want)
		}
	}
}

// TestBatchFileRefusesAShardPosition: resuming a shard-reading run's
// checkpoint with data.tensors must not silently restart at batch 0.
func TestBatchFileRefusesAShardPosition(t *testing.T) {
	cfg := microReplay(t, t.TempDir(), "steps: 3")
	src, err := openTensorSource(cfg, cfg.Model.Config)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, err := range src.Batches(context.Background(), []byte(`{"epoch":0,"samples":64}`)) {
		if err == nil || !strings.Contains(err.Error(), "not a data.tensors position") {
			t.Errorf("a stream position from shards gave %v", err)
		}
		break
	}
}
