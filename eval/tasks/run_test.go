package tasks_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/text/tokenizer"
)

// angleEncoder is a fake model whose features are directions in the plane.
// An image's angle in degrees is the red value of its top-left pixel; a
// text's is the first integer in it (read back from byte-level ids). Image
// features are scaled by 3 so that Run's normalisation matters. The score of
// an image and a text is then cos(angle difference): rankings follow angular
// distance and are easy to work out by hand.
type angleEncoder struct{}

// The real image pipeline fits the hook Run takes.
var _ tasks.ImageFunc = preprocess.OpenAI(224).Apply

func direction(deg float64, scale float32) []float32 {
	r := deg * math.Pi / 180
	return []float32{scale * float32(math.Cos(r)), scale * float32(math.Sin(r))}
}

func (angleEncoder) EncodeImages(pixels []float32, n int) ([]float32, error) {
	per := len(pixels) / n
	var out []float32
	for i := range n {
		out = append(out, direction(float64(pixels[i*per]), 3)...)
	}
	return out, nil
}

var firstNumber = regexp.MustCompile(`\d+`)

func (angleEncoder) EncodeTexts(tokens []int32, n int) ([]float32, error) {
	l := len(tokens) / n
	var out []float32
	for r := range n {
		var text []byte
		for _, id := range tokens[r*l : (r+1)*l] {
			if id >= 1 && id <= 256 {
				text = append(text, byte(id-1))
			}
		}
		deg, err := strconv.Atoi(firstNumber.FindString(string(text)))
		if err != nil {
			return nil, fmt.Errorf("fake encoder: no angle in %q", text)
		}
		out = append(out, direction(float64(deg), 1)...)
	}
	return out, nil
}

// pngOfAngle encodes a 2×2 image whose red channel holds the angle.
func pngOfAngle(t *testing.T, deg int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	for y := range 2 {
		for x := range 2 {
			img.Set(x, y, color.RGBA{R: uint8(deg), G: 9, B: 9, A: 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// decodePNG is the test's ImageFunc: channel-major [3, H, W] raw values.
func decodePNG(data []byte) ([]float32, error) {
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	hw := b.Dx() * b.Dy()
	out := make([]float32, 3*hw)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			i := (y-b.Min.Y)*b.Dx() + (x - b.Min.X)
			out[i], out[hw+i], out[2*hw+i] = float32(r>>8), float32(g>>8), float32(bl>>8)
		}
	}
	return out, nil
}

type member struct {
	name string
	data []byte
}

func writeTar(t *testing.T, path string, members []member) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRunEndToEnd evaluates a suite over WebDataset shards written here.
//
// Classification: classes at 0°, 120° and 240°; each image lies exactly on
// the class it will be predicted as. Targets and predictions are the
// confusion of TestClassificationMetricFunctions: acc1 6/10, balanced
// accuracy 7/12, macro-F1 26/45. Split over two shards, batch size 4.
//
// Retrieval: images at 0°, 10°, …, 50°; captions by image:
//
//	0: "0"        1: "10", "13"   2: "26"   3: "30"   4: none   5: "44", "50"
//
// Caption 26 is nearer image 3 (30°) and 44 nearer image 4 (40°): text→image
// recall@1 is 5/7, @2 7/7. Every image with captions has its nearest caption
// among them (2's nearest is 26), image 4 has none: image→text recall 5/6 at
// every k.
func TestRunEndToEnd(t *testing.T) {
	dir := t.TempDir()
	targets := []int{0, 0, 0, 0, 1, 1, 1, 2, 2, 2}
	preds := []int{0, 0, 0, 1, 1, 1, 2, 2, 0, 0}
	var shard [2][]member
	for i := range targets {
		key := fmt.Sprintf("cls/s%03d", i)
		shard[i/6] = append(shard[i/6],
			member{key + ".png", pngOfAngle(t, 120*preds[i])},
			member{key + ".cls", []byte(fmt.Sprintf("%d\n", targets[i]))})
	}
	writeTar(t, filepath.Join(dir, "cls-0.tar"), shard[0])
	writeTar(t, filepath.Join(dir, "cls-1.tar"), shard[1])

	captions := []string{"0", "10\n13\n", "26", "30", "", "44\r\n50"}
	var ret []member
	for i, c := range captions {
		key := fmt.Sprintf("r%02d", i)
		ret = append(ret, member{key + ".txt", []byte(c)}, member{key + ".PNG", pngOfAngle(t, 10*i)})
	}
	writeTar(t, filepath.Join(dir, "ret.tar"), ret)

	suitePath := filepath.Join(dir, "suite.yaml")
	suiteYAML := `name: e2e
tasks:
  - name: angles
    domain: geometry
    kind: zeroshot_classification
    shards: ["cls-{0..1}.tar"]
    classes: ["0 degrees", "120 degrees", "240 degrees"]
    templates: ["a photo at {c}.", "{} from the east"]
  - name: angles-capped
    kind: zeroshot_classification
    shards: ["cls-*.tar"]
    classes: ["0 degrees", "120 degrees", "240 degrees"]
    templates: ["{c}"]
    max_examples: 5
  - name: captions
    kind: retrieval
    shards: [ret.tar]
    recall_k: [1, 2, 5]
  - name: absent
    kind: retrieval
    shards: ["nowhere/test-{000..003}.tar"]
  - name: absent-glob
    kind: retrieval
    shards: ["nowhere/*.tar"]
`
	if err := os.WriteFile(suitePath, []byte(suiteYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	suite, err := tasks.LoadSuite(suitePath)
	if err != nil {
		t.Fatal(err)
	}
	var progress []string
	env := tasks.Env{
		Encoder:   angleEncoder{},
		Tokenize:  tasks.FromTokenizer(tokenizer.NewByteLevel(24)),
		Image:     decodePNG,
		BatchSize: 4,
		Workers:   3,
		Progress: func(task string, done, total int) {
			progress = append(progress, fmt.Sprintf("%s:%d/%d", task, done, total))
		},
	}
	results, err := tasks.Run(context.Background(), suite, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 5 {
		t.Fatalf("%d results, want 5", len(results))
	}
	check := func(r tasks.Result, key string, want float64) {
		t.Helper()
		if got, ok := r.Metrics[key]; !ok || math.Abs(got-want) > 1e-12 {
			t.Errorf("%s %s = %v (present %v), want %v", r.Task, key, got, ok, want)
		}
	}

	cls := results[0]
	if cls.Skipped || cls.Examples != 10 || cls.Classes != 3 || cls.Domain != "geometry" || cls.Kind != tasks.ZeroShotClassification {
		t.Errorf("classification result %+v", cls)
	}
	check(cls, tasks.MetricAcc1, 0.6)
	check(cls, tasks.MetricMeanPerClassRecall, 7.0/12)
	check(cls, tasks.MetricMacroF1, 26.0/45)
	if _, ok := cls.Metrics[tasks.MetricAcc5]; ok {
		t.Errorf("acc5 reported with 3 classes")
	}
	lo, hi := cls.Metrics[tasks.MetricAcc1CILow], cls.Metrics[tasks.MetricAcc1CIHigh]
	if !(lo < 0.6 && hi > 0.6 && lo >= 0 && hi <= 1) {
		t.Errorf("acc1 interval [%v, %v] does not straddle 0.6", lo, hi)
	}

	capped := results[1]
	if capped.Examples != 5 {
		t.Errorf("max_examples 5: evaluated %d", capped.Examples)
	}
	check(capped, tasks.MetricAcc1, 4.0/5) // targets 0,0,0,0,1 predicted 0,0,0,1,1

	ret0 := results[2]
	if ret0.Skipped || ret0.Examples != 6 || ret0.Texts != 7 {
		t.Errorf("retrieval result %+v", ret0)
	}
	check(ret0, "image_retrieval_recall@1", 5.0/7)
	check(ret0, "image_retrieval_recall@2", 1)
	check(ret0, "image_retrieval_recall@5", 1)
	for _, k := range []int{1, 2, 5} {
		check(ret0, tasks.TextRetrievalRecallKey(k), 5.0/6)
	}

	for _, r := range results[3:] {
		if !r.Skipped || r.Reason == "" || r.Metrics != nil {
			t.Errorf("task %s: want skipped with a reason, got %+v", r.Task, r)
		}
	}
	if !strings.Contains(results[3].Reason, "test-000.tar") || !strings.Contains(results[4].Reason, "nowhere/*.tar") {
		t.Errorf("reasons %q, %q do not name the missing shards", results[3].Reason, results[4].Reason)
	}

	wantProgress := "angles:4/-1 angles:8/-1 angles:10/-1 angles:10/10 angles-capped:4/5 angles-capped:5/5 captions:4/-1 captions:6/-1 captions:6/6"
	if got := strings.Join(progress, " "); got != wantProgress {
		t.Errorf("progress\n got %s\nwant %s", got, wantProgress)
	}

	js, err := json.Marshal(results[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"acc1":0.6`, `"mean_per_class_recall"`, `"macro_f1"`, `"acc1_ci_low"`, `"dataset":"angles"`, `"task":"zeroshot_classification"`, `"classnames":["0 degrees","120 degrees","240 degrees"]`, `"macro_f1_ci_low"`} {
		if !strings.Contains(string(js), key) {
			t.Errorf("JSON %s lacks %s", js, key)
		}
	}

	again, err := tasks.Run(context.Background(), suite, env)
	if err != nil {
		t.Fatal(err)
	}
	if again[0].Metrics[tasks.MetricAcc1CILow] != lo || again[0].Metrics[tasks.MetricAcc1CIHigh] != hi {
		t.Errorf("bootstrap interval changed between runs")
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	writeTar(t, filepath.Join(dir, "bad.tar"), []member{
		{"a.png", pngOfAngle(t, 0)}, {"a.cls", []byte("7")},
	})
	suite := &tasks.Suite{Name: "s", Tasks: []tasks.Task{{
		Name: "bad-label", Kind: tasks.ZeroShotClassification,
		Shards:  []string{filepath.Join(dir, "bad.tar")},
		Classes: []string{"0", "90"}, Templates: []string{"{c}"},
	}}}
	env := tasks.Env{Encoder: angleEncoder{}, Tokenize: tasks.FromTokenizer(tokenizer.NewByteLevel(16)), Image: decodePNG}
	results, err := tasks.Run(context.Background(), suite, env)
	if err != nil || len(results) != 1 {
		t.Fatalf("%d results, %v; want the failed task reported", len(results), err)
	}
	if r := results[0]; !r.Failed || !strings.Contains(r.Reason, `sample "a"`) || !strings.Contains(r.Reason, "label 7 outside the 2 classes") {
		t.Errorf("bad label: %+v", r)
	}
	if _, err := tasks.RunTask(context.Background(), suite.Tasks[0], env); err == nil || !strings.Contains(err.Error(), "label 7 outside the 2 classes") {
		t.Errorf("RunTask: %v", err)
	}
	if _, err := tasks.Run(context.Background(), suite, tasks.Env{}); err == nil || !strings.Contains(err.Error(), "Encoder, Tokenize, Image not set") {
		t.Errorf("empty env: %v", err)
	}
	suite.Tasks[0].Kind = "nonsense"
	results, err = tasks.Run(context.Background(), suite, env)
	if err != nil || len(results) != 1 || !results[0].Failed || !strings.Contains(results[0].Reason, `kind: unknown kind "nonsense"`) {
		t.Errorf("invalid task: %+v, %v", results, err)
	}
	if _, err := tasks.Run(context.Background(), &tasks.Suite{Name: "empty"}, env); err == nil || !strings.Contains(err.Error(), "no tasks") {
		t.Errorf("empty suite: %v", err)
	}
}
