package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bmca/bmca/train"
)

// runMainEnv makes the test binary run the command itself (TestMain), so
// tests start real train processes, with real signals, without a go build.
const runMainEnv = "BMCA_TEST_RUN_TRAIN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer a child process and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// trainCommand is `train` with args, its output collected.
func trainCommand(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	return cmd, &stdout, &stderr
}

// writeConfig writes a tiny synthetic run config into dir.
func writeConfig(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "run.yaml")
	text := `model: {name: tiny}
tokenizer: {name: byte-level}
data:
  synthetic: {enabled: true, dir: synth, seed: 3, train_samples: 64, eval_samples_per_task: 4}
  shuffle_buffer: 16
train: {steps: 100000, batch_size: 4, lr: 1.0e-3, warmup: 1, seed: 1, log_every: 1}
eval: {batch_size: 16}
`
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// tail is the end of a command's output (its progress bar redraws a lot).
func tail(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTwoRunsOneFolder starts two train processes with different seeds on
// one output folder: the second is refused, naming the first (pid, host,
// start time), and leaves nothing behind; the first, stopped with SIGTERM,
// exits 0 with a checkpoint and metrics of its own seed only.
func TestTwoRunsOneFolder(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock and no SIGTERM on Windows")
	}
	dir := t.TempDir()
	cfg := writeConfig(t, dir)
	out := filepath.Join(dir, "run")
	first, stdout1, stderr1 := trainCommand(t, "--config", cfg, "--output", out, "--set", "train.seed=1")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	metrics := filepath.Join(out, train.MetricsFile)
	waitFor(t, "the first run's first step", 3*time.Minute, func() bool {
		data, _ := os.ReadFile(metrics)
		return bytes.Contains(data, []byte(`"kind":"train"`))
	})

	second, _, stderr2 := trainCommand(t, "--config", cfg, "--output", out, "--set", "train.seed=2")
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	// Refused at once, or not at all (it would train for 100000 steps).
	refused := time.AfterFunc(time.Minute, func() { second.Process.Kill() })
	err := second.Wait()
	refused.Stop()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("second run: %v, want exit status 1 within a minute; stderr ends:\n%s", err, tail(stderr2.String()))
	}
	host, _ := os.Hostname()
	if want := fmt.Sprintf("is in use by process %d on %s since ", first.Process.Pid, host); !strings.Contains(stderr2.String(), want) {
		t.Errorf("second run's error does not name the first run (%q):\n%s", want, tail(stderr2.String()))
	}

	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first run after SIGTERM: %v, want exit status 0\nstdout:\n%s\nstderr ends:\n%s", err, stdout1, tail(stderr1.String()))
	}
	if !strings.Contains(stdout1.String(), "interrupted at step") {
		t.Errorf("first run's report:\n%s", stdout1)
	}
	data, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	last := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m struct{ Step int }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if m.Step != last+1 {
			t.Fatalf("metrics.jsonl steps are not one run's 1, 2, 3, …:\n%s", data)
		}
		last = m.Step
	}
	ckpt, err := train.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if ckpt.State.Seed != 1 || ckpt.State.Step != last {
		t.Errorf("latest checkpoint: seed %d step %d, want seed 1 step %d", ckpt.State.Seed, ckpt.State.Step, last)
	}
}
