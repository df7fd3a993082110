package synth

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// smallConfig is a dataset that writes in a fraction of a second.
func smallConfig() Config {
	return Config{
		Seed:               3,
		ImageSize:          40,
		TrainSamples:       100,
		SamplesPerShard:    40,
		EvalSamplesPerTask: 10,
		RetrievalSamples:   12,
	}
}

func mustWrite(t *testing.T, dir string, cfg Config) *Manifest {
	t.Helper()
	m, err := Write(context.Background(), dir, cfg)
	if err != nil {
		t.Fatalf("Write(%s): %v", dir, err)
	}
	return m
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	for key, mutate := range map[string]func(*Config){
		"image_size":            func(c *Config) { c.ImageSize = MinImageSize - 1 },
		"train_samples":         func(c *Config) { c.TrainSamples = 0 },
		"samples_per_shard":     func(c *Config) { c.SamplesPerShard = 0 },
		"eval_samples_per_task": func(c *Config) { c.EvalSamplesPerTask = 3 },
		"retrieval_samples":     func(c *Config) { c.RetrievalSamples = 0 },
		"workers":               func(c *Config) { c.Workers = -1 },
	} {
		c := DefaultConfig()
		mutate(&c)
		err := c.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), key+":") {
			t.Errorf("%s: Validate() = %v, want an error naming %s", key, err, key)
		}
		if _, werr := Write(context.Background(), filepath.Join(t.TempDir(), "d"), c); werr == nil {
			t.Errorf("%s: Write accepted an invalid config", key)
		}
	}
}

func TestConfigHashIgnoresWorkers(t *testing.T) {
	a, b := smallConfig(), smallConfig()
	b.Workers = 7
	if a.Hash() != b.Hash() {
		t.Error("Workers changed the config hash")
	}
	b.Seed++
	if a.Hash() == b.Hash() {
		t.Error("Seed did not change the config hash")
	}
}

// TestWriteDeterministic writes the same config twice, with different worker
// counts, and compares every byte.
func TestWriteDeterministic(t *testing.T) {
	root := t.TempDir()
	c1, c2 := smallConfig(), smallConfig()
	c1.Workers, c2.Workers = 1, 3
	m1 := mustWrite(t, filepath.Join(root, "a"), c1)
	m2 := mustWrite(t, filepath.Join(root, "b"), c2)
	if !reflect.DeepEqual(m1.Files, m2.Files) {
		t.Fatalf("file lists differ:\n%+v\n%+v", m1.Files, m2.Files)
	}
	for _, f := range append(m1.Files, File{Path: ManifestName}) {
		x, err1 := os.ReadFile(filepath.Join(root, "a", f.Path))
		y, err2 := os.ReadFile(filepath.Join(root, "b", f.Path))
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between runs (%v, %v)", f.Path, err1, err2)
		}
	}
	c3 := smallConfig()
	c3.Seed++
	m3 := mustWrite(t, filepath.Join(root, "c"), c3)
	if m3.Files[0].SHA256 == m1.Files[0].SHA256 {
		t.Error("another seed gave the same first shard")
	}
}

func modTimes(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out[p] = info.ModTime()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWriteIdempotent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg := smallConfig()
	m1 := mustWrite(t, dir, cfg)
	before := modTimes(t, dir)
	time.Sleep(20 * time.Millisecond)
	cfg.Workers = 2 // does not change the dataset
	m2 := mustWrite(t, dir, cfg)
	if !reflect.DeepEqual(m1, m2) {
		t.Error("second Write returned another manifest")
	}
	if after := modTimes(t, dir); !reflect.DeepEqual(before, after) {
		t.Error("second Write with the same config touched the files")
	}

	// A damaged shard is noticed and the dataset regenerated.
	shard := filepath.Join(dir, filepath.FromSlash(m1.Train.Shards[1]))
	if err := os.WriteFile(shard, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m1.Verify(dir); err == nil {
		t.Fatal("Verify accepted a damaged shard")
	}
	m3 := mustWrite(t, dir, cfg)
	if err := m3.Verify(dir); err != nil {
		t.Errorf("after regeneration: %v", err)
	}
	if !reflect.DeepEqual(m1.Files, m3.Files) {
		t.Error("regenerated dataset differs from the original")
	}

	// Another config replaces the dataset.
	cfg.TrainSamples = 50
	m4 := mustWrite(t, dir, cfg)
	if m4.ConfigHash == m1.ConfigHash || m4.Train.Samples != 50 {
		t.Errorf("new config: hash %s, %d training samples", m4.ConfigHash, m4.Train.Samples)
	}
	got, err := ReadManifest(dir)
	if err != nil || got.ConfigHash != m4.ConfigHash {
		t.Errorf("ReadManifest after replacement: %v, %v", got, err)
	}
	assertNoLeftovers(t, filepath.Dir(dir), "data")
}

// assertNoLeftovers checks that parent holds nothing but the named entries.
func assertNoLeftovers(t *testing.T, parent string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, want) {
		t.Errorf("%s holds %q, want %q", parent, names, want)
	}
}

// cancelAfter is a context whose Err turns to Canceled after n calls, so that
// a test can cancel Write deterministically in the middle of generation.
type cancelAfter struct {
	context.Context
	mu   sync.Mutex
	n    int
	done chan struct{}
}

func newCancelAfter(n int) *cancelAfter {
	return &cancelAfter{Context: context.Background(), n: n, done: make(chan struct{})}
}

func (c *cancelAfter) Done() <-chan struct{} { return c.done }

func (c *cancelAfter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n <= 0 {
		return context.Canceled
	}
	c.n--
	if c.n == 0 {
		close(c.done)
	}
	return nil
}

func TestWriteCancelled(t *testing.T) {
	t.Run("before start", func(t *testing.T) {
		parent := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := Write(ctx, filepath.Join(parent, "data"), smallConfig()); !errors.Is(err, context.Canceled) {
			t.Fatalf("Write = %v, want context.Canceled", err)
		}
		assertNoLeftovers(t, parent)
	})
	t.Run("during generation", func(t *testing.T) {
		parent := t.TempDir()
		_, err := Write(newCancelAfter(60), filepath.Join(parent, "data"), smallConfig())
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Write = %v, want context.Canceled", err)
		}
		assertNoLeftovers(t, parent)
	})
	t.Run("keeps the previous dataset", func(t *testing.T) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "data")
		old := mustWrite(t, dir, smallConfig())
		cfg := smallConfig()
		cfg.Seed = 99
		if _, err := Write(newCancelAfter(60), dir, cfg); !errors.Is(err, context.Canceled) {
			t.Fatalf("Write = %v, want context.Canceled", err)
		}
		got, err := ReadManifest(dir)
		if err != nil || got.ConfigHash != old.ConfigHash {
			t.Fatalf("previous dataset gone: %v, %v", got, err)
		}
		if err := got.Verify(dir); err != nil {
			t.Error(err)
		}
		assertNoLeftovers(t, parent, "data")
	})
}

func TestWriteRefusesForeignDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(context.Background(), dir, smallConfig()); !errors.Is(err, ErrForeignDir) {
		t.Fatalf("Write = %v, want ErrForeignDir", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "notes.txt")); err != nil || string(b) != "mine" {
		t.Error("Write touched a foreign directory")
	}
	// An empty directory is fine.
	empty := t.TempDir()
	mustWrite(t, empty, smallConfig())
}

func TestManifestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg := smallConfig()
	m := mustWrite(t, dir, cfg)
	got, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, got) {
		t.Errorf("ReadManifest differs from Write's manifest:\n%+v\n%+v", got, m)
	}
	if m.Config != cfg || m.ConfigHash != cfg.Hash() || m.Generator != GeneratorVersion || m.ImageExt != "png" {
		t.Errorf("header: %+v", m)
	}
	if len(m.Train.Shards) != 3 || m.Train.Samples != 100 {
		t.Errorf("train split %+v", m.Train)
	}
	var names []string
	for _, task := range m.Tasks {
		names = append(names, task.Name)
		switch task.Kind {
		case KindZeroShot:
			if len(task.ClassNames) != len(task.Values) || len(task.ClassNames) < 3 || len(task.Templates) == 0 {
				t.Errorf("task %s: %+v", task.Name, task)
			}
			if task.Samples != cfg.EvalSamplesPerTask || task.Attribute != task.Name {
				t.Errorf("task %s: %+v", task.Name, task)
			}
		case KindRetrieval:
			if task.Samples != cfg.RetrievalSamples || task.ClassNames != nil {
				t.Errorf("task %s: %+v", task.Name, task)
			}
		default:
			t.Errorf("task %s: kind %q", task.Name, task.Kind)
		}
	}
	if want := []string{"modality", "shape", "count", "position", "retrieval"}; !slices.Equal(names, want) {
		t.Errorf("tasks %q, want %q", names, want)
	}
	if task, ok := m.Task("count"); !ok || !slices.Equal(task.Values, []string{"1", "2", "3"}) {
		t.Errorf("count task values: %+v", task)
	}
	if task, _ := m.Task("position"); !slices.Equal(task.Values, []string{"upper left", "upper right", "lower left", "lower right"}) {
		t.Errorf("position task values: %q", task.Values)
	}
	if _, err := ReadManifest(t.TempDir()); err == nil {
		t.Error("ReadManifest of an empty dir succeeded")
	}
}

// sample is one WebDataset sample read back from a shard.
type sample struct {
	key     string
	members map[string][]byte
}

// readShard groups the members of a tar shard into samples by the WebDataset
// rule: key = path up to the first dot of the basename, ext = the rest.
func readShard(t *testing.T, path string) []sample {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keyExt := regexp.MustCompile(`^((?:.*/|)[^.]+)[.]([^/]*)$`)
	var out []sample
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Mode != 0o644 || hdr.Uid != 0 || hdr.Gid != 0 ||
			!hdr.ModTime.Equal(shardModTime) || hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("%s: %s: header %+v", path, hdr.Name, hdr)
		}
		m := keyExt.FindStringSubmatch(hdr.Name)
		if m == nil {
			t.Fatalf("%s: member %q is not KEY.EXT", path, hdr.Name)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == 0 || out[len(out)-1].key != m[1] {
			out = append(out, sample{key: m[1], members: map[string][]byte{}})
		}
		s := out[len(out)-1]
		if _, dup := s.members[m[2]]; dup {
			t.Errorf("%s: sample %s repeats .%s", path, m[1], m[2])
		}
		s.members[m[2]] = data
	}
	return out
}

func TestShardContents(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg := smallConfig()
	m := mustWrite(t, dir, cfg)

	var sizes map[string]int
	b, err := os.ReadFile(filepath.Join(dir, m.Train.Sizes))
	if err != nil || json.Unmarshal(b, &sizes) != nil {
		t.Fatalf("sizes.json: %v %s", err, b)
	}
	shardSamples := map[string]int{}
	for _, f := range m.Files {
		shardSamples[f.Path] = f.Samples
	}

	keys := map[string]bool{}
	trainImages := map[[32]byte]bool{}
	check := func(shard string, task *Task) (classes map[int]int) {
		classes = map[int]int{}
		samples := readShard(t, filepath.Join(dir, shard))
		if len(samples) != shardSamples[shard] {
			t.Errorf("%s: %d samples, manifest says %d", shard, len(samples), shardSamples[shard])
		}
		for _, s := range samples {
			if keys[s.key] {
				t.Errorf("%s: key %s repeats", shard, s.key)
			}
			keys[s.key] = true
			want := []string{"json", "png", "txt"}
			if task != nil && task.Kind == KindZeroShot {
				want = []string{"cls", "json", "png", "txt"}
			}
			var got []string
			for ext := range s.members {
				got = append(got, ext)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: sample %s has members %q, want %q", shard, s.key, got, want)
			}
			img, err := png.Decode(bytes.NewReader(s.members["png"]))
			if err != nil || img.Bounds().Dx() != cfg.ImageSize || img.Bounds().Dy() != cfg.ImageSize {
				t.Fatalf("%s: sample %s: png %v, %v", shard, s.key, err, img.Bounds())
			}
			var a Attributes
			if err := json.Unmarshal(s.members["json"], &a); err != nil || a.Validate() != nil {
				t.Fatalf("%s: sample %s: json %s: %v", shard, s.key, s.members["json"], err)
			}
			caption := string(s.members["txt"])
			if len(caption) > MaxCaptionBytes {
				t.Errorf("%s: sample %s: caption %q too long", shard, s.key, caption)
			}
			if miss := missingMentions(caption, a); len(miss) > 0 {
				t.Errorf("%s: sample %s: caption %q misses %v of %s", shard, s.key, caption, miss, s.members["json"])
			}
			sum := sha256.Sum256(s.members["png"])
			if task == nil {
				trainImages[sum] = true
			} else if trainImages[sum] {
				t.Errorf("%s: held-out sample %s is a training image", shard, s.key)
			}
			if task != nil && task.Kind == KindZeroShot {
				cls, err := strconv.Atoi(string(s.members["cls"]))
				if err != nil || cls < 0 || cls >= len(task.ClassNames) {
					t.Fatalf("%s: sample %s: cls %q", shard, s.key, s.members["cls"])
				}
				var raw map[string]any
				_ = json.Unmarshal(s.members["json"], &raw)
				if task.Values[cls] != toString(raw[task.Attribute]) {
					t.Errorf("%s: sample %s: cls %d (%s) but json %s", shard, s.key, cls, task.Values[cls], s.members["json"])
				}
				classes[cls]++
			}
		}
		return classes
	}
	total := 0
	for _, shard := range m.Train.Shards {
		n := len(readShard(t, filepath.Join(dir, shard)))
		if sizes[filepath.Base(shard)] != n {
			t.Errorf("sizes.json says %d for %s, shard has %d", sizes[filepath.Base(shard)], shard, n)
		}
		total += n
		check(shard, nil)
	}
	if total != cfg.TrainSamples {
		t.Errorf("%d training samples, want %d", total, cfg.TrainSamples)
	}
	for i := range m.Tasks {
		task := &m.Tasks[i]
		classes := map[int]int{}
		for _, shard := range task.Shards {
			for c, n := range check(shard, task) {
				classes[c] += n
			}
		}
		if task.Kind == KindZeroShot {
			lo, hi := cfg.EvalSamplesPerTask/len(task.ClassNames), (cfg.EvalSamplesPerTask+len(task.ClassNames)-1)/len(task.ClassNames)
			for c := range task.ClassNames {
				if classes[c] < lo || classes[c] > hi {
					t.Errorf("task %s: class %d has %d samples, want %d..%d", task.Name, c, classes[c], lo, hi)
				}
			}
		}
	}
}

func toString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.Itoa(int(v))
	}
	return ""
}

// BenchmarkWrite generates the default dataset and reports samples per second.
func BenchmarkWrite(b *testing.B) {
	cfg := DefaultConfig()
	n := cfg.TrainSamples + 4*cfg.EvalSamplesPerTask + cfg.RetrievalSamples
	for i := 0; b.Loop(); i++ {
		if _, err := Write(context.Background(), filepath.Join(b.TempDir(), strconv.Itoa(i)), cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "samples/s")
}
