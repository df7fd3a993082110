package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/data/synth"
	"github.com/bmca/bmca/train"
)

// synthShards writes a small synthetic dataset and returns its training
// shards' contents, in order.
func synthShards(t *testing.T, samplesPerShard, shards int) [][]byte {
	t.Helper()
	sc := synth.DefaultConfig()
	sc.TrainSamples, sc.SamplesPerShard, sc.EvalSamplesPerTask = samplesPerShard*shards, samplesPerShard, 4
	dir := filepath.Join(t.TempDir(), "synth")
	m, err := synth.Write(context.Background(), dir, sc)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, s := range m.Train.Shards {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(s)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// trainFromYAML writes text as run.yaml in a fresh directory, loads it as
// cmd/train does and trains; it returns the run directory.
func trainFromYAML(t *testing.T, text string) string {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "run.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Train(context.Background(), cfg, TrainArgs{Out: &out, Progress: io.Discard}); err != nil {
		t.Fatalf("train: %v\n%s", err, out.String())
	}
	return cfg.Output
}

const tinyRun = `model: {name: tiny}
tokenizer: {name: byte-level}
train: {steps: 2, batch_size: 4, lr: 1.0e-3, warmup: 1, log_every: 1}
output: run
`

// TestTrainStreamsHTTPShardsFromConfig is the user's path for remote data:
// a YAML config names http:// shards by a brace range, and training streams
// them from the server (a URL must never be resolved as a path relative to
// the config file).
func TestTrainStreamsHTTPShardsFromConfig(t *testing.T) {
	shards := synthShards(t, 8, 2)
	var mu sync.Mutex
	served := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		if _, err := fmt.Sscanf(r.URL.Path, "/x/%06d.tar", &i); err != nil || i >= len(shards) {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		served[r.URL.Path]++
		mu.Unlock()
		http.ServeContent(w, r, r.URL.Path, time.Unix(0, 0), bytes.NewReader(shards[i]))
	}))
	defer srv.Close()

	run := trainFromYAML(t, tinyRun+fmt.Sprintf("data: {train_shards: [\"%s/x/{000000..%06d}.tar\"], shuffle_buffer: 4}\n", srv.URL, len(shards)-1))
	ck, err := train.Load(run)
	if err != nil {
		t.Fatal(err)
	}
	if ck.State.Step != 2 {
		t.Errorf("checkpoint at step %d, want 2", ck.State.Step)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(served) == 0 {
		t.Error("no shard was requested from the server")
	}
}

// TestTrainStreamsBiomedicaMirrorFromConfig names the published BIOMEDICA
// layout by its short spec with a local mirror given relative to the
// config file: the spec stays a spec, its base is resolved against the
// config's directory, and training reads the mirror's shards.
func TestTrainStreamsBiomedicaMirrorFromConfig(t *testing.T) {
	shards := synthShards(t, 8, 2)
	dir := t.TempDir()
	// The mirror holds the license subset "other" (000000..000114), each
	// file a copy of one of the synthetic shards.
	mirror := filepath.Join(dir, "mirror", "other")
	if err := os.MkdirAll(mirror, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= 114; i++ {
		name := filepath.Join(mirror, fmt.Sprintf("%06d.tar", i))
		if err := os.WriteFile(name, shards[i%len(shards)], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfgPath := filepath.Join(dir, "run.yaml")
	text := tinyRun + "data: {train_shards: [\"biomedica:other@mirror\"], shuffle_buffer: 4}\n"
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// Loaded from another working directory: the mirror is found next to
	// the config, not next to the process.
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "biomedica:other@" + filepath.Join(dir, "mirror"); cfg.Data.TrainShards[0] != want {
		t.Fatalf("train_shards resolved to %q, want %q", cfg.Data.TrainShards[0], want)
	}
	var out bytes.Buffer
	if err := Train(context.Background(), cfg, TrainArgs{Out: &out, Progress: io.Discard}); err != nil {
		t.Fatalf("train: %v\n%s", err, out.String())
	}
	ck, err := train.Load(cfg.Output)
	if err != nil {
		t.Fatal(err)
	}
	if ck.State.Step != 2 {
		t.Errorf("checkpoint at step %d, want 2", ck.State.Step)
	}
	if !strings.HasPrefix(cfg.Output, dir) {
		t.Errorf("output %s is not next to the config", cfg.Output)
	}
}
