package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bmca/bmca/eval/formats"
	"github.com/bmca/bmca/internal/location"
)

// Features are what one pass over a split of a task's data produces: the
// image features with the raw labels, or with the caption features. They
// depend on the model and the data only, not on class names or prompts, so
// a FeatureCache can keep them across runs and prompt edits.
type Features struct {
	// Dim is the feature size.
	Dim int
	// Images holds [N, Dim] image features as the encoder returned them
	// (not normalised).
	Images []float32
	// Labels holds each image's raw label (classification and probes).
	Labels []string
	// Texts holds [T, Dim] caption features (retrieval), not normalised.
	Texts []float32
	// TextImage[t] is the image caption t describes.
	TextImage []int
	// Excluded counts the examples exclude_labels dropped.
	Excluded int
}

// Len is the number of images.
func (f *Features) Len() int {
	if f.Dim == 0 {
		return 0
	}
	return len(f.Images) / f.Dim
}

// Validate checks the parts agree in size; caches call it on what they read.
func (f *Features) Validate() error {
	switch {
	case f.Dim <= 0:
		return fmt.Errorf("features: dim %d", f.Dim)
	case len(f.Images) == 0 || len(f.Images)%f.Dim != 0:
		return fmt.Errorf("features: %d image values do not form rows of %d", len(f.Images), f.Dim)
	case f.Labels != nil && len(f.Labels) != f.Len():
		return fmt.Errorf("features: %d labels for %d images", len(f.Labels), f.Len())
	case len(f.Texts)%f.Dim != 0 || len(f.Texts)/f.Dim != len(f.TextImage):
		return fmt.Errorf("features: %d text values for %d captions of dim %d", len(f.Texts), len(f.TextImage), f.Dim)
	}
	for t, i := range f.TextImage {
		if i < 0 || i >= f.Len() {
			return fmt.Errorf("features: caption %d points at image %d of %d", t, i, f.Len())
		}
	}
	return nil
}

// FeatureCache keeps Features between runs, by a key Run derives from
// Env.ModelKey, the task's data definition and the data's fingerprint (file
// names, sizes, modification times). eval/cache implements it on disk.
type FeatureCache interface {
	// Load returns the features stored under key, or nil, nil when there
	// are none.
	Load(key string) (*Features, error)
	// Store keeps f under key, replacing what was there.
	Store(key string, f *Features) error
}

// featureKeyVersion changes when what Features hold, or how they are
// computed, changes, so old cache entries are ignored.
const featureKeyVersion = 1

// FeatureKey is the cache key of a split's features: a SHA-256 over the
// model key, the split, what the task reads (format, paths, keys,
// exclusions, max_examples, labels or captions) and the data's fingerprint.
// Class names, prompts and metrics are left out: they do not change the
// features.
//
// Local paths enter the key absolute, so the key does not depend on the
// working directory; moving the data elsewhere recomputes the features.
func FeatureKey(modelKey string, t Task, split string, paths []string, fingerprint string) string {
	t = t.withDefaults()
	abs := make([]string, len(paths))
	for i, p := range paths {
		abs[i] = p
		if a, err := filepath.Abs(p); err == nil && location.IsLocal(p) {
			abs[i] = a
		}
	}
	paths = abs
	// Marshalling cannot fail: the key holds only strings, string slices,
	// ints and bools (no maps, floats or custom marshallers).
	data, err := json.Marshal(struct {
		Version                        int
		Model, Split, Fingerprint      string
		Format                         formats.Format
		Paths                          []string
		ImageKey, LabelKey, CaptionKey string
		PathTemplate, Subdir           string
		Exclude                        []string
		MaxExamples                    int
		Labels, Captions               bool
		// Multi-label reading; empty for other kinds, so their keys are
		// unchanged.
		LabelColumns []string `json:",omitempty"`
		LabelList    bool     `json:",omitempty"`
	}{
		featureKeyVersion, modelKey, split, fingerprint, t.Format, paths, t.ImageKey, t.LabelKey, t.CaptionKey,
		t.PathTemplate, t.Subdir, t.ExcludeLabels, t.MaxExamples, t.Kind != Retrieval, t.Kind == Retrieval,
		t.LabelColumns, t.Kind == ZeroShotMultiLabel,
	})
	if err != nil {
		panic(fmt.Sprintf("feature key: %v", err))
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// source is an opened split: formats.Source, or WebDataset shards.
type source interface {
	Fingerprint() string
	Len() int
	Records(ctx context.Context) iter.Seq2[formats.Record, error]
}

// openSource opens a split of t; a non-empty reason means the data is absent
// and the task is to be skipped.
func openSource(t Task, env Env, paths []string) (src source, reason string, err error) {
	needLabels, needCaptions := t.Kind != Retrieval, t.Kind == Retrieval
	if t.Format == formats.WebDataset {
		shards, reason, err := locateShards(env.Shards, paths)
		if err != nil || reason != "" {
			return nil, reason, err
		}
		return &wdsSource{task: t, src: env.Shards, shards: shards, labels: needLabels, captions: needCaptions}, "", nil
	}
	s, err := formats.Open(formats.Spec{
		Format: t.Format, Paths: paths, ImageKey: t.ImageKey, LabelKey: t.LabelKey, CaptionKey: t.CaptionKey,
		PathTemplate: t.PathTemplate, Subdir: t.Subdir, Labels: needLabels, Captions: needCaptions,
		LabelColumns: t.LabelColumns, LabelList: t.Kind == ZeroShotMultiLabel,
	})
	if errors.Is(err, formats.ErrAbsent) {
		return nil, err.Error(), nil
	}
	return s, "", err
}

// split names one pass of a task over its data, for progress and cache keys.
type split struct {
	name     string   // "test", "train", "val"
	progress string   // progress label
	paths    []string // resolved data paths
}

// splitFeatures returns a split's features from the cache or by encoding
// the data; a non-empty reason means the data is absent. check, when set,
// vets each raw label before its image is encoded.
func splitFeatures(ctx context.Context, t Task, env Env, sp split, check func(string) error, res *Result) (*Features, string, error) {
	src, reason, err := openSource(t, env, sp.paths)
	if err != nil || reason != "" {
		return nil, reason, err
	}
	key := ""
	if env.Cache != nil {
		key = FeatureKey(env.ModelKey, t, sp.name, sp.paths, src.Fingerprint())
		f, err := env.Cache.Load(key)
		switch {
		case err != nil:
			res.Warnings = append(res.Warnings, fmt.Sprintf("feature cache: %v (features recomputed)", err))
		case f != nil:
			if env.Progress != nil {
				env.Progress(sp.progress, f.Len(), f.Len())
			}
			res.splits++
			res.cacheHits++
			return f, "", nil
		}
	}
	f, err := encodeSplit(ctx, t, env, sp, src, check)
	if err != nil {
		return nil, "", err
	}
	if env.Cache != nil {
		if err := env.Cache.Store(key, f); err != nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("feature cache: %v", err))
		}
	}
	res.splits++
	return f, "", nil
}

// encodeSplit streams the split's records (splitRecords) and encodes
// images (and captions) in batches of env.BatchSize. It reports progress
// after each batch.
func encodeSplit(ctx context.Context, t Task, env Env, sp split, src source, check func(string) error) (*Features, error) {
	total := src.Len()
	if t.MaxExamples > 0 && (total < 0 || total > t.MaxExamples) {
		total = t.MaxExamples
	}
	f := &Features{}
	if t.Kind != Retrieval {
		f.Labels = []string{}
	}
	done := 0
	batch := make([]formats.Record, 0, env.BatchSize)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := encodeBatch(ctx, env, batch, f); err != nil {
			return err
		}
		done += len(batch)
		batch = batch[:0]
		if env.Progress != nil {
			env.Progress(sp.progress, done, total)
		}
		return ctx.Err()
	}
	for rec, err := range splitRecords(ctx, t, src, check, &f.Excluded) {
		if err != nil {
			return nil, err
		}
		batch = append(batch, rec)
		if len(batch) == env.BatchSize {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if done == 0 {
		return nil, fmt.Errorf("no examples in %s (%d excluded)", strings.Join(sp.paths, ", "), f.Excluded)
	}
	if env.Progress != nil && total != done {
		env.Progress(sp.progress, done, done)
	}
	return f, nil
}

// splitRecords yields the examples of a split in the order they are
// evaluated: the source's records minus those exclude_labels drops (counted
// in *excluded), vetted by check, up to max_examples. It is the one
// definition of "example i of a task" that features, and the contamination
// check's example indices, share.
func splitRecords(ctx context.Context, t Task, src source, check func(string) error, excluded *int) iter.Seq2[formats.Record, error] {
	return func(yield func(formats.Record, error) bool) {
		n := 0
		for rec, err := range src.Records(ctx) {
			if err != nil {
				yield(rec, err)
				return
			}
			if t.Kind != Retrieval {
				if slices.Contains(t.ExcludeLabels, rec.Label) {
					*excluded++
					continue
				}
				if check != nil {
					if err := check(rec.Label); err != nil {
						yield(rec, fmt.Errorf("%s, sample %q: %w", rec.Source, rec.Key, err))
						return
					}
				}
			}
			if !yield(rec, nil) {
				return
			}
			if n++; t.MaxExamples > 0 && n >= t.MaxExamples {
				return
			}
		}
	}
}

// Example is one evaluated image of a task's test split, as TestImages
// yields it.
type Example struct {
	// Index is the example's position in the split as evaluated (after
	// exclude_labels, within max_examples): the row of its features.
	Index int
	// Key and Source identify the record (see formats.Record).
	Key, Source string
	// Image is the encoded image.
	Image []byte
}

// TestImages yields the images of a task's evaluated split in evaluation
// order, with their indices, without encoding anything (for the
// contamination check); shards reads WebDataset data (nil: DefaultShards).
// reason is non-empty when the data is absent.
func TestImages(ctx context.Context, t Task, shards ShardSource) (iter.Seq2[Example, error], string, error) {
	if shards == nil {
		shards = DefaultShards()
	}
	t = t.withDefaults()
	src, reason, err := openSource(t, Env{Shards: shards}, t.Paths())
	if err != nil || reason != "" {
		return nil, reason, err
	}
	return func(yield func(Example, error) bool) {
		i, excluded := 0, 0
		for rec, err := range splitRecords(ctx, t, src, nil, &excluded) {
			if err != nil {
				yield(Example{}, err)
				return
			}
			if !yield(Example{Index: i, Key: rec.Key, Source: rec.Source, Image: rec.Image}, nil) {
				return
			}
			i++
		}
	}, "", nil
}

// encodeBatch preprocesses a batch with env.Workers goroutines, encodes its
// images and captions, and appends them to f.
func encodeBatch(ctx context.Context, env Env, batch []formats.Record, f *Features) error {
	pixels := make([][]float32, len(batch))
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(env.Workers, len(batch)) {
		wg.Go(func() {
			for i := range next {
				pixels[i], errs[i] = env.Image(batch[i].Image)
			}
		})
	}
	for i := range batch {
		next <- i
	}
	close(next)
	wg.Wait()
	size := len(pixels[0])
	flat := make([]float32, 0, size*len(batch))
	for i, p := range pixels {
		if errs[i] != nil {
			return fmt.Errorf("%s, sample %q: image: %w", batch[i].Source, batch[i].Key, errs[i])
		}
		if len(p) != size || size == 0 {
			return fmt.Errorf("%s, sample %q: image preprocessed to %d values, others to %d", batch[i].Source, batch[i].Key, len(p), size)
		}
		flat = append(flat, p...)
	}
	feats, err := env.Encoder.EncodeImages(flat, len(batch))
	if err != nil {
		return fmt.Errorf("encode images (batch starting at sample %q): %w", batch[0].Key, err)
	}
	dim, err := featureDim(feats, len(batch))
	if err != nil {
		return fmt.Errorf("encode images: %w", err)
	}
	if f.Dim != 0 && dim != f.Dim {
		return fmt.Errorf("encode images: feature size changed from %d to %d", f.Dim, dim)
	}
	first := f.Len()
	f.Dim = dim
	f.Images = append(f.Images, feats...)
	var captions []string
	for i, rec := range batch {
		if f.Labels != nil {
			f.Labels = append(f.Labels, rec.Label)
		}
		captions = append(captions, rec.Captions...)
		for range rec.Captions {
			f.TextImage = append(f.TextImage, first+i)
		}
	}
	if len(captions) == 0 {
		return nil
	}
	tokens, err := env.Tokenize(captions)
	if err != nil {
		return fmt.Errorf("tokenize captions: %w", err)
	}
	tf, td, err := encodeTextsBatched(ctx, env.Encoder, tokens, len(captions), env.BatchSize)
	if err != nil {
		return err
	}
	if td != dim {
		return fmt.Errorf("image features have %d values, text features %d", dim, td)
	}
	f.Texts = append(f.Texts, tf...)
	return nil
}

// labelMap maps raw labels to class indices.
type labelMap struct {
	classes []string
	index   map[string]int
}

// newLabelMap builds the mapping of t: its labels (the data set's label of
// each class), else its class names, else, with classes_from_data, the
// distinct labels of the given splits, sorted.
func newLabelMap(t Task, splits ...[]string) (labelMap, error) {
	m := labelMap{classes: t.Classes, index: map[string]int{}}
	if t.ClassesFromData {
		seen := map[string]bool{}
		m.classes = nil
		for _, labels := range splits {
			for _, l := range labels {
				if !seen[l] {
					seen[l] = true
					m.classes = append(m.classes, l)
				}
			}
		}
		slices.Sort(m.classes)
		if len(m.classes) < 2 {
			return m, fmt.Errorf("classes_from_data: the data has %d distinct labels %q, need at least 2", len(m.classes), m.classes)
		}
	}
	names := m.classes
	if len(t.Labels) > 0 {
		names = t.Labels
	}
	for i, n := range names {
		m.index[n] = i
	}
	return m, nil
}

// lookup returns the class index of a raw label: its position in labels (or
// class names), else the label read as a class index.
func (m labelMap) lookup(raw string) (int, error) {
	if i, ok := m.index[raw]; ok {
		return i, nil
	}
	if i, err := strconv.Atoi(strings.TrimSpace(raw)); err == nil {
		if i < 0 || i >= len(m.classes) {
			return 0, fmt.Errorf("label %d outside the %d classes", i, len(m.classes))
		}
		return i, nil
	}
	known := make([]string, 0, len(m.index))
	for k := range m.index {
		known = append(known, fmt.Sprintf("%q", k))
	}
	slices.Sort(known)
	return 0, fmt.Errorf("label %q is not a class (known: %s; map the data set's labels to classes with labels:, or drop them with exclude_labels:)", truncate(raw, 60), truncate(strings.Join(known, ", "), 300))
}

// targets maps every raw label.
func (m labelMap) targets(labels []string) ([]int, error) {
	out := make([]int, len(labels))
	for i, l := range labels {
		var err error
		if out[i], err = m.lookup(l); err != nil {
			return nil, fmt.Errorf("example %d: %w", i, err)
		}
	}
	return out, nil
}
