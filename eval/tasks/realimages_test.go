package tasks_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/eval/cache"
	"github.com/bmca/bmca/eval/formats"
	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/internal/reftest"
	"github.com/bmca/bmca/internal/testshared"
	"github.com/bmca/bmca/text/tokenizer"
)

// realImageSuite writes a one-task suite over shared/data/images/labels.csv
// (15 real images: BiomedCLIP's examples, NIH ChestX-ray14, TBX11K): the
// table as it is, its empty label excluded, classes from the data.
func realImageSuite(t *testing.T) (*tasks.Suite, [][]string) {
	t.Helper()
	labels := testshared.Path(t, "data/images/labels.csv")
	f, err := os.ReadFile(labels)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(f))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "real.yaml")
	writeFile(t, p, []byte(fmt.Sprintf(`tasks:
  - name: real-images
    domain: radiology
    kind: zeroshot_classification
    format: csv
    data: [%q]
    image_key: file
    exclude_labels: [""]
    classes_from_data: true
    templates: ["{c}"]
`, labels)))
	s, err := tasks.LoadSuite(p)
	if err != nil {
		t.Fatal(err)
	}
	return s, rows[1:]
}

func pixelKey(p []float32) [32]byte {
	b := make([]byte, 4*len(p))
	for i, v := range p {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return sha256.Sum256(b)
}

// oracle is a fake model that recognises the real images: an image's
// feature is one-hot on the class it is predicted as, plus half a one-hot on
// its true class; a prompt's is one-hot on the class it names.
type oracle struct {
	classes []string
	byImage map[[32]byte][2]int // pixels → predicted, true class
}

func (o *oracle) EncodeImages(pixels []float32, n int) ([]float32, error) {
	per := len(pixels) / n
	out := make([]float32, n*len(o.classes))
	for i := range n {
		c, ok := o.byImage[pixelKey(pixels[i*per:(i+1)*per])]
		if !ok {
			return nil, fmt.Errorf("oracle: image %d is not one of the real images", i)
		}
		out[i*len(o.classes)+c[0]] += 1
		out[i*len(o.classes)+c[1]] += 0.5
	}
	return out, nil
}

func (o *oracle) EncodeTexts(tokens []int32, n int) ([]float32, error) {
	l := len(tokens) / n
	out := make([]float32, n*len(o.classes))
	for r := range n {
		var text []byte
		for _, id := range tokens[r*l : (r+1)*l] {
			if id >= 1 && id <= 256 {
				text = append(text, byte(id-1))
			}
		}
		// The byte-level tokenizer lower-cases, as OpenCLIP's does.
		c := slices.IndexFunc(o.classes, func(name string) bool { return strings.EqualFold(name, string(text)) })
		if c < 0 {
			return nil, fmt.Errorf("oracle: prompt %q names no class", text)
		}
		out[r*len(o.classes)+c] = 1
	}
	return out, nil
}

// TestRealImagesZeroShot runs a zero-shot task over the real images through
// the CSV reader, exclusion of the unlabelled row, real JPEG/PNG decoding
// (grey JPEG, palette PNG, 8-bit grey PNG, large RGB) and preprocessing.
// The oracle model predicts every image right except the two tuberculosis
// X-rays, swapped: 14 examples, acc1 = balanced accuracy = macro-F1 = 12/14,
// acc5 1 (the true class always comes second).
func TestRealImagesZeroShot(t *testing.T) {
	s, rows := realImageSuite(t)
	pre := preprocess.OpenAI(32)
	image := formats.WithExtraDecoders(pre.Apply, pre.ApplyImage)
	var classes []string
	for _, r := range rows {
		if r[1] != "" && !slices.Contains(classes, r[1]) {
			classes = append(classes, r[1])
		}
	}
	slices.Sort(classes)
	o := &oracle{classes: classes, byImage: map[[32]byte][2]int{}}
	swap := map[string]string{"active tuberculosis": "obsolete pulmonary tuberculosis", "obsolete pulmonary tuberculosis": "active tuberculosis"}
	dir := filepath.Dir(s.Tasks[0].Data[0])
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range rows {
		if r[1] == "" {
			continue
		}
		wg.Go(func() {
			data, err := os.ReadFile(filepath.Join(dir, r[0]))
			if err != nil {
				t.Error(err)
				return
			}
			p, err := image(data)
			if err != nil {
				t.Errorf("%s: %v", r[0], err)
				return
			}
			pred := r[1]
			if s, ok := swap[pred]; ok {
				pred = s
			}
			mu.Lock()
			o.byImage[pixelKey(p)] = [2]int{slices.Index(classes, pred), slices.Index(classes, r[1])}
			mu.Unlock()
		})
	}
	wg.Wait()
	env := tasks.Env{Encoder: o, Tokenize: tasks.FromTokenizer(tokenizer.NewByteLevel(64)), Image: image, BatchSize: 5}
	results, err := tasks.Run(context.Background(), s, env)
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	if r.Examples != 14 || r.Excluded != 1 || r.Classes != 14 || !reflect.DeepEqual(r.Classnames, classes) {
		t.Fatalf("result %+v", r)
	}
	for key, want := range map[string]float64{tasks.MetricAcc1: 12.0 / 14, tasks.MetricAcc5: 1, tasks.MetricMeanPerClassRecall: 12.0 / 14, tasks.MetricMacroF1: 12.0 / 14} {
		if got := r.Metrics[key]; math.Abs(got-want) > 1e-12 {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
}

// TestRealImagesTinyOpenCLIP runs the same task through the real pipeline:
// OpenCLIP's tiny reference model, the CLIP BPE tokenizer and the disk
// feature cache. The tiny model is untrained, so only the plumbing and the
// cache's exactness are checked.
func TestRealImagesTinyOpenCLIP(t *testing.T) {
	s, _ := realImageSuite(t)
	vocab := testshared.Path(t, "data/tokenizer/bpe_simple_vocab_16e6.txt.gz")
	enc, cfg := referenceEncoder(t, reftest.Load(t, "tiny"))
	tok, err := tokenizer.New(tokenizer.NameCLIPBPE, cfg.TextCfg.ContextLength, vocab)
	if err != nil {
		t.Fatal(err)
	}
	pre := preprocess.OpenAI(cfg.VisionCfg.ImageSize)
	env := tasks.Env{Encoder: enc, Tokenize: tasks.FromTokenizer(tok), Image: formats.WithExtraDecoders(pre.Apply, pre.ApplyImage),
		BatchSize: 8, Cache: cache.New(t.TempDir()), ModelKey: "tiny-reference"}
	first, err := tasks.Run(context.Background(), s, env)
	if err != nil {
		t.Fatal(err)
	}
	r := first[0]
	if r.Examples != 14 || r.FeaturesCached {
		t.Fatalf("result %+v", r)
	}
	for _, k := range []string{tasks.MetricAcc1, tasks.MetricAcc5, tasks.MetricMeanPerClassRecall, tasks.MetricMacroF1} {
		lo, hi := tasks.CIKeys(k)
		if v := r.Metrics[k]; !(v >= 0 && v <= 1 && r.Metrics[lo] <= v && v <= r.Metrics[hi]) {
			t.Errorf("%s = %v [%v, %v]", k, v, r.Metrics[lo], r.Metrics[hi])
		}
	}
	second, err := tasks.Run(context.Background(), s, env)
	if err != nil {
		t.Fatal(err)
	}
	if !second[0].FeaturesCached || !reflect.DeepEqual(second[0].Metrics, r.Metrics) {
		t.Errorf("from the cache: cached %v, metrics %v, want %v", second[0].FeaturesCached, second[0].Metrics, r.Metrics)
	}
	t.Logf("tiny OpenCLIP on the 14 labelled real images: acc1 %.3f, acc5 %.3f (chance 1/14)", r.Metrics[tasks.MetricAcc1], r.Metrics[tasks.MetricAcc5])
}
