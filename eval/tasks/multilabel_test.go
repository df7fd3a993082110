package tasks_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/eval/tasks"
	"github.com/parquet-go/parquet-go"
)

// The multi-label data of TestRunMultiLabel: images at 0°, 30°, 100° and
// 200° scored against classes at 0°, 120° and 240° (score = cos of the
// difference). Class a (0°) ranks the images 0,1,2,3 and applies to 0 and
// 1: AP 1, AUROC 1. Class b (120°) ranks them 2,3,1,0 and applies to 1 and
// 2: precisions 1 and 2/3, AP 5/6; 3 of 4 pairs right, AUROC 3/4. Class c
// applies to none: left out. mAP 11/12, mean AUROC 7/8.
var (
	mlAngles  = []int{0, 30, 100, 200}
	mlTargets = [][]int{{1, 0, 0}, {1, 1, 0}, {0, 1, 0}, {0, 0, 0}}
	mlNames   = []string{"A", "B", "C"} // the data set's own labels
)

// npyInt64 writes a .npy file of an int64 vector (format 1.0).
func npyInt64(values []int) []byte {
	header := fmt.Sprintf("{'descr': '<i8', 'fortran_order': False, 'shape': (%d,), }", len(values))
	pad := 64 - (10+len(header)+1)%64
	header += strings.Repeat(" ", pad%64) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	for _, v := range values {
		binary.Write(&b, binary.LittleEndian, int64(v))
	}
	return b.Bytes()
}

type multiHotRow struct {
	Image *struct {
		Bytes []byte `parquet:"bytes,optional"`
	} `parquet:"image,optional"`
	Label []int64 `parquet:"label,list"`
}

// TestRunMultiLabel evaluates the same multi-label data in five layouts:
// per-class CSV columns, a list cell, a multi-hot cell, a parquet multi-hot
// list and WebDataset .npy members; all give the hand-computed metrics.
func TestRunMultiLabel(t *testing.T) {
	dir := t.TempDir()
	var columns, lists, cells []string
	var pq []multiHotRow
	var wds []member
	for i, a := range mlAngles {
		img := pngOfAngle(t, a)
		name := fmt.Sprintf("img%d.png", i)
		writeFile(t, filepath.Join(dir, "images", name), img)
		var on []string
		var hot []string
		var hot64 []int64
		for k, v := range mlTargets[i] {
			hot = append(hot, fmt.Sprint(v))
			hot64 = append(hot64, int64(v))
			if v == 1 {
				on = append(on, mlNames[k])
			}
		}
		columns = append(columns, fmt.Sprintf("images/%s,%s", name, strings.Join(hot, ",")))
		lists = append(lists, fmt.Sprintf("images/%s,%s", name, strings.Join(on, "|")))
		cells = append(cells, fmt.Sprintf("images/%s\t[%s]", name, strings.Join(hot, ", ")))
		pq = append(pq, multiHotRow{Image: imageBytes(img), Label: hot64})
		wds = append(wds, member{fmt.Sprintf("s%d.png", i), img}, member{fmt.Sprintf("s%d.npy", i), npyInt64(mlTargets[i])})
	}
	writeFile(t, filepath.Join(dir, "columns.csv"), []byte("path,A,B,C\n"+strings.Join(columns, "\n")+"\n"))
	writeFile(t, filepath.Join(dir, "lists.csv"), []byte("path,findings\n"+strings.Join(lists, "\n")+"\n"))
	writeFile(t, filepath.Join(dir, "cells.tsv"), []byte("path\tlabel\n"+strings.Join(cells, "\n")+"\n"))
	var b bytes.Buffer
	w := parquet.NewGenericWriter[multiHotRow](&b)
	if _, err := w.Write(pq); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "test.parquet"), b.Bytes())
	writeTar(t, filepath.Join(dir, "test-0.tar"), wds)

	suitePath := filepath.Join(dir, "suite.yaml")
	writeFile(t, suitePath, []byte(`name: ml
data_root: .
tasks:
  - {name: columns, kind: zeroshot_multilabel, format: csv, data: [columns.csv], label_columns: [A, B, C], classes: &c ["0 degrees", "120 degrees", "240 degrees"], templates: &t ["{c}"]}
  - {name: lists, kind: zeroshot_multilabel, format: csv, data: [lists.csv], label_key: findings, labels: [A, B, C], classes: *c, templates: *t}
  - {name: cells, kind: zeroshot_multilabel, format: tsv, data: [cells.tsv], label_format: multi_hot, classes: *c, templates: *t}
  - {name: parquet, kind: zeroshot_multilabel, format: parquet, data: [test.parquet], label_format: multi_hot, classes: *c, templates: *t}
  - {name: npy, kind: zeroshot_multilabel, data: [test-0.tar], label_key: npy, label_format: multi_hot, classes: *c, templates: *t}
`))
	suite, err := tasks.LoadSuite(suitePath)
	if err != nil {
		t.Fatal(err)
	}
	results, err := tasks.Run(context.Background(), suite, testEnv(3))
	if err != nil {
		t.Fatal(err)
	}
	checkOutcomes(t, results)
	for _, r := range results {
		if r.Failed || r.Skipped || r.Examples != 4 || r.Classes != 3 || fmt.Sprint(r.ClassPositives) != "[2 2 0]" {
			t.Errorf("%s: %+v", r.Task, r)
			continue
		}
		for key, want := range map[string]float64{
			tasks.MetricMeanAveragePrecision: 11.0 / 12, tasks.MetricMeanAUROC: 7.0 / 8,
			tasks.ClassAPKey("0 degrees"): 1, tasks.ClassAPKey("120 degrees"): 5.0 / 6, tasks.ClassAUROCKey("120 degrees"): 0.75,
		} {
			if got, ok := r.Metrics[key]; !ok || math.Abs(got-want) > 1e-12 {
				t.Errorf("%s: %s = %v (present %v), want %v", r.Task, key, got, ok, want)
			}
		}
		if _, ok := r.Metrics[tasks.ClassAPKey("240 degrees")]; ok {
			t.Errorf("%s: AP of a class without positives reported", r.Task)
		}
		if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "240 degrees") {
			t.Errorf("%s: warnings %q", r.Task, r.Warnings)
		}
		lo, hi := tasks.CIKeys(tasks.MetricMeanAveragePrecision)
		if !(r.Metrics[lo] <= 11.0/12 && r.Metrics[hi] >= 11.0/12) {
			t.Errorf("%s: interval [%v, %v]", r.Task, r.Metrics[lo], r.Metrics[hi])
		}
		if r.LeaderboardMetrics[0] != tasks.MetricMeanAveragePrecision {
			t.Errorf("%s: headline %q", r.Task, r.LeaderboardMetrics[0])
		}
	}

	// Malformed labels fail their task with the file and row.
	writeFile(t, filepath.Join(dir, "bad-columns.csv"), []byte("path,A,B,C\nimages/img0.png,1,0,0\nimages/img1.png,1,2,0\n"))
	writeFile(t, filepath.Join(dir, "bad-list.csv"), []byte("path,findings\nimages/img0.png,A|Z\n"))
	writeFile(t, filepath.Join(dir, "bad-cells.tsv"), []byte("path\tlabel\nimages/img0.png\t[1, 0]\n"))
	writeFile(t, filepath.Join(dir, "bad.yaml"), []byte(`data_root: .
tasks:
  - {name: bad-columns, kind: zeroshot_multilabel, format: csv, data: [bad-columns.csv], label_columns: [A, B, C], classes: &c ["0 degrees", "120 degrees", "240 degrees"], templates: &t ["{c}"]}
  - {name: bad-list, kind: zeroshot_multilabel, format: csv, data: [bad-list.csv], label_key: findings, labels: [A, B, C], classes: *c, templates: *t}
  - {name: bad-cells, kind: zeroshot_multilabel, format: tsv, data: [bad-cells.tsv], label_format: multi_hot, classes: *c, templates: *t}
  - {name: missing-column, kind: zeroshot_multilabel, format: csv, data: [columns.csv], label_columns: [A, B, D], classes: *c, templates: *t}
`))
	bad, err := tasks.LoadSuite(filepath.Join(dir, "bad.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	results, err = tasks.Run(context.Background(), bad, testEnv(3))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]string{
		{`sample "images/img1.png"`, `column "B"`, `"2" is not 0 or 1`},
		{`sample "images/img0.png"`, `label "Z" is not a class`},
		{`sample "images/img0.png"`, "2 values for 3 classes"},
		{`no column "D"`, "columns: path, A, B, C"},
	} {
		r := results[i]
		for _, w := range want {
			if !r.Failed || !strings.Contains(r.Reason, w) {
				t.Errorf("%s: failed %v, reason %q lacks %q", r.Task, r.Failed, r.Reason, w)
			}
		}
	}
}

// TestMultiLabelValidation covers the suite-file errors of the kind.
func TestMultiLabelValidation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.yaml")
	for _, tc := range []struct{ task, want string }{
		{`{name: x, kind: zeroshot_multilabel, format: csv, data: [a.csv], label_columns: [A, B], classes: [a, b, c], templates: ["{c}"]}`, "2 columns for 3 classes"},
		{`{name: x, kind: zeroshot_multilabel, format: csv, data: [a.csv], label_columns: [A, B], label_key: y, classes: [a, b], templates: ["{c}"]}`, "label_key or label_columns, not both"},
		{`{name: x, kind: zeroshot_multilabel, data: [a.tar], label_columns: [A, B], classes: [a, b], templates: ["{c}"]}`, "applies to formats csv, tsv and parquet"},
		{`{name: x, kind: zeroshot_multilabel, format: csv, data: [a.csv], label_format: onehot, classes: [a, b], templates: ["{c}"]}`, `unknown format "onehot"`},
		{`{name: x, kind: zeroshot_multilabel, format: csv, data: [a.csv], label_format: multi_hot, labels: [A, B], classes: [a, b], templates: ["{c}"]}`, "positional"},
		{`{name: x, kind: zeroshot_multilabel, format: csv, data: [a.csv], classes_from_data: true, templates: ["{c}"]}`, "classes_from_data: does not apply"},
		{`{name: x, kind: zeroshot_multilabel, format: imagefolder, data: [a], classes: [a, b], templates: ["{c}"]}`, "imagefolder gives one class per image"},
		{`{name: x, kind: zeroshot_multilabel, format: csv, data: [a.csv], classes: [a, b]}`, "templates: need at least one"},
		{`{name: x, kind: zeroshot_classification, format: csv, data: [a.csv], label_columns: [A, B], classes: [a, b], templates: ["{c}"]}`, "label_columns: applies to zeroshot_multilabel tasks only"},
		{`{name: x, kind: zeroshot_multilabel, format: csv, data: [a.csv], classes: [a, b], templates: ["{c}"], metrics: [acc1]}`, `"acc1" is not reported by zeroshot_multilabel`},
	} {
		writeFile(t, path, []byte("tasks:\n  - "+tc.task+"\n"))
		if _, err := tasks.LoadSuite(path); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\n  error %v, want %q", tc.task, err, tc.want)
		}
	}
	writeFile(t, path, []byte(`tasks:
  - {name: x, kind: zeroshot_multilabel, format: csv, data: [a.csv], classes: [a, "b c"], templates: ["{c}"], metrics: ["auroc/b c", mean_average_precision]}
`))
	if _, err := tasks.LoadSuite(path); err != nil {
		t.Errorf("per-class metric as headline: %v", err)
	}
	_ = os.Remove(path)
}
