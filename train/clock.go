package train

import "time"

// stepClock times the steps of one session: how long each step waited for
// its data, and the mean step time without the session's first step, which
// compiles the step graphs.
type stepClock struct {
	waitStart time.Time
	waited    time.Duration
	// steps counts the session's steps; timed and total are those after
	// the first and their summed duration.
	steps, timed int
	total        time.Duration
}

// startWaiting starts the wait for the next step's data. The loop calls
// it when a step and everything after it (logging, evaluation,
// checkpoint) is done, so that only time spent waiting on the data stage
// counts.
func (c *stepClock) startWaiting() { c.waitStart = time.Now() }

// dataArrived ends the wait: the step's last micro-batch is here.
func (c *stepClock) dataArrived() { c.waited = time.Since(c.waitStart) }

// stepped records a step that took d on samples pairs and returns its
// throughput over the wait and the step, and the share of that time spent
// waiting for data.
func (c *stepClock) stepped(d time.Duration, samples int) (samplesPerSec, dataWait float64) {
	if c.steps++; c.steps > 1 {
		c.total += d
		c.timed++
	}
	wall := c.waited + d
	return float64(samples) / wall.Seconds(), c.waited.Seconds() / wall.Seconds()
}

// meanStep is the mean duration of the session's steps after the first
// (0 when there was no other).
func (c *stepClock) meanStep() time.Duration {
	if c.timed == 0 {
		return 0
	}
	return c.total / time.Duration(c.timed)
}
