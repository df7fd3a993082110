package tasks

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/bmca/bmca/eval/formats"
)

// Label formats of a multi-label task's label_key (Task.LabelFormat).
const (
	// LabelList names the classes that apply: "Cardiomegaly|Effusion".
	LabelList = "list"
	// LabelMultiHot is one 0/1 per class, in class order: "[0, 1, 0]".
	LabelMultiHot = "multi_hot"
)

// DefaultLabelSeparator splits a "list" label of a multi-label task.
const DefaultLabelSeparator = "|"

// validateMultiLabel checks the fields of a zeroshot_multilabel task.
func validateMultiLabel(t, raw Task, bad func(field, format string, args ...any)) {
	switch {
	case t.ClassesFromData:
		bad("classes_from_data", "does not apply to zeroshot_multilabel: give classes (and, for a list label, labels)")
	case len(t.Classes) == 0:
		bad("classes", "required: the class names the prompts are built from, in label order")
	}
	checkDistinct("classes", t.Classes, bad)
	if len(t.Templates) == 0 {
		bad("templates", "need at least one prompt template with a {c} placeholder")
	}
	for i, tmpl := range t.Templates {
		if err := checkTemplate(tmpl); err != nil {
			bad("templates", "entry %d: %v", i, err)
		}
	}
	if len(t.LabelColumns) > 0 {
		if raw.LabelKey != "" {
			bad("label_columns", "give label_key or label_columns, not both")
		}
		if t.Format == formats.WebDataset || t.Format == formats.ImageFolder {
			bad("label_columns", "applies to formats csv, tsv and parquet (a WebDataset sample's label is one member: use label_key with label_format)")
		}
		if len(t.LabelColumns) != len(t.Classes) {
			bad("label_columns", "%d columns for %d classes: give one 0/1 column per class, in class order", len(t.LabelColumns), len(t.Classes))
		}
		checkDistinct("label_columns", t.LabelColumns, bad)
		for _, f := range []setField{{"label_format", raw.LabelFormat != ""}, {"label_separator", raw.LabelSeparator != ""}, {"labels", len(t.Labels) > 0}} {
			if f.set {
				bad(f.field, "applies to a multi-label task's label_key, not to label_columns")
			}
		}
	}
	switch t.LabelFormat {
	case "", LabelList:
	case LabelMultiHot:
		if raw.LabelSeparator != "" {
			bad("label_separator", "applies to label_format list only (a multi_hot value may be separated by commas or spaces)")
		}
	default:
		bad("label_format", "unknown format %q (allowed: %q, %q)", t.LabelFormat, LabelList, LabelMultiHot)
	}
	if t.LabelFormat == LabelMultiHot && len(t.Labels) > 0 {
		bad("labels", "a multi_hot label is positional: labels do not apply")
	}
	if len(t.Labels) > 0 {
		if len(t.Labels) != len(t.Classes) {
			bad("labels", "%d labels for %d classes: give the data set's label of each class, in class order", len(t.Labels), len(t.Classes))
		}
		checkDistinct("labels", t.Labels, bad)
	}
	for _, f := range []setField{{"exclude_labels", len(t.ExcludeLabels) > 0}, {"caption_key", t.CaptionKey != ""}, {"recall_k", len(t.RecallK) > 0}} {
		if f.set {
			bad(f.field, "does not apply to zeroshot_multilabel tasks")
		}
	}
	probeOnly(t, bad)
}

// multiHotParser turns a multi-label task's raw labels (formats.Record.Label)
// into which classes apply.
type multiHotParser struct {
	t      Task
	labels labelMap
}

func newMultiHotParser(t Task) (multiHotParser, error) {
	m, err := newLabelMap(t)
	return multiHotParser{t: t, labels: m}, err
}

// parse returns the classes a raw label marks, one bool per class.
func (p multiHotParser) parse(raw string) ([]bool, error) {
	c := len(p.t.Classes)
	out := make([]bool, c)
	switch {
	case len(p.t.LabelColumns) > 0:
		cells := strings.Split(raw, formats.ValueSeparator)
		if len(cells) != c {
			return nil, fmt.Errorf("%d label columns read, want %d", len(cells), c)
		}
		for k, cell := range cells {
			v, err := parseBinary(cell)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", p.t.LabelColumns[k], err)
			}
			out[k] = v
		}
	case p.t.LabelFormat == LabelMultiHot:
		values, err := multiHotValues(raw)
		if err != nil {
			return nil, err
		}
		if len(values) != c {
			return nil, fmt.Errorf("multi-hot label %q has %d values for %d classes", truncate(raw, 60), len(values), c)
		}
		for k, v := range values {
			if out[k], err = parseBinary(v); err != nil {
				return nil, fmt.Errorf("multi-hot label %q, value %d: %w", truncate(raw, 60), k, err)
			}
		}
	default:
		sep := p.t.LabelSeparator
		if strings.Contains(raw, formats.ValueSeparator) || raw == "" {
			sep = formats.ValueSeparator // a parquet list
		}
		for _, item := range strings.Split(raw, sep) {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			k, err := p.labels.lookup(item)
			if err != nil {
				return nil, err
			}
			out[k] = true
		}
	}
	return out, nil
}

// multiHotValues splits a multi-hot value: the items of a parquet list or a
// .npy vector (joined with formats.ValueSeparator), or a text cell such as
// "[0, 1, 0]", "0 1 0" or "0;1;0".
func multiHotValues(raw string) ([]string, error) {
	if strings.Contains(raw, formats.ValueSeparator) {
		return strings.Split(raw, formats.ValueSeparator), nil
	}
	inner := strings.TrimSpace(raw)
	inner = strings.TrimSuffix(strings.TrimPrefix(inner, "["), "]")
	fields := strings.FieldsFunc(inner, func(r rune) bool {
		return r == ',' || r == ';' || r == '|' || r == ' ' || r == '\t'
	})
	if len(fields) == 0 {
		return nil, fmt.Errorf("multi-hot label %q holds no values", truncate(raw, 60))
	}
	return fields, nil
}

// parseBinary reads 0/1 (also 0.0/1.0 and true/false).
func parseBinary(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "1.0", "true":
		return true, nil
	case "0", "0.0", "false":
		return false, nil
	}
	return false, fmt.Errorf("%q is not 0 or 1", truncate(s, 40))
}

// npyLabel turns a WebDataset member holding a .npy vector into a
// multi-hot value joined with formats.ValueSeparator.
func npyLabel(data []byte) (string, error) {
	values, err := formats.DecodeNPYVector(data)
	if err != nil {
		return "", err
	}
	items := make([]string, len(values))
	for i, v := range values {
		items[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(items, formats.ValueSeparator), nil
}

func runMultiLabel(ctx context.Context, t Task, env Env, res *Result) (string, error) {
	parser, err := newMultiHotParser(t)
	if err != nil {
		return "", err
	}
	check := func(raw string) error { _, err := parser.parse(raw); return err }
	f, reason, err := splitFeatures(ctx, t, env, split{"test", t.Name, t.Paths()}, check, res)
	if err != nil || reason != "" {
		return reason, err
	}
	c := len(t.Classes)
	cls, err := BuildClassifier(ctx, env.Encoder, env.Tokenize, t.Classes, t.Templates, env.BatchSize)
	if err != nil {
		return "", err
	}
	if f.Dim != cls.Dim {
		return "", fmt.Errorf("image features have %d values, text features %d", f.Dim, cls.Dim)
	}
	var positives []int
	scored, err := scoreTest(t, env, f, res, func(f *Features) (Metrics, *Outcomes, error) {
		n := f.Len()
		targets := make([]bool, 0, n*c)
		positives = make([]int, c)
		for i, raw := range f.Labels {
			row, err := parser.parse(raw)
			if err != nil {
				return nil, nil, fmt.Errorf("example %d: %w", i, err)
			}
			for k, v := range row {
				if v {
					positives[k]++
				}
			}
			targets = append(targets, row...)
		}
		logits, err := cls.Logits(f.Images, n)
		if err != nil {
			return nil, nil, err
		}
		m, _, ranked, err := multiLabelMetrics(logits, targets, t.Classes, env.Bootstrap)
		if err != nil {
			return nil, nil, err
		}
		return m, newMultiLabelOutcomes(ranked, targets, t.Classes), nil
	})
	if err != nil {
		return "", err
	}
	n := scored.Len()
	res.Examples, res.Classes, res.Classnames, res.ClassPositives = n, c, t.Classes, positives
	var none, all []string
	for k, p := range positives {
		switch p {
		case 0:
			none = append(none, t.Classes[k])
		case n:
			all = append(all, t.Classes[k])
		}
	}
	if len(none) > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d of %d classes have no positive example and are left out of both means: %s", len(none), c, strings.Join(none, ", ")))
	}
	if len(all) > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%d classes apply to every example and are left out of mean_auroc: %s", len(all), strings.Join(all, ", ")))
	}
	return "", nil
}
