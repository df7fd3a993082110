package tasks_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bmca/bmca/eval/cache"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/text/tokenizer"
	"github.com/parquet-go/parquet-go"
)

// The classification data of TestRunEndToEnd: targets and the class each
// image lies on (acc1 6/10, balanced 7/12, macro-F1 26/45).
var (
	e2eTargets = []int{0, 0, 0, 0, 1, 1, 1, 2, 2, 2}
	e2ePreds   = []int{0, 0, 0, 1, 1, 1, 2, 2, 0, 0}
	e2eClasses = []string{"0 degrees", "120 degrees", "240 degrees"}
	rawLabels  = []string{"zero", "one-twenty", "two-forty"} // the "data set's" own labels
)

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

type parquetRow struct {
	Image *struct {
		Bytes []byte `parquet:"bytes,optional"`
	} `parquet:"image,optional"`
	Label    string   `parquet:"label"`
	Captions []string `parquet:"captions,list"`
}

func writeParquetRows(t *testing.T, path string, rows []parquetRow) {
	t.Helper()
	var b bytes.Buffer
	w := parquet.NewGenericWriter[parquetRow](&b, parquet.MaxRowsPerRowGroup(4))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b.Bytes())
}

func imageBytes(b []byte) *struct {
	Bytes []byte `parquet:"bytes,optional"`
} {
	return &struct {
		Bytes []byte `parquet:"bytes,optional"`
	}{b}
}

func testEnv(batch int) tasks.Env {
	return tasks.Env{Encoder: angleEncoder{}, Tokenize: tasks.FromTokenizer(tokenizer.NewByteLevel(32)), Image: decodePNG, BatchSize: batch, Workers: 2}
}

// TestRunFormats evaluates the same classification data laid out in every
// format, and the same captions in the table and parquet layouts; all must
// give the hand-computed metrics.
func TestRunFormats(t *testing.T) {
	dir := t.TempDir()
	var csvRows, tsvRows []string
	var pq []parquetRow
	var wds []member
	for i, target := range e2eTargets {
		img := pngOfAngle(t, 120*e2ePreds[i])
		name := fmt.Sprintf("img%02d.png", i)
		writeFile(t, filepath.Join(dir, "folder", rawLabels[target], "sub", name), img)
		writeFile(t, filepath.Join(dir, "table/images", name), img)
		csvRows = append(csvRows, fmt.Sprintf("images/%s,%s", name, rawLabels[target]))
		tsvRows = append(tsvRows, fmt.Sprintf("%s\t%d", strings.TrimSuffix(name, ".png"), target))
		pq = append(pq, parquetRow{Image: imageBytes(img), Label: rawLabels[target]})
		wds = append(wds, member{fmt.Sprintf("s%02d.png", i), img}, member{fmt.Sprintf("s%02d.cls", i), []byte(fmt.Sprint(target))})
	}
	writeFile(t, filepath.Join(dir, "table/meta.csv"), []byte("file,dx\n"+strings.Join(csvRows, "\n")+"\n"))
	writeFile(t, filepath.Join(dir, "table/meta.tsv"), []byte("id\tlabel\n"+strings.Join(tsvRows, "\n")+"\n"))
	writeParquetRows(t, filepath.Join(dir, "pq/test-0.parquet"), pq[:6])
	writeParquetRows(t, filepath.Join(dir, "pq/test-1.parquet"), pq[6:])
	if err := os.MkdirAll(filepath.Join(dir, "wds"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeTar(t, filepath.Join(dir, "wds/test-0.tar"), wds)

	// Retrieval: images at 0°, 10°, 20°, 30°, 50° with captions 0 | 10, 13 |
	// 26 | 30 | 44, 50. Caption 26 is nearer 30° than 20°: text→image R@1
	// 6/7; every image's nearest caption is its own: image→text R@1 5/5.
	angles := []int{0, 10, 20, 30, 50}
	captions := [][]string{{"0"}, {"10", "13"}, {"26"}, {"30"}, {"44", "50"}}
	var capRows []string
	var capPq []parquetRow
	for i, a := range angles {
		name := fmt.Sprintf("r%d.png", i)
		writeFile(t, filepath.Join(dir, "ret", name), pngOfAngle(t, a))
		for _, c := range captions[i] {
			capRows = append(capRows, name+","+c)
		}
		capPq = append(capPq, parquetRow{Image: imageBytes(pngOfAngle(t, a)), Captions: captions[i]})
	}
	writeFile(t, filepath.Join(dir, "ret/captions.csv"), []byte("path,caption\n"+strings.Join(capRows, "\n")+"\n"))
	writeParquetRows(t, filepath.Join(dir, "ret/captions.parquet"), capPq)

	suitePath := filepath.Join(dir, "suite.yaml")
	writeFile(t, suitePath, []byte(`name: formats
data_root: .
tasks:
  - {name: folder, kind: zeroshot_classification, format: imagefolder, data: [folder], classes: &c ["0 degrees", "120 degrees", "240 degrees"], labels: &l [zero, one-twenty, two-forty], templates: &t ["{c}"]}
  - {name: csv, kind: zeroshot_classification, format: csv, data: [table/meta.csv], image_key: file, label_key: dx, classes: *c, labels: *l, templates: *t}
  - {name: tsv, kind: zeroshot_classification, format: tsv, data: [table/meta.tsv], image_key: id, path_template: "images/{}.png", classes: *c, templates: *t}
  - {name: parquet, kind: zeroshot_classification, format: parquet, data: ["pq/*.parquet"], classes: *c, labels: *l, templates: *t}
  - {name: wds, kind: zeroshot_classification, data: ["wds/test-0.tar"], classes: *c, templates: *t}
  - {name: csv-captions, kind: retrieval, format: csv, data: [ret/captions.csv], recall_k: [1, 2]}
  - {name: parquet-captions, kind: retrieval, format: parquet, data: [ret/captions.parquet], caption_key: captions, recall_k: [1, 2]}
`))
	suite, err := tasks.LoadSuite(suitePath)
	if err != nil {
		t.Fatal(err)
	}
	results, err := tasks.Run(context.Background(), suite, testEnv(4))
	if err != nil {
		t.Fatal(err)
	}
	checkOutcomes(t, results)
	for _, r := range results[:5] {
		if r.Skipped || r.Examples != 10 || r.Classes != 3 || !reflect.DeepEqual(r.Classnames, e2eClasses) {
			t.Errorf("%s: %+v", r.Task, r)
		}
		for key, want := range map[string]float64{tasks.MetricAcc1: 0.6, tasks.MetricMeanPerClassRecall: 7.0 / 12, tasks.MetricMacroF1: 26.0 / 45} {
			if got := r.Metrics[key]; math.Abs(got-want) > 1e-12 {
				t.Errorf("%s %s = %v, want %v", r.Task, key, got, want)
			}
		}
		// Same examples in the same order give the same bootstrap draws
		// (the image folder lists them by class, the others by index).
		if r.Task != "folder" && !reflect.DeepEqual(r.Metrics, results[1].Metrics) {
			t.Errorf("%s metrics differ from the CSV's:\n%v\n%v", r.Task, r.Metrics, results[1].Metrics)
		}
	}
	for _, r := range results[5:] {
		if r.Examples != 5 || r.Texts != 7 {
			t.Errorf("%s: %d images, %d captions; want 5 and 7", r.Task, r.Examples, r.Texts)
		}
		want := map[string]float64{"image_retrieval_recall@1": 6.0 / 7, "image_retrieval_recall@2": 1, "text_retrieval_recall@1": 1, "text_retrieval_recall@2": 1}
		for k, w := range want {
			if got := r.Metrics[k]; math.Abs(got-w) > 1e-12 {
				t.Errorf("%s %s = %v, want %v", r.Task, k, got, w)
			}
		}
		if got, want := r.Metrics[tasks.MetricMeanRecall], (6.0/7+3)/4; math.Abs(got-want) > 1e-12 {
			t.Errorf("%s mean_recall %v, want %v", r.Task, got, want)
		}
	}
}

// TestLabels covers the raw-label mapping: exclusions, classes taken from
// the data, and the errors for labels that are no class.
func TestLabels(t *testing.T) {
	dir := t.TempDir()
	rows := []string{"path,label"}
	for i, l := range []string{"deg120", "deg0", "", "deg120", "skip", "deg0"} {
		name := fmt.Sprintf("%d.png", i)
		angle := map[string]int{"deg0": 0, "deg120": 120, "": 240, "skip": 240}[l]
		writeFile(t, filepath.Join(dir, name), pngOfAngle(t, angle))
		rows = append(rows, name+","+l)
	}
	writeFile(t, filepath.Join(dir, "t.csv"), []byte(strings.Join(rows, "\n")+"\n"))
	task := func(extra string) tasks.Task {
		t.Helper()
		p := filepath.Join(t.TempDir(), "s.yaml")
		writeFile(t, p, []byte(fmt.Sprintf("tasks:\n  - {name: x, kind: zeroshot_classification, format: csv, data: [%q], templates: [\"{c}\"], %s}\n", filepath.Join(dir, "t.csv"), extra)))
		s, err := tasks.LoadSuite(p)
		if err != nil {
			t.Fatal(err)
		}
		return s.Tasks[0]
	}
	ctx := context.Background()

	// Classes from the data, sorted: deg0, deg120; two rows excluded.
	r, err := tasks.RunTask(ctx, task(`classes_from_data: true, exclude_labels: ["", skip]`), testEnv(2))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Classnames, []string{"deg0", "deg120"}) || r.Examples != 4 || r.Excluded != 2 || r.Metrics[tasks.MetricAcc1] != 1 {
		t.Errorf("classes from data: %+v", r)
	}
	// Labels mapped to class names whose prompts carry the angles.
	r, err = tasks.RunTask(ctx, task(`classes: ["0 degrees", "120 degrees"], labels: [deg0, deg120], exclude_labels: ["", skip]`), testEnv(2))
	if err != nil || r.Metrics[tasks.MetricAcc1] != 1 || r.Classes != 2 {
		t.Errorf("mapped labels: %+v, %v", r, err)
	}
	// Without the exclusions the empty label is reported, by row.
	_, err = tasks.RunTask(ctx, task(`classes: ["0 degrees", "120 degrees"], labels: [deg0, deg120]`), testEnv(2))
	if err == nil || !strings.Contains(err.Error(), `sample "2.png"`) || !strings.Contains(err.Error(), `label "" is not a class (known: "deg0", "deg120"`) {
		t.Errorf("unmapped label: %v", err)
	}
}

// TestLinearProbe fits a probe on an image folder whose classes lie around
// 0°, 120° and 240° and scores a separate test folder perfectly.
func TestLinearProbe(t *testing.T) {
	dir := t.TempDir()
	for c, center := range []int{10, 120, 230} {
		for i, off := range []int{-8, -5, -3, -1, 0, 2, 4, 6} {
			writeFile(t, filepath.Join(dir, "train", fmt.Sprint(c), fmt.Sprintf("%d.png", i)), pngOfAngle(t, center+off))
		}
		for i, off := range []int{-7, 1, 7} {
			writeFile(t, filepath.Join(dir, "test", fmt.Sprint(c), fmt.Sprintf("%d.png", i)), pngOfAngle(t, center+off))
		}
	}
	p := filepath.Join(dir, "s.yaml")
	writeFile(t, p, []byte(`tasks:
  - name: probe
    kind: linear_probe
    format: imagefolder
    train_data: [train]
    data: [test]
    classes: [first, second, third]
    val_fraction: 0.25
    l2_grid: [0.001, 0.1]
`))
	s, err := tasks.LoadSuite(p)
	if err != nil {
		t.Fatal(err)
	}
	var progress []string
	env := testEnv(8)
	env.Progress = func(task string, done, total int) {
		progress = append(progress, fmt.Sprintf("%s:%d/%d", task, done, total))
	}
	results, err := tasks.Run(context.Background(), s, env)
	if err != nil {
		t.Fatal(err)
	}
	checkOutcomes(t, results)
	r := results[0]
	if r.Metrics[tasks.MetricAcc1] != 1 || r.Examples != 9 || r.Probe == nil {
		t.Fatalf("probe result %+v", r)
	}
	if r.Probe.TrainExamples != 18 || r.Probe.ValExamples != 6 || len(r.Probe.Sweep.Lambdas) != 2 {
		t.Errorf("probe fit %+v, want 18 fitted, 6 held out, 2 strengths tried", r.Probe)
	}
	if got := strings.Join(progress, " "); got != "probe/train:8/24 probe/train:16/24 probe/train:24/24 probe:8/9 probe:9/9" {
		t.Errorf("progress %s", got)
	}
	again, err := tasks.Run(context.Background(), s, env)
	if err != nil || !reflect.DeepEqual(again[0].Metrics, r.Metrics) || again[0].Probe.L2 != r.Probe.L2 {
		t.Errorf("probe not deterministic: %+v vs %+v (%v)", again[0].Probe, r.Probe, err)
	}
}

// countingEncoder counts the images it encodes.
type countingEncoder struct {
	angleEncoder
	images atomic.Int64
}

func (e *countingEncoder) EncodeImages(pixels []float32, n int) ([]float32, error) {
	e.images.Add(int64(n))
	return e.angleEncoder.EncodeImages(pixels, n)
}

// TestFeatureCache checks that a second run encodes nothing, that prompt
// edits keep the cache and that data or model changes invalidate it.
func TestFeatureCache(t *testing.T) {
	dir := t.TempDir()
	for i, target := range e2eTargets {
		writeFile(t, filepath.Join(dir, "data", fmt.Sprint(target), fmt.Sprintf("%d.png", i)), pngOfAngle(t, 120*e2ePreds[i]))
	}
	suite := func(templates string) *tasks.Suite {
		p := filepath.Join(dir, "s.yaml")
		writeFile(t, p, []byte(fmt.Sprintf("tasks:\n  - {name: c, kind: zeroshot_classification, format: imagefolder, data: [data], classes: [%s], templates: %s}\n", `"0 degrees", "120 degrees", "240 degrees"`, templates)))
		s, err := tasks.LoadSuite(p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	enc := &countingEncoder{}
	env := testEnv(4)
	env.Encoder, env.Cache, env.ModelKey = enc, cache.New(filepath.Join(dir, "cache")), "model-1"
	run := func(s *tasks.Suite, wantEncoded int64, wantCached bool) tasks.Result {
		t.Helper()
		enc.images.Store(0)
		results, err := tasks.Run(context.Background(), s, env)
		if err != nil {
			t.Fatal(err)
		}
		r := results[0]
		if got := enc.images.Load(); got != wantEncoded || r.FeaturesCached != wantCached || len(r.Warnings) > 0 {
			t.Errorf("encoded %d images (cached %v, warnings %q), want %d (cached %v)", got, r.FeaturesCached, r.Warnings, wantEncoded, wantCached)
		}
		return r
	}
	first := run(suite(`["{c}"]`), 10, false)
	second := run(suite(`["{c}"]`), 0, true)
	if !reflect.DeepEqual(first.Metrics, second.Metrics) {
		t.Errorf("cached metrics %v differ from computed %v", second.Metrics, first.Metrics)
	}
	run(suite(`["a photo at {c}.", "{c}!"]`), 0, true) // prompts are not part of the key
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "data/0/0.png"), later, later); err != nil {
		t.Fatal(err)
	}
	run(suite(`["{c}"]`), 10, false) // the data changed
	run(suite(`["{c}"]`), 0, true)
	env.ModelKey = "model-2"
	run(suite(`["{c}"]`), 10, false) // another model
	env.ModelKey = ""
	if _, err := tasks.Run(context.Background(), suite(`["{c}"]`), env); err == nil || !strings.Contains(err.Error(), "Cache needs ModelKey") {
		t.Errorf("cache without model key: %v", err)
	}
}
