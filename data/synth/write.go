package synth

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ErrForeignDir is returned by Write when dir exists, is not empty and holds
// no dataset written by this package: Write never replaces such a directory.
var ErrForeignDir = errors.New("synth: directory exists and is not a synthetic dataset")

// shardModTime is the modification time of every tar member, fixed so that
// shards are byte-identical across runs.
var shardModTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Random streams: each sample draws from its own generator, keyed by the
// seed, the stream of its split and its index. Held-out streams differ from
// the training stream, so held-out images are never training images.
const (
	streamTrain     = 1
	streamRetrieval = 2
	streamZeroShot  = 16 // + index of the task in zeroShotSpecs
)

// Write generates the dataset of cfg under dir and returns its manifest; see
// the package comment for the layout.
//
// If dir already holds a dataset with the same config hash whose files match
// their SHA-256, Write returns its manifest and writes nothing. Otherwise it
// generates everything into a temporary sibling directory and renames it to
// dir, replacing an older dataset there; an interrupted or cancelled Write
// leaves dir as it was. Write refuses (ErrForeignDir) to replace a non-empty
// directory that holds no synthetic-dataset manifest.
func Write(ctx context.Context, dir string, cfg Config) (*Manifest, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	dir = filepath.Clean(dir)
	if m, ok := existing(dir, cfg); ok {
		return m, nil
	}
	if err := checkReplaceable(dir); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("synth: write %s: %w", dir, err)
	}
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if base == "." || base == ".." || base == string(filepath.Separator) {
		return nil, fmt.Errorf("synth: write %q: the dataset needs a directory of its own, e.g. %s", dir, filepath.Join(dir, "synth"))
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("synth: write %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("synth: write %s: %w", dir, err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("synth: write %s: %w", dir, err)
	}
	m, err := generate(ctx, tmp, cfg)
	if err != nil {
		return nil, fmt.Errorf("synth: write %s: %w", dir, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("synth: write %s: %w", dir, err)
	}
	if err := commit(tmp, dir); err != nil {
		// Another process may have written the same dataset meanwhile.
		if m, ok := existing(dir, cfg); ok {
			return m, nil
		}
		return nil, fmt.Errorf("synth: write %s: %w", dir, err)
	}
	committed = true
	return m, nil
}

// existing returns the manifest of the dataset in dir if it was generated
// from cfg and its files are intact.
func existing(dir string, cfg Config) (*Manifest, bool) {
	m, err := ReadManifest(dir)
	if err != nil || m.ConfigHash != cfg.Hash() || m.Generator != GeneratorVersion {
		return nil, false
	}
	if m.Verify(dir) != nil {
		return nil, false
	}
	return m, true
}

// checkReplaceable returns ErrForeignDir if dir holds something that Write
// must not delete.
func checkReplaceable(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("synth: write %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("synth: write %s: %w (not a directory)", dir, ErrForeignDir)
	}
	if _, err := ReadManifest(dir); err == nil {
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("synth: write %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("synth: write %s: %w (no readable %s)", dir, ErrForeignDir, ManifestName)
	}
	return nil
}

// commit renames the finished tmp directory to dir, moving an older dir out
// of the way first and deleting it afterwards.
func commit(tmp, dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(tmp, dir)
	}
	old, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".old-")
	if err != nil {
		return err
	}
	if err := os.Remove(old); err != nil {
		return err
	}
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if rerr := os.Rename(old, dir); rerr != nil {
			return errors.Join(err, fmt.Errorf("restoring %s from %s: %w", dir, old, rerr))
		}
		return err
	}
	return os.RemoveAll(old)
}

// shardJob is one tar shard to generate.
type shardJob struct {
	path   string        // relative to the dataset dir
	stream uint64        // random stream of the split
	prefix string        // sample key prefix
	first  int           // index of the first sample in the split
	count  int           // samples in the shard
	task   *zeroShotSpec // nil for train and retrieval shards
}

// generate writes all shards, sizes.json and MANIFEST.json under root.
func generate(ctx context.Context, root string, cfg Config) (*Manifest, error) {
	stored := cfg
	stored.Workers = 0 // not part of the dataset; ReadManifest could not restore it
	m := &Manifest{
		Version:    ManifestVersion,
		Generator:  GeneratorVersion,
		ConfigHash: cfg.Hash(),
		Config:     stored,
		ImageExt:   "png",
		Train:      Split{Samples: cfg.TrainSamples, Sizes: "train/sizes.json"},
	}
	var jobs []shardJob
	split := func(total int, stream uint64, prefix string, name func(i int) string, task *zeroShotSpec) []string {
		var shards []string
		for i, first := 0, 0; first < total; i, first = i+1, first+cfg.SamplesPerShard {
			p := name(i)
			jobs = append(jobs, shardJob{path: p, stream: stream, prefix: prefix, first: first,
				count: min(cfg.SamplesPerShard, total-first), task: task})
			shards = append(shards, p)
		}
		return shards
	}
	m.Train.Shards = split(cfg.TrainSamples, streamTrain, "train",
		func(i int) string { return fmt.Sprintf("train/train-%06d.tar", i) }, nil)
	for k := range zeroShotSpecs {
		z := &zeroShotSpecs[k]
		shards := split(cfg.EvalSamplesPerTask, streamZeroShot+uint64(k), z.name,
			func(i int) string { return evalShardName(z.name, i) }, z)
		m.Tasks = append(m.Tasks, Task{
			Name: z.name, Kind: KindZeroShot, Attribute: z.name, Values: z.values(),
			Shards: shards, Samples: cfg.EvalSamplesPerTask,
			ClassNames: append([]string(nil), z.classNames...),
			Templates:  append([]string(nil), z.templates...),
		})
	}
	m.Tasks = append(m.Tasks, Task{
		Name: retrievalTaskName, Kind: KindRetrieval, Samples: cfg.RetrievalSamples,
		Shards: split(cfg.RetrievalSamples, streamRetrieval, retrievalTaskName,
			func(i int) string { return evalShardName(retrievalTaskName, i) }, nil),
	})
	for _, d := range []string{"train", "eval"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			return nil, err
		}
	}

	files, err := runJobs(ctx, root, cfg, jobs)
	if err != nil {
		return nil, err
	}
	sizes := make(map[string]int)
	for i, j := range jobs {
		if j.stream == streamTrain {
			sizes[path.Base(j.path)] = files[i].Samples
		}
	}
	sizesJSON, err := json.Marshal(sizes)
	if err != nil {
		return nil, err
	}
	sizesFile, err := writeFile(root, m.Train.Sizes, append(sizesJSON, '\n'))
	if err != nil {
		return nil, err
	}
	nTrain := len(m.Train.Shards)
	m.Files = append(append(append(m.Files, files[:nTrain]...), sizesFile), files[nTrain:]...)

	// Write "&" as is rather than as \u0026, for people reading the manifest.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	if _, err := writeFile(root, ManifestName, b.Bytes()); err != nil {
		return nil, err
	}
	return m, nil
}

// runJobs generates the shards on cfg.Workers goroutines and returns their
// File records in job order. It stops at the first error or when ctx ends.
func runJobs(ctx context.Context, root string, cfg Config, jobs []shardJob) ([]File, error) {
	workers := cfg.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(jobs))
	files := make([]File, len(jobs))
	var (
		next     atomic.Int64
		failed   atomic.Bool
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	// stopped is polled once per sample; it reads ctx.Err rather than a
	// derived context so that cancellation is seen at once.
	stopped := func() error {
		if failed.Load() {
			return errStopped
		}
		return ctx.Err()
	}
	for range workers {
		wg.Go(func() {
			enc := &png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &pngPool{}}
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				f, err := writeShard(root, cfg, jobs[i], enc, stopped)
				if err != nil {
					errOnce.Do(func() { firstErr = err; failed.Store(true) })
					return
				}
				files[i] = f
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return files, nil
}

// errStopped reports that another worker failed first.
var errStopped = errors.New("synth: stopped after another shard failed")

// writeShard generates the samples of one job into a tar file.
func writeShard(root string, cfg Config, j shardJob, enc *png.Encoder, stopped func() error) (File, error) {
	full := filepath.Join(root, filepath.FromSlash(j.path))
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	bw := bufio.NewWriterSize(f, 1<<18)
	counter := &countingWriter{w: io.MultiWriter(bw, h)}
	tw := tar.NewWriter(counter)
	var img bytes.Buffer
	for k := range j.count {
		if err := stopped(); err != nil {
			return File{}, err
		}
		index := j.first + k
		rng := sampleRNG(cfg.Seed, j.stream, uint64(index))
		var attrs Attributes
		class := -1
		if j.task != nil {
			class = index % len(j.task.classNames)
			attrs = j.task.withClass(rng, class)
		} else {
			attrs = RandomAttributes(rng)
		}
		picture := Render(rng, attrs, cfg.ImageSize)
		caption := Caption(rng, attrs)
		img.Reset()
		if err := enc.Encode(&img, picture); err != nil {
			return File{}, fmt.Errorf("%s: %w", j.path, err)
		}
		meta, err := json.Marshal(attrs)
		if err != nil {
			return File{}, fmt.Errorf("%s: %w", j.path, err)
		}
		key := fmt.Sprintf("%s-%06d", j.prefix, index)
		members := []struct {
			ext  string
			data []byte
		}{{"png", img.Bytes()}, {"txt", []byte(caption)}, {"json", meta}}
		if class >= 0 {
			members = append(members, struct {
				ext  string
				data []byte
			}{"cls", []byte(strconv.Itoa(class))})
		}
		for _, mem := range members {
			hdr := &tar.Header{
				Typeflag: tar.TypeReg,
				Name:     key + "." + mem.ext,
				Size:     int64(len(mem.data)),
				Mode:     0o644,
				ModTime:  shardModTime,
				Format:   tar.FormatUSTAR,
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return File{}, fmt.Errorf("%s, sample %q: %w", j.path, key, err)
			}
			if _, err := tw.Write(mem.data); err != nil {
				return File{}, fmt.Errorf("%s, sample %q: %w", j.path, key, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return File{}, fmt.Errorf("%s: %w", j.path, err)
	}
	if err := bw.Flush(); err != nil {
		return File{}, fmt.Errorf("%s: %w", j.path, err)
	}
	if err := f.Sync(); err != nil {
		return File{}, fmt.Errorf("%s: %w", j.path, err)
	}
	if err := f.Close(); err != nil {
		return File{}, fmt.Errorf("%s: %w", j.path, err)
	}
	return File{Path: j.path, SHA256: hex.EncodeToString(h.Sum(nil)), Bytes: counter.n, Samples: j.count}, nil
}

// writeFile writes a small file under root and returns its record.
func writeFile(root, rel string, data []byte) (File, error) {
	full := filepath.Join(root, filepath.FromSlash(rel))
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return File{}, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return File{}, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return File{}, err
	}
	if err := f.Close(); err != nil {
		return File{}, err
	}
	sum := sha256.Sum256(data)
	return File{Path: rel, SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(data))}, nil
}

// sampleRNG returns the generator of sample index of a stream.
func sampleRNG(seed, stream, index uint64) *rand.Rand {
	return rand.New(rand.NewPCG(splitmix64(seed^splitmix64(stream)), splitmix64(index^stream<<48)))
}

// splitmix64 is the SplitMix64 finaliser, a bijective bit mixer.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// pngPool reuses one encoder buffer per worker.
type pngPool struct{ b *png.EncoderBuffer }

func (p *pngPool) Get() *png.EncoderBuffer  { b := p.b; p.b = nil; return b }
func (p *pngPool) Put(b *png.EncoderBuffer) { p.b = b }
