package leaderboard

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strings"

	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/internal/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// palette colours the models' bars (Okabe–Ito, distinguishable by most
// colour-blind readers); it repeats past eight models.
var palette = []color.Color{
	color.RGBA{0, 114, 178, 255}, color.RGBA{230, 159, 0, 255}, color.RGBA{0, 158, 115, 255},
	color.RGBA{204, 121, 167, 255}, color.RGBA{86, 180, 233, 255}, color.RGBA{213, 94, 0, 255},
	color.RGBA{240, 228, 66, 255}, color.RGBA{0, 0, 0, 255},
}

// ChartFile names the chart of a domain: chart-<domain>.png, the domain
// lower-cased with runs of other characters turned into '-'.
func ChartFile(domain string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(domain) {
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	name := strings.TrimSuffix(b.String(), "-")
	if name == "" {
		name = "no-domain"
	}
	return "chart-" + name + ".png"
}

// Charts draws, for each domain with at least one task result, the headline
// metric of its tasks as grouped bars (one colour per model) and writes
// dir/ChartFile(domain). It returns the paths written.
func (b *Board) Charts(dir string) ([]string, error) {
	var written []string
	for _, d := range b.Domains {
		var rows []Row
		for _, r := range b.Rows {
			if r.Domain == d.Name && hasAny(r) {
				rows = append(rows, r)
			}
		}
		if len(rows) == 0 {
			continue
		}
		p, width, err := b.domainPlot(d, rows)
		if err != nil {
			return written, fmt.Errorf("chart %s: %w", d.Name, err)
		}
		path := filepath.Join(dir, ChartFile(d.Name))
		wt, err := p.WriterTo(width, vg.Points(360), "png")
		if err != nil {
			return written, fmt.Errorf("chart %s: %w", d.Name, err)
		}
		if err := atomicfile.Write(path, func(w io.Writer) error { _, err := wt.WriteTo(w); return err }); err != nil {
			return written, fmt.Errorf("chart %s: %w", d.Name, err)
		}
		written = append(written, path)
	}
	return written, nil
}

func hasAny(r Row) bool {
	for _, c := range r.Headline() {
		if c.OK {
			return true
		}
	}
	return false
}

// domainPlot lays out one domain's bars; missing values are drawn as zero
// height and named in the x label.
func (b *Board) domainPlot(d Mean, rows []Row) (*plot.Plot, vg.Length, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s: headline metric per task (%%)", domainName(d.Name))
	if m := d.Values; len(m) > 0 && !math.IsNaN(m[0]) {
		var means []string
		for j, v := range m {
			means = append(means, fmt.Sprintf("%s %.1f", b.Models[j], 100*v))
		}
		p.Title.Text += "\nmean over " + fmt.Sprint(d.Tasks) + " tasks: " + strings.Join(means, ", ")
	}
	p.Y.Min, p.Y.Max = 0, 100
	p.Y.Label.Text = "%"
	nm := len(b.Models)
	group := vg.Points(float64(min(40, 14*nm+6)))
	bar := (group - vg.Points(6)) / vg.Length(nm)
	var names []string
	for _, r := range rows {
		label := r.Task
		if r.Metrics[0] != tasks.MetricAcc1 {
			label += " (" + r.Metrics[0] + ")"
		}
		if !r.Complete() {
			label += " *"
		}
		names = append(names, label)
	}
	for j, model := range b.Models {
		vals := make(plotter.Values, len(rows))
		for i, r := range rows {
			if c := r.Headline()[j]; c.OK {
				vals[i] = 100 * c.Value
			}
		}
		bars, err := plotter.NewBarChart(vals, bar)
		if err != nil {
			return nil, 0, err
		}
		bars.Color = palette[j%len(palette)]
		bars.LineStyle.Width = 0
		bars.Offset = bar*vg.Length(j) - bar*vg.Length(nm-1)/2
		p.Add(bars)
		p.Legend.Add(model, bars)
	}
	p.Add(plotter.NewGrid())
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.Legend.Top = true
	width := vg.Points(max(360, 90+float64(len(rows))*float64(group)*1.6))
	return p, width, nil
}
