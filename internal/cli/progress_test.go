package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/bmca/bmca/train"
)

// TestProgressShowsBothSides checks the training bar carries the data
// pipeline's own rate beside the training rate, the data wait and the
// samples skipped, so a user sees which side is the bottleneck.
func TestProgressShowsBothSides(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, 10, false)
	p.update(train.StepReport{Step: 1, Total: 10, Stats: train.StepStats{Loss: 4.5, LR: 1e-4, LogitScale: 14.3},
		SamplesPerSec: 850, DataWait: 0.03, Data: train.DataReport{SamplesPerSec: 1900, Skipped: 12}})
	for _, want := range []string{"850 samples/s", "data 1900/s", "wait 3%", "skipped 12"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("progress line %q lacks %q", buf.String(), want)
		}
	}

	// A source without a report of its own (a tensors file) shows the wait only.
	buf.Reset()
	p = newProgress(&buf, 10, false)
	p.update(train.StepReport{Step: 1, Total: 10, SamplesPerSec: 850, DataWait: 0.5})
	if got := buf.String(); !strings.Contains(got, "850 samples/s (wait 50%)") || strings.Contains(got, "data 0/s") {
		t.Errorf("progress line %q: want the wait without a data rate", got)
	}
}
