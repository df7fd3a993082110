package train

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
)

// TestLoopReportsTheDataStage checks that the data stage's own report
// reaches the step report (the progress bar) and metrics.jsonl, and that
// the metrics plot still draws with it.
func TestLoopReportsTheDataStage(t *testing.T) {
	be := graphtest.Backend(t)
	cfg := tinyConfig()
	opts := testOptions(t, cfg, 3)
	calls := 0
	var reports []StepReport
	_, err := Loop(context.Background(), be, cfg, opts, newCyclingSource(cfg, 2, 4), Hooks{
		Data: func() DataReport {
			calls++
			return DataReport{SamplesPerSec: 1000 * float64(calls), Skipped: int64(calls)}
		},
		OnStep: func(r StepReport) { reports = append(reports, r) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 3 || calls != 3 {
		t.Fatalf("%d step reports, %d data reports; want 3 and 3", len(reports), calls)
	}
	for i, r := range reports {
		if r.Data.SamplesPerSec != 1000*float64(i+1) || r.Data.Skipped != int64(i+1) {
			t.Errorf("step %d reports data %+v", r.Step, r.Data)
		}
	}
	f, err := os.Open(filepath.Join(opts.Output, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var rec struct {
			Kind     string  `json:"kind"`
			Step     int     `json:"step"`
			DataRate float64 `json:"data_samples_per_s"`
			Skipped  int64   `json:"skipped"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Kind != "train" {
			continue
		}
		lines++
		if rec.DataRate != 1000*float64(rec.Step) || rec.Skipped != int64(rec.Step) {
			t.Errorf("metrics line of step %d: data_samples_per_s %g, skipped %d", rec.Step, rec.DataRate, rec.Skipped)
		}
	}
	if lines != 3 {
		t.Errorf("%d training lines in metrics.jsonl, want 3", lines)
	}
	if err := PlotMetrics(opts.Output); err != nil {
		t.Fatal(err)
	}
}
