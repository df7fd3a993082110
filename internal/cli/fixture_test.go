package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/bmca/bmca/config"
	"github.com/bmca/bmca/data/synth"
	"github.com/bmca/bmca/train"
	"go.yaml.in/yaml/v3"
)

// demoFixture is a tiny demo run trained once per test binary and shared
// by the tests that only read it: two checkpoints of one architecture
// (steps 2 and 4) and its synthetic held-out suite.
type demoFixture struct {
	run          string // run directory (latest: step 4)
	step2, step4 string // checkpoint directories
	suite        string // suite YAML over the synthetic held-out data
	suiteYAML    []byte // its text, for tests that extend it
}

var (
	demoOnce sync.Once
	demo     demoFixture
	demoErr  error
	demoDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if demoDir != "" {
		os.RemoveAll(demoDir)
	}
	os.Exit(code)
}

// sharedDemo trains the fixture on first use.
func sharedDemo(t *testing.T) demoFixture {
	t.Helper()
	demoOnce.Do(func() { demo, demoErr = trainDemo() })
	if demoErr != nil {
		t.Fatalf("demo fixture: %v", demoErr)
	}
	return demo
}

func trainDemo() (demoFixture, error) {
	var err error
	if demoDir, err = os.MkdirTemp("", "bmca-cli-demo-"); err != nil {
		return demoFixture{}, err
	}
	text := `model: {name: tiny}
tokenizer: {name: byte-level}
data:
  synthetic: {enabled: true, dir: synth, seed: 7, train_samples: 96, eval_samples_per_task: 12}
  shuffle_buffer: 32
train: {steps: 4, batch_size: 8, lr: 2.0e-3, warmup: 1, seed: 9, checkpoint_every: 2, keep_checkpoints: 2, log_every: 2}
eval: {batch_size: 16}
output: run
`
	cfgPath := filepath.Join(demoDir, "run.yaml")
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		return demoFixture{}, err
	}
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		return demoFixture{}, err
	}
	cfg.Output = filepath.Join(demoDir, "run")
	if err := Train(context.Background(), cfg, TrainArgs{Out: io.Discard, Progress: io.Discard}); err != nil {
		return demoFixture{}, err
	}
	m, err := synth.ReadManifest(cfg.Data.Synthetic.Dir)
	if err != nil {
		return demoFixture{}, err
	}
	suiteYAML, err := yaml.Marshal(SyntheticSuite(m, cfg.Data.Synthetic.Dir))
	if err != nil {
		return demoFixture{}, err
	}
	f := demoFixture{run: cfg.Output, suite: filepath.Join(demoDir, "suite.yaml"), suiteYAML: suiteYAML,
		step2: filepath.Join(cfg.Output, train.CheckpointsDir, train.StepDirName(2)),
		step4: filepath.Join(cfg.Output, train.CheckpointsDir, train.StepDirName(4))}
	if err := os.WriteFile(f.suite, suiteYAML, 0o644); err != nil {
		return demoFixture{}, err
	}
	for _, d := range []string{f.step2, f.step4} {
		if _, err := os.Stat(filepath.Join(d, train.WeightsFile)); err != nil {
			return demoFixture{}, fmt.Errorf("checkpoint missing: %w", err)
		}
	}
	return f, nil
}
