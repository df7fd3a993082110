package leaderboard

import (
	"fmt"

	"github.com/bmca/bmca/eval/tasks"
)

// MeanKind is the kind of the mean entries Write adds to results.json when
// models were compared: the per-domain and overall means of the headline
// metric, with their paired comparison.
const MeanKind tasks.Kind = "mean"

// MetricHeadlineMean is the metric key of a mean entry's value.
const MetricHeadlineMean = "headline_mean"

// Pair compares every model with the first (the reference) by a paired
// bootstrap (tasks.PairedBootstrap: the same resampled examples for both):
// on each task's headline metric, and on each per-domain and the overall
// mean of the headlines over the tasks those means average. It fills
// Row.Paired and Mean.Paired, and records each task comparison on the
// compared model's result (Result.Paired), which Write stores in
// results.json. Comparisons that cannot be made (a result without
// per-example outcomes, models scored on different examples) are left out
// and returned as errors, one per problem; the rest stand.
func (b *Board) Pair(runs []Run, boot tasks.Bootstrap) []error {
	if len(runs) < 2 {
		return nil
	}
	ref := runs[0].Model
	var problems []error
	// results[j][task] locates model j's result of a task.
	results := make([]map[string]*tasks.Result, len(runs))
	for j := range runs {
		results[j] = map[string]*tasks.Result{}
		for i := range runs[j].Results {
			r := &runs[j].Results[i]
			results[j][r.Task] = r
		}
	}
	pairOf := func(row Row, j int) (tasks.PairedPair, bool) {
		m, r := results[j][row.Task], results[0][row.Task]
		if m == nil || r == nil || !row.Cells[0][j].OK || !row.Cells[0][0].OK {
			return tasks.PairedPair{}, false
		}
		return tasks.PairedPair{Task: row.Task, Metric: row.Metrics[0], Model: m.Outcomes, Reference: r.Outcomes}, true
	}
	for i := range b.Rows {
		row := &b.Rows[i]
		row.Paired = make([]*tasks.PairedDiff, len(b.Models))
		for j := 1; j < len(runs); j++ {
			p, ok := pairOf(*row, j)
			if !ok {
				continue
			}
			d, err := tasks.PairedBootstrap(p, boot)
			if err != nil {
				problems = append(problems, fmt.Errorf("%s vs %s: %w", runs[j].Model, ref, err))
				continue
			}
			d.Reference = ref
			row.Paired[j] = d
			results[j][row.Task].Paired = d
		}
	}
	pairMean := func(m *Mean, in func(Row) bool) {
		m.Paired = make([]*tasks.PairedDiff, len(b.Models))
		if m.Tasks == 0 {
			return
		}
		for j := 1; j < len(runs); j++ {
			var pairs []tasks.PairedPair
			complete := true
			for _, row := range b.Rows {
				if !in(row) || !row.Complete() {
					continue
				}
				p, ok := pairOf(row, j)
				if !ok || row.Paired[j] == nil {
					complete = false
					break
				}
				pairs = append(pairs, p)
			}
			if !complete {
				problems = append(problems, fmt.Errorf("%s vs %s: mean %s: a task could not be paired, so neither can the mean", runs[j].Model, ref, m.Name))
				continue
			}
			d, err := tasks.PairedMean(pairs, boot)
			if err != nil {
				problems = append(problems, fmt.Errorf("%s vs %s: mean %s: %w", runs[j].Model, ref, m.Name, err))
				continue
			}
			d.Reference = ref
			m.Paired[j] = d
		}
	}
	for d := range b.Domains {
		name := b.Domains[d].Name
		pairMean(&b.Domains[d], func(r Row) bool { return r.Domain == name })
	}
	pairMean(&b.Overall, func(Row) bool { return true })
	return problems
}

// Paired reports whether Pair found any comparison to show.
func (b *Board) Paired() bool {
	for _, row := range b.Rows {
		for _, d := range row.Paired {
			if d != nil {
				return true
			}
		}
	}
	for _, d := range b.Overall.Paired {
		if d != nil {
			return true
		}
	}
	return false
}

// meanResults are the entries Write adds to results.json for compared
// models: each per-domain and the overall mean, per model, with its paired
// comparison against the reference.
func (b *Board) meanResults() []tasks.Result {
	var out []tasks.Result
	for i, m := range append(append([]Mean(nil), b.Domains...), b.Overall) {
		for j, model := range b.Models {
			r := tasks.Result{Task: domainName(m.Name), Kind: MeanKind, Model: model, Domain: m.Name, Examples: m.Tasks,
				LeaderboardMetrics: []string{MetricHeadlineMean}}
			if i == len(b.Domains) {
				r.Domain = ""
			}
			if m.Tasks > 0 {
				r.Metrics = tasks.Metrics{MetricHeadlineMean: m.Values[j]}
			}
			if j < len(m.Paired) {
				r.Paired = m.Paired[j]
			}
			out = append(out, r)
		}
	}
	return out
}

// signedPercent formats a difference of fractions as signed percentage
// points.
func signedPercent(v float64) string { return fmt.Sprintf("%+.1f", 100*v) }

// diffMarkdown is a comparison's cell: the difference and its interval in
// percentage points, bold where the interval excludes zero.
func diffMarkdown(d *tasks.PairedDiff) string {
	if d == nil {
		return "–"
	}
	s := fmt.Sprintf("%s [%s, %s]", signedPercent(d.Difference), signedPercent(d.Low), signedPercent(d.High))
	if d.Significant {
		return "**" + s + "**"
	}
	return s
}

// arrow marks a model's cell that differs significantly from the
// reference's.
func arrow(d *tasks.PairedDiff) string {
	switch {
	case d == nil || !d.Significant:
		return ""
	case d.Difference > 0:
		return " ↑"
	default:
		return " ↓"
	}
}
