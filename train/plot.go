package train

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/bmca/bmca/internal/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// MetricsFile and PlotFile are the per-run files in the output directory.
const (
	MetricsFile = "metrics.jsonl"
	PlotFile    = "metrics.png"
)

// ErrNothingToPlot says that metrics.jsonl holds no training line yet: a
// checkpoint came before the first logged step.
var ErrNothingToPlot = errors.New("no training lines to plot yet")

// PlotMetrics draws loss, learning rate and throughput against the step
// from runDir/metrics.jsonl into runDir/metrics.png (written atomically).
// The throughput panel also shows, dashed, what the data pipeline alone
// could deliver, when the run logged it.
//
// Before the first training line is logged it returns ErrNothingToPlot.
func PlotMetrics(runDir string) error {
	f, err := os.Open(filepath.Join(runDir, MetricsFile))
	if err != nil {
		return err
	}
	defer f.Close()
	series := map[string]plotter.XYs{}
	names := []string{"loss", "lr", "samples_per_s"}
	read := append(slices.Clip(names), dataRate)
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 1<<24)
	for line := 1; scanner.Scan(); line++ {
		var rec map[string]any
		if err := json.Unmarshal(scanner.Bytes(), &rec); err != nil {
			return fmt.Errorf("%s line %d: %w", MetricsFile, line, err)
		}
		if rec["kind"] != "train" {
			continue
		}
		step, _ := rec["step"].(float64)
		for _, n := range read {
			if v, ok := rec[n].(float64); ok {
				series[n] = append(series[n], plotter.XY{X: step, Y: v})
			}
		}
	}
	if err := scanner.Err(); err != nil {
		return err
	}
	if len(series["loss"]) == 0 {
		return fmt.Errorf("%s: %w", MetricsFile, ErrNothingToPlot)
	}
	titles := map[string]string{"loss": "contrastive loss", "lr": "learning rate", "samples_per_s": "throughput (samples/s)"}
	plots := make([][]*plot.Plot, len(names))
	for i, n := range names {
		p := plot.New()
		p.Title.Text = titles[n]
		p.X.Label.Text = "step"
		line, err := plotter.NewLine(series[n])
		if err != nil {
			return err
		}
		p.Add(line, plotter.NewGrid())
		if n == "samples_per_s" && len(series[dataRate]) > 0 {
			data, err := plotter.NewLine(series[dataRate])
			if err != nil {
				return err
			}
			data.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
			p.Add(data)
			p.Legend.Add("training", line)
			p.Legend.Add("data pipeline", data)
			p.Legend.Top = true
		}
		plots[i] = []*plot.Plot{p}
	}
	img := vgimg.New(vg.Points(480), vg.Points(640))
	canvases := plot.Align(plots, draw.Tiles{Rows: len(names), Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(8)}, draw.New(img))
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	return atomicfile.Write(filepath.Join(runDir, PlotFile), func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
		return err
	})
}
