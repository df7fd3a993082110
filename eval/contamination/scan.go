package contamination

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bmca/bmca/data/phash"
	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/eval/tasks"
)

// DefaultHashFields are the json fields read as the SHA-256 (hex) of a
// training sample's image file: bmca's shards write image_hash so.
var DefaultHashFields = []string{"image_hash"}

// AddSuite hashes the evaluated images of every task of a suite (AddTask).
// Tasks whose data is absent, or whose definition is invalid, are left out
// and returned with the reason.
func (x *Index) AddSuite(ctx context.Context, suite *tasks.Suite, shards tasks.ShardSource, progress func(task string, done int)) (absent map[string]string, err error) {
	absent = map[string]string{}
	invalid := suite.InvalidTasks()
	for i, t := range suite.Tasks {
		if invalid[i] != nil {
			absent[t.Name] = "invalid task"
			continue
		}
		var p func(int)
		if progress != nil {
			p = func(done int) { progress(t.Name, done) }
		}
		reason, err := x.AddTask(ctx, t, shards, 0, p)
		if err != nil {
			return absent, err
		}
		if reason != "" {
			absent[t.Name] = reason
		}
	}
	return absent, nil
}

// ScanOptions adjust Scan.
type ScanOptions struct {
	// Workers hash training images in parallel (0: GOMAXPROCS).
	Workers int
	// Readers is the number of shards read at once (0: 2 per worker, at
	// most the number of shards); more hide network latency.
	Readers int
	// HashFields are the json fields holding a hex SHA-256 of the sample's
	// image file (nil: DefaultHashFields).
	HashFields []string
	// Progress, when set, is called about once a second, and at the end,
	// with the counts so far.
	Progress func(Stats)
}

// Stats count a scan's work.
type Stats struct {
	// Shards read, samples seen, and images among them.
	Shards, Samples, Images int64
	// Bytes of image data hashed.
	Bytes int64
	// Perceptual is the number of images decoded for a perceptual hash;
	// Verified those decoded in full to compare pixels with a candidate.
	Perceptual, Verified int64
	// Undecodable counts images that could not be decoded (matched by
	// file only).
	Undecodable int64
	// Elapsed is the scan's wall time.
	Elapsed time.Duration
}

// trainItem is one training image waiting to be hashed.
type trainItem struct {
	shard, key string
	image      []byte
	meta       map[string]json.RawMessage
}

// Scan streams training shards once and matches every image against the
// index: cfg says where the shards are (Shards: the syntax of
// data.train_shards — paths, globs, brace ranges, URLs, "biomedica:"
// specs) and how to read them (Format, Parquet, HTTP, MaxMemberBytes). A
// shard that cannot be read stops the scan with an error: a report that
// silently skipped training data would understate the overlap.
func (x *Index) Scan(ctx context.Context, cfg stream.Config, opts ScanOptions) (Stats, error) {
	start := time.Now()
	shards, err := stream.ExpandSources(cfg.Shards)
	if err != nil {
		return Stats{}, err
	}
	if len(shards) == 0 {
		return Stats{}, fmt.Errorf("contamination: no training shards match %q", cfg.Shards)
	}
	if opts.HashFields == nil {
		opts.HashFields = DefaultHashFields
	}
	cfg.MetaFields = opts.HashFields
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	readers := opts.Readers
	if readers <= 0 {
		readers = 2 * workers
	}
	readers = min(readers, len(shards))
	perceptual := x.maxDistance >= 0 && len(x.perceptual) > 0

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		st       counters
		errOnce  sync.Once
		firstErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	urls := make(chan string)
	work := make(chan trainItem, 4*workers)
	var readWG, hashWG sync.WaitGroup
	for range readers {
		readWG.Go(func() {
			for url := range urls {
				for s, err := range stream.ReadImages(ctx, cfg, url) {
					if err != nil {
						if ctx.Err() == nil {
							fail(fmt.Errorf("contamination: %w", err))
						}
						return
					}
					st.samples.Add(1)
					_, data, ok := s.Image()
					if !ok {
						continue
					}
					select {
					case work <- trainItem{shard: s.URL, key: s.Key, image: data, meta: s.Meta}:
					case <-ctx.Done():
						return
					}
				}
				st.shards.Add(1)
			}
		})
	}
	for range workers {
		hashWG.Go(func() {
			for it := range work {
				x.match(it, perceptual, opts.HashFields, &st)
			}
		})
	}
	stopTicker := make(chan struct{})
	var tickWG sync.WaitGroup
	if opts.Progress != nil {
		tickWG.Go(func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					opts.Progress(st.snapshot(start))
				case <-stopTicker:
					return
				}
			}
		})
	}
feed:
	for _, u := range shards {
		select {
		case urls <- u:
		case <-ctx.Done():
			break feed
		}
	}
	close(urls)
	readWG.Wait()
	close(work)
	hashWG.Wait()
	close(stopTicker)
	tickWG.Wait()
	stats := st.snapshot(start)
	if opts.Progress != nil {
		opts.Progress(stats)
	}
	x.mu.Lock()
	x.trained += stats.Images
	x.mu.Unlock()
	if firstErr != nil {
		return stats, firstErr
	}
	return stats, ctx.Err() // the caller's cancellation
}

// match hashes one training image and records what it matches.
func (x *Index) match(it trainItem, perceptual bool, fields []string, st *counters) {
	st.images.Add(1)
	st.bytes.Add(int64(len(it.image)))
	h, err := HashTrain(it.image, perceptual)
	if perceptual {
		if err != nil {
			st.undecodable.Add(1)
		} else {
			st.perceptual.Add(1)
		}
	}
	var jsonHashes [][32]byte
	for _, f := range fields {
		var s string
		if raw, ok := it.meta[f]; ok && json.Unmarshal(raw, &s) == nil {
			if jh, ok := parseHexHash(s); ok {
				jsonHashes = append(jsonHashes, jh)
			}
		}
	}
	if err != nil {
		h.Flat = true // no perceptual hash: file matches only
	}
	byFile, near := x.candidates(h, jsonHashes)
	for _, i := range byFile {
		x.record(i, match{kind: tasks.MatchExactFile, shard: it.shard, key: it.key})
	}
	if len(near) == 0 {
		return
	}
	st.verified.Add(1)
	pixels, perr := HashPixels(it.image)
	for _, i := range near {
		d := phash.Distance(x.images[i].h.PHash, h.PHash)
		kind := tasks.MatchNear
		if perr == nil && pixels == x.images[i].h.Pixels {
			kind = tasks.MatchExactPixels
		}
		x.record(i, match{kind: kind, distance: d, shard: it.shard, key: it.key})
	}
}

// counters are Stats in progress.
type counters struct {
	shards, samples, images, bytes, perceptual, verified, undecodable atomic.Int64
}

func (c *counters) snapshot(start time.Time) Stats {
	return Stats{Shards: c.shards.Load(), Samples: c.samples.Load(), Images: c.images.Load(), Bytes: c.bytes.Load(),
		Perceptual: c.perceptual.Load(), Verified: c.verified.Load(), Undecodable: c.undecodable.Load(), Elapsed: time.Since(start)}
}
