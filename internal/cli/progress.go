package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/bmca/bmca/train"
	"github.com/schollz/progressbar/v3"
)

// progress draws the training bar: step/total, loss, lr, logit scale,
// samples/s, what the data pipeline alone could deliver per second, the
// share of time waiting for data, samples skipped, ETA.
type progress struct {
	bar       *progressbar.ProgressBar
	w         io.Writer
	synthetic string
}

func newProgress(w io.Writer, total int, synthetic bool) *progress {
	p := &progress{w: w}
	if synthetic {
		p.synthetic = "[synthetic] "
	}
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(p.synthetic+"training"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	return p
}

func (p *progress) update(r train.StepReport) {
	data := fmt.Sprintf("(wait %.0f%%)", 100*r.DataWait)
	if r.Data != (train.DataReport{}) { // a source that reports on itself: a stream, not a tensors file
		data = fmt.Sprintf("(data %.0f/s, wait %.0f%%) skipped %d", r.Data.SamplesPerSec, 100*r.DataWait, r.Data.Skipped)
	}
	p.bar.Describe(fmt.Sprintf("%sloss %.4f lr %.2e scale %.1f %.0f samples/s %s",
		p.synthetic, r.Stats.Loss, r.Stats.LR, r.Stats.LogitScale, r.SamplesPerSec, data))
	_ = p.bar.Set(r.Step)
}

// note prints a line above the bar.
func (p *progress) note(msg string) {
	_ = p.bar.Clear()
	fmt.Fprintln(p.w, msg)
	_ = p.bar.RenderBlank()
}

func (p *progress) finish() { _ = p.bar.Finish() }
