// Package leaderboard turns evaluation results into the files an evaluation
// run leaves behind: results.json (every task's result, CLIP_benchmark's
// keys), leaderboard.md and leaderboard.csv (per task, per-domain mean,
// overall mean, one column per model) and a bar chart per domain
// (chart-<domain>.png).
//
//	board := leaderboard.Build("biomedica40", []leaderboard.Run{{Model: "bmc-clip", Results: results}})
//	files, err := leaderboard.Write(outDir, board, runs)
//
// Each task is ranked by its headline metric, the first of its
// leaderboard_metrics (the suite's metrics setting: acc1 by default for
// classification and probes, mean_recall for retrieval). Means only use the
// tasks every compared model was evaluated on, so models are compared on the
// same tasks; skipped and failed tasks are listed with their reasons (and, in
// the CSV, in each model's status column).
//
// With several models, Board.Pair compares each with the first by a paired
// bootstrap, per task and on every mean; the comparisons go into each file,
// marked where their interval excludes zero.
package leaderboard

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/internal/atomicfile"
)

// File names Write creates in the output folder.
const (
	ResultsFile  = "results.json"
	MarkdownFile = "leaderboard.md"
	CSVFile      = "leaderboard.csv"
)

// Run is one model's results on a suite.
type Run struct {
	// Model labels the model's column.
	Model string
	// Results are its task results, in suite order.
	Results []tasks.Result
}

// Cell is one model's value of one metric on one task.
type Cell struct {
	Value     float64
	Low, High float64 // bootstrap interval, when HasCI
	OK, HasCI bool
}

// Row is one task.
type Row struct {
	Task, Domain string
	Kind         tasks.Kind
	// Metrics are the task's leaderboard metrics, the headline first.
	Metrics []string
	// Cells[m][j] is metric Metrics[m] of model j.
	Cells [][]Cell
	// Skipped[j] holds model j's skip reason, if skipped.
	Skipped []string
	// Failed[j] holds model j's error, if the task failed.
	Failed []string
	// Paired[j] compares model j's headline with the first model's (see
	// Board.Pair); nil for the first model and before Pair.
	Paired []*tasks.PairedDiff
	// Overlap is the task's contamination report (the same for every
	// model; the first one found), when one was made.
	Overlap *tasks.Overlap
}

// Headline is the row's headline cells, one per model.
func (r Row) Headline() []Cell { return r.Cells[0] }

// Complete reports whether every model has the headline value.
func (r Row) Complete() bool {
	for _, c := range r.Headline() {
		if !c.OK {
			return false
		}
	}
	return true
}

// Mean is a per-domain or overall mean of headline metrics.
type Mean struct {
	Name string // domain, or "overall"
	// Tasks is the number of tasks averaged (those every model has).
	Tasks int
	// Total is the number of tasks in the group.
	Total int
	// Values are the means, one per model (NaN when Tasks is 0).
	Values []float64
	// Paired[j] compares model j's mean with the first model's over the
	// same tasks (see Board.Pair).
	Paired []*tasks.PairedDiff
}

// Board is a leaderboard.
type Board struct {
	Suite   string
	Models  []string
	Rows    []Row
	Domains []Mean
	Overall Mean
}

// Build assembles the leaderboard of runs on one suite. Tasks appear in the
// order of the first run that has them; domains in the order they first
// appear.
func Build(suite string, runs []Run) *Board {
	b := &Board{Suite: suite}
	index := map[string]int{}
	for j, run := range runs {
		b.Models = append(b.Models, run.Model)
		for _, r := range run.Results {
			i, ok := index[r.Task]
			if !ok {
				i = len(b.Rows)
				index[r.Task] = i
				metrics := r.LeaderboardMetrics
				if len(metrics) == 0 {
					metrics = []string{tasks.MetricAcc1}
				}
				row := Row{Task: r.Task, Domain: r.Domain, Kind: r.Kind, Metrics: metrics,
					Cells: make([][]Cell, len(metrics)), Skipped: make([]string, len(runs)), Failed: make([]string, len(runs))}
				for m := range row.Cells {
					row.Cells[m] = make([]Cell, len(runs))
				}
				b.Rows = append(b.Rows, row)
			}
			row := &b.Rows[i]
			if row.Overlap == nil && r.Overlap != nil {
				row.Overlap = r.Overlap
			}
			switch {
			case r.Failed:
				row.Failed[j] = r.Reason
				continue
			case r.Skipped:
				row.Skipped[j] = r.Reason
				continue
			}
			for m, key := range row.Metrics {
				v, ok := r.Metrics[key]
				if !ok || math.IsNaN(v) {
					continue
				}
				c := Cell{Value: v, OK: true}
				low, high := tasks.CIKeys(key)
				c.Low, c.HasCI = r.Metrics[low]
				c.High = r.Metrics[high]
				row.Cells[m][j] = c
			}
		}
	}
	var domains []string
	for _, row := range b.Rows {
		if !slices.Contains(domains, row.Domain) {
			domains = append(domains, row.Domain)
		}
	}
	for _, d := range domains {
		b.Domains = append(b.Domains, b.mean(d, func(r Row) bool { return r.Domain == d }))
	}
	b.Overall = b.mean("overall", func(Row) bool { return true })
	return b
}

// mean averages the headline metric over the complete rows in a group.
func (b *Board) mean(name string, in func(Row) bool) Mean {
	m := Mean{Name: name, Values: make([]float64, len(b.Models))}
	for _, row := range b.Rows {
		if !in(row) {
			continue
		}
		m.Total++
		if !row.Complete() {
			continue
		}
		m.Tasks++
		for j, c := range row.Headline() {
			m.Values[j] += c.Value
		}
	}
	for j := range m.Values {
		if m.Tasks == 0 {
			m.Values[j] = math.NaN()
		} else {
			m.Values[j] /= float64(m.Tasks)
		}
	}
	return m
}

// percent formats a fraction as a percentage with one decimal.
func percent(v float64) string { return fmt.Sprintf("%.1f", 100*v) }

func (c Cell) markdown() string {
	switch {
	case !c.OK:
		return "–"
	case c.HasCI:
		return fmt.Sprintf("%s [%s, %s]", percent(c.Value), percent(c.Low), percent(c.High))
	}
	return percent(c.Value)
}

func domainName(d string) string { return cmp.Or(d, "(no domain)") }

// Markdown renders the leaderboard as a Markdown document.
func (b *Board) Markdown() string {
	var s strings.Builder
	fmt.Fprintf(&s, "# Leaderboard: %s\n\n", b.Suite)
	s.WriteString("Values are percentages. Each task is ranked by its headline metric (the first of its `metrics`);\n" +
		"brackets give the 95% bootstrap interval where one is computed. – marks a task that was skipped or lacks the metric,\n" +
		"**failed** one that could not be evaluated (reasons below).\n" +
		"Means average the headline metric over the tasks every model was evaluated on.\n\n")
	header := func(first ...string) {
		cols := append(first, b.Models...)
		fmt.Fprintf(&s, "| %s |\n|%s\n", strings.Join(cols, " | "), strings.Repeat(" --- |", len(cols)))
	}
	s.WriteString("## Tasks\n\n")
	header("Task", "Domain", "Kind", "Metric")
	for _, row := range b.Rows {
		cells := make([]string, len(b.Models))
		for j, c := range row.Headline() {
			cells[j] = c.markdown() + arrow(at(row.Paired, j))
			if row.Failed[j] != "" {
				cells[j] = "**failed**"
			}
		}
		fmt.Fprintf(&s, "| %s | %s | %s | %s | %s |\n", row.Task, domainName(row.Domain), row.Kind, row.Metrics[0], strings.Join(cells, " | "))
	}
	s.WriteString("\n## Per-domain mean\n\n")
	header("Domain", "Tasks averaged")
	for i, m := range append(slices.Clone(b.Domains), b.Overall) {
		name := domainName(m.Name)
		if i == len(b.Domains) {
			name = "**overall**"
		}
		vals := make([]string, len(m.Values))
		for j, v := range m.Values {
			vals[j] = "–"
			if !math.IsNaN(v) {
				vals[j] = percent(v) + arrow(at(m.Paired, j))
			}
		}
		fmt.Fprintf(&s, "| %s | %d of %d | %s |\n", name, m.Tasks, m.Total, strings.Join(vals, " | "))
	}
	if b.Paired() {
		b.pairedMarkdown(&s, header)
	}
	if b.overlaps() {
		b.overlapMarkdown(&s)
	}
	var details []Row
	for _, row := range b.Rows {
		if len(row.Metrics) > 1 && slices.ContainsFunc(row.Headline(), func(c Cell) bool { return c.OK }) {
			details = append(details, row)
		}
	}
	if len(details) > 0 {
		s.WriteString("\n## All leaderboard metrics\n\n")
		header("Task", "Metric")
		for _, row := range details {
			for m, key := range row.Metrics {
				if !slices.ContainsFunc(row.Cells[m], func(c Cell) bool { return c.OK }) {
					continue // e.g. acc5 of a task with fewer than 5 classes
				}
				cells := make([]string, len(b.Models))
				for j, c := range row.Cells[m] {
					cells[j] = c.markdown()
				}
				fmt.Fprintf(&s, "| %s | %s | %s |\n", row.Task, key, strings.Join(cells, " | "))
			}
		}
	}
	var skipped, failed []string
	for _, row := range b.Rows {
		for j := range b.Models {
			if reason := row.Skipped[j]; reason != "" {
				skipped = append(skipped, fmt.Sprintf("- %s (%s): %s", row.Task, b.Models[j], oneLine(reason)))
			}
			if reason := row.Failed[j]; reason != "" {
				failed = append(failed, fmt.Sprintf("- %s (%s): %s", row.Task, b.Models[j], oneLine(reason)))
			}
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(&s, "\n## Failed (%d)\n\nThese tasks could not be evaluated; the others' results are unaffected.\n\n%s\n", len(failed), strings.Join(failed, "\n"))
	}
	if len(skipped) > 0 {
		fmt.Fprintf(&s, "\n## Skipped (%d)\n\n%s\n", len(skipped), strings.Join(skipped, "\n"))
	}
	return s.String()
}

// overlaps reports whether any task has a contamination report.
func (b *Board) overlaps() bool {
	return slices.ContainsFunc(b.Rows, func(r Row) bool { return r.Overlap != nil })
}

// overlapMarkdown writes the contamination section: per task, how many of
// its images were found in the training data, and how.
func (b *Board) overlapMarkdown(s *strings.Builder) {
	var first *tasks.Overlap
	excluded := false
	for _, r := range b.Rows {
		if r.Overlap != nil {
			if first == nil {
				first = r.Overlap
			}
			excluded = excluded || r.Overlap.Excluded > 0
		}
	}
	near := fmt.Sprintf("perceptual hashes at most %d of 64 bits apart", first.MaxDistance)
	if first.MaxDistance < 0 {
		near = "not searched (exact matches only)"
	}
	fmt.Fprintf(s, "\n## Training-data overlap\n\nEvaluation images found among %d training images: the same file (or the file a sample's hash field names),\n"+
		"the same decoded pixels, or a near-duplicate (resized or re-encoded copy: %s).\n", first.TrainImages, near)
	if excluded {
		s.WriteString("The scores above **leave these images out** (--exclude-overlap); `metrics_with_overlap` in results.json has them in.\n")
	} else {
		s.WriteString("The scores above include these images; --exclude-overlap scores without them.\n")
	}
	s.WriteString("\n| Task | Images checked | Same file | Same pixels | Near-duplicate | Overlap |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range b.Rows {
		o := r.Overlap
		if o == nil {
			fmt.Fprintf(s, "| %s | – | – | – | – | – |\n", r.Task)
			continue
		}
		share := "–"
		if o.Checked > 0 {
			share = fmt.Sprintf("%.1f%%", 100*float64(o.Overlapping())/float64(o.Checked))
		}
		cell := func(n int) string {
			if n > 0 {
				return fmt.Sprintf("**%d**", n)
			}
			return "0"
		}
		fmt.Fprintf(s, "| %s | %d | %s | %s | %s | %s |\n", r.Task, o.Checked, cell(o.ExactFile), cell(o.ExactPixels), cell(o.Near), share)
	}
}

// at is d[j], nil when d is shorter.
func at(d []*tasks.PairedDiff, j int) *tasks.PairedDiff {
	if j < len(d) {
		return d[j]
	}
	return nil
}

// pairedMarkdown writes the section of paired differences from the first
// model.
func (b *Board) pairedMarkdown(s *strings.Builder, header func(first ...string)) {
	ref := b.Models[0]
	level := 0.95
	for _, row := range b.Rows {
		for _, d := range row.Paired {
			if d != nil {
				level = d.Level
			}
		}
	}
	fmt.Fprintf(s, "\n## Paired differences from %s\n\n", ref)
	fmt.Fprintf(s, "Each model's headline minus %s's, in percentage points, with the %g%% interval of a paired bootstrap\n"+
		"(the same resampled examples for both models; for means, every averaged task resampled at once).\n"+
		"**Bold** differences, and ↑/↓ in the tables above, are those whose interval excludes zero.\n\n", ref, 100*level)
	cols := append([]string{"Task", "Metric"}, b.Models[1:]...)
	fmt.Fprintf(s, "| %s |\n|%s\n", strings.Join(cols, " | "), strings.Repeat(" --- |", len(cols)))
	for _, row := range b.Rows {
		cells := make([]string, 0, len(b.Models)-1)
		for j := 1; j < len(b.Models); j++ {
			cells = append(cells, diffMarkdown(at(row.Paired, j)))
		}
		fmt.Fprintf(s, "| %s | %s | %s |\n", row.Task, row.Metrics[0], strings.Join(cells, " | "))
	}
	for i, m := range append(slices.Clone(b.Domains), b.Overall) {
		name := "mean, " + domainName(m.Name)
		if i == len(b.Domains) {
			name = "**mean, overall**"
		}
		cells := make([]string, 0, len(b.Models)-1)
		for j := 1; j < len(b.Models); j++ {
			cells = append(cells, diffMarkdown(at(m.Paired, j)))
		}
		fmt.Fprintf(s, "| %s | headline (%d tasks) | %s |\n", name, m.Tasks, strings.Join(cells, " | "))
	}
}

// oneLine joins a multi-line reason (errors.Join's) with "; ".
func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

// status is a task row's status column of model j: empty when evaluated,
// else "skipped: …" or "failed: …" with the reason.
func (r Row) status(j int) string {
	switch {
	case r.Failed[j] != "":
		return "failed: " + oneLine(r.Failed[j])
	case r.Skipped[j] != "":
		return "skipped: " + oneLine(r.Skipped[j])
	}
	return ""
}

// WriteCSV writes the leaderboard as CSV: one row per task and leaderboard
// metric (level "task"), per domain and overall (levels "domain",
// "overall", headline metric); per model four columns, the value (a
// fraction), its interval bounds and the status (empty, or "skipped: …" /
// "failed: …" with the reason). Empty cells mean no value.
func (b *Board) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := []string{"level", "name", "domain", "kind", "metric", "tasks"}
	for _, m := range b.Models {
		head = append(head, m, m+" ci_low", m+" ci_high", m+" status")
	}
	overlaps := b.overlaps()
	if overlaps {
		head = append(head, "train_overlap_checked", "train_overlap_exact_file", "train_overlap_exact_pixels", "train_overlap_near", "train_overlap_excluded")
	}
	overlapCells := func(o *tasks.Overlap, show bool) []string {
		if !overlaps {
			return nil
		}
		if o == nil || !show {
			return []string{"", "", "", "", ""}
		}
		return []string{fmt.Sprint(o.Checked), fmt.Sprint(o.ExactFile), fmt.Sprint(o.ExactPixels), fmt.Sprint(o.Near), fmt.Sprint(o.Excluded)}
	}
	paired := b.Paired()
	if paired {
		for _, m := range b.Models[1:] {
			d := m + " - " + b.Models[0]
			head = append(head, d, d+" ci_low", d+" ci_high", d+" significant")
		}
	}
	diffCells := func(ds []*tasks.PairedDiff, show bool) []string {
		if !paired {
			return nil
		}
		var out []string
		for j := 1; j < len(b.Models); j++ {
			d := at(ds, j)
			if !show || d == nil {
				out = append(out, "", "", "", "")
				continue
			}
			out = append(out, fmt.Sprintf("%.6f", d.Difference), fmt.Sprintf("%.6f", d.Low), fmt.Sprintf("%.6f", d.High), fmt.Sprint(d.Significant))
		}
		return out
	}
	rows := [][]string{head}
	num := func(v float64, ok bool) string {
		if !ok || math.IsNaN(v) {
			return ""
		}
		return fmt.Sprintf("%.6f", v)
	}
	for _, row := range b.Rows {
		for m, key := range row.Metrics {
			rec := []string{"task", row.Task, row.Domain, string(row.Kind), key, "1"}
			for j, c := range row.Cells[m] {
				rec = append(rec, num(c.Value, c.OK), num(c.Low, c.OK && c.HasCI), num(c.High, c.OK && c.HasCI), row.status(j))
			}
			rec = append(rec, diffCells(row.Paired, m == 0)...)
			rec = append(rec, overlapCells(row.Overlap, m == 0)...)
			rows = append(rows, rec)
		}
	}
	for _, m := range append(slices.Clone(b.Domains), b.Overall) {
		level, domain := "domain", m.Name
		if m.Name == "overall" {
			level, domain = "overall", ""
		}
		rec := []string{level, m.Name, domain, "", "headline", fmt.Sprint(m.Tasks)}
		for _, v := range m.Values {
			rec = append(rec, num(v, true), "", "", "")
		}
		rec = append(rec, diffCells(m.Paired, true)...)
		rec = append(rec, overlapCells(nil, false)...)
		rows = append(rows, rec)
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("leaderboard csv: %w", err)
	}
	return nil
}

// Write stores results.json (every run's results, in run order, with their
// paired comparisons and, when Pair compared models, one MeanKind entry per
// model and per-domain or overall mean),
// leaderboard.md, leaderboard.csv and one chart per domain with results in
// dir, each atomically, and returns the paths written.
func Write(dir string, b *Board, runs []Run) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("leaderboard: %w", err)
	}
	var all []tasks.Result
	for _, r := range runs {
		all = append(all, r.Results...)
	}
	if b.Paired() {
		all = append(all, b.meanResults()...)
	}
	js, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("leaderboard: results: %w", err)
	}
	var written []string
	put := func(name string, write func(io.Writer) error) error {
		path := filepath.Join(dir, name)
		if err := atomicfile.Write(path, write); err != nil {
			return fmt.Errorf("leaderboard: %w", err)
		}
		written = append(written, path)
		return nil
	}
	text := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := put(ResultsFile, text(string(js)+"\n")); err != nil {
		return written, err
	}
	if err := put(MarkdownFile, text(b.Markdown())); err != nil {
		return written, err
	}
	if err := put(CSVFile, b.WriteCSV); err != nil {
		return written, err
	}
	charts, err := b.Charts(dir)
	return append(written, charts...), err
}
