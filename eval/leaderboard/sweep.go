package leaderboard

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"

	"github.com/bmca/bmca/internal/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// SweepChart plots the board's models as a sweep of one parameter (model j
// at xs[j], e.g. WiSE-FT's α): the overall mean of the headline metric as a
// thick black line, each domain's mean as a thinner coloured one, with
// points where a mean exists. It writes a PNG to path.
func (b *Board) SweepChart(path string, xs []float64, xLabel, title string) error {
	if len(xs) != len(b.Models) {
		return fmt.Errorf("sweep chart: %d x values for %d models", len(xs), len(b.Models))
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = "mean headline metric (%)"
	p.Add(plotter.NewGrid())
	add := func(m Mean, c color.Color, width vg.Length, name string) error {
		var pts plotter.XYs
		for j, v := range m.Values {
			if !math.IsNaN(v) {
				pts = append(pts, plotter.XY{X: xs[j], Y: 100 * v})
			}
		}
		if len(pts) == 0 {
			return nil
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		line.Color, line.Width = c, width
		points.Color, points.Shape = c, draw.CircleGlyph{}
		p.Add(line, points)
		p.Legend.Add(fmt.Sprintf("%s (%d tasks)", name, m.Tasks), line, points)
		return nil
	}
	for i, d := range b.Domains {
		if err := add(d, palette[i%len(palette)], vg.Points(1), domainName(d.Name)); err != nil {
			return fmt.Errorf("sweep chart: %w", err)
		}
	}
	if err := add(b.Overall, color.Black, vg.Points(2.5), "overall"); err != nil {
		return fmt.Errorf("sweep chart: %w", err)
	}
	if best := slices.IndexFunc(b.Overall.Values, func(v float64) bool { return !math.IsNaN(v) }); best >= 0 {
		for j, v := range b.Overall.Values {
			if v > b.Overall.Values[best] {
				best = j
			}
		}
		p.Title.Text += fmt.Sprintf("\nbest overall: %s %g (%.1f%%)", xLabel, xs[best], 100*b.Overall.Values[best])
	}
	p.Legend.Top = true
	p.Legend.Left = true
	wt, err := p.WriterTo(vg.Points(560), vg.Points(380), "png")
	if err != nil {
		return fmt.Errorf("sweep chart: %w", err)
	}
	if err := atomicfile.Write(path, func(w io.Writer) error { _, err := wt.WriteTo(w); return err }); err != nil {
		return fmt.Errorf("sweep chart: %w", err)
	}
	return nil
}
