package train

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/bmca/bmca/model/transformer"
)

// dataRate is the metrics field of the data pipeline's own samples/s.
const dataRate = "data_samples_per_s"

// metricsLog appends a run's metrics to MetricsFile, one JSON object a
// line: "kind": "train" lines every LogEvery steps and at the last step,
// "kind": "eval" lines after each evaluation. A resumed run appends to the
// same file.
type metricsLog struct {
	f *os.File
}

// openMetrics opens dir's metrics file for appending, creating it.
func openMetrics(dir string) (*metricsLog, error) {
	f, err := os.OpenFile(filepath.Join(dir, MetricsFile), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &metricsLog{f}, nil
}

// train logs a step: loss, learning rate, logit scale, gradient norm,
// throughput, data wait and step time, and, when the hooks have them, the
// data stage's own speed, skipped samples and counters.
func (m *metricsLog) train(r StepReport, hooks Hooks) error {
	s := r.Stats
	fields := map[string]any{"step": r.Step, "kind": "train", "loss": s.Loss, "lr": s.LR,
		"logit_scale": s.LogitScale, "grad_norm": s.GradNorm, "samples_per_s": r.SamplesPerSec,
		"data_wait": r.DataWait, "step_ms": float64(s.Duration.Microseconds()) / 1000}
	if hooks.Data != nil {
		fields[dataRate], fields["skipped"] = r.Data.SamplesPerSec, r.Data.Skipped
	}
	if hooks.DataStats != nil {
		fields["data"] = hooks.DataStats()
	}
	return m.write(fields)
}

// eval logs an evaluation's metrics at step, with the precision the
// encoder computed them in ("precision": "f32", "tf32" or "bf16").
func (m *metricsLog) eval(step int, p transformer.Precision, metrics map[string]float64) error {
	fields := map[string]any{"step": step, "kind": "eval", "precision": p.String()}
	for k, v := range metrics {
		fields[k] = v
	}
	return m.write(fields)
}

func (m *metricsLog) write(fields map[string]any) error {
	line, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	_, err = m.f.Write(append(line, '\n'))
	return err
}

// Close closes the file.
func (m *metricsLog) Close() error { return m.f.Close() }
