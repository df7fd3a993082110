package contamination

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"slices"
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
	// Cache, when set, keeps each shard's hashes once it has been read, and
	// serves them to later scans of the same shard (see HashCache).
	Cache *HashCache
	// Rehash decodes every training image for its perceptual hash, ignoring
	// the hashes stored in the json (phash.Field) and cached ones (the
	// cache's entries are rewritten).
	Rehash bool
	// Progress, when set, is called about once a second, and at the end,
	// with the counts so far.
	Progress func(Stats)
	// Warn, when set, is told of problems that do not stop the scan: a
	// corrupt cache entry (recomputed), one that could not be written, a
	// shard whose identity is unknown (not cached). It may be called from
	// several goroutines at once.
	Warn func(error)
}

// Stats count a scan's work.
type Stats struct {
	// Shards read, samples seen, and images among them.
	Shards, Samples, Images int64
	// Bytes of image data read and hashed (none for shards served by the
	// cache).
	Bytes int64
	// Perceptual is the number of images decoded for a perceptual hash,
	// Stored the number whose hash came from their json (phash.Field);
	// Verified those decoded in full to compare pixels with a candidate.
	Perceptual, Stored, Verified int64
	// Undecodable counts images that could not be decoded (matched by
	// file only).
	Undecodable int64
	// CachedShards were served by the cache (their Images are counted
	// too); CacheWrites is the number of shard entries written.
	CachedShards, CacheWrites int64
	// Elapsed is the scan's wall time.
	Elapsed time.Duration
}

// trainItem is one training image waiting to be hashed.
type trainItem struct {
	shard, key string
	index      int // among the shard's images
	image      []byte
	meta       map[string]json.RawMessage
	acc        *shardRecords // collects the shard's records for the cache; nil when not caching
}

// trainRecord is what matching needs of a training image, and what the
// cache keeps of it.
type trainRecord struct {
	index int // among the shard's images
	key   string
	file  [32]byte   // SHA-256 of the image member
	json  [][32]byte // hashes its json names (HashFields)
	phash uint64
	state uint8 // what phash holds
}

// A trainRecord's perceptual state.
const (
	phNone   uint8 = iota // not computed: an exact-only scan
	phHash                // phash is the image's perceptual hash
	phFlat                // too little contrast for a perceptual hash
	phFailed              // the image could not be decoded
)

// shardRecords collects one shard's records as the workers hash them.
type shardRecords struct {
	mu   sync.Mutex
	recs []trainRecord
	wg   sync.WaitGroup // one per image sent
}

// scanSetup is what every goroutine of a scan shares.
type scanSetup struct {
	cfg        stream.Config
	opts       ScanOptions
	perceptual bool // near-duplicates are searched: training images need perceptual hashes
	stored     bool // read perceptual hashes from the json
	st         *counters
	fail       func(error)
}

// Scan streams training shards once and matches every image against the
// index: cfg says where the shards are (Shards: the syntax of
// data.train_shards — paths, globs, brace ranges, URLs, "biomedica:"
// specs) and how to read them (Format, Parquet, HTTP, MaxMemberBytes). A
// training image's perceptual hash comes, in order of preference, from
// opts.Cache, from its json (phash.Field, which bmca's ETL writes), or from
// decoding it. A shard that cannot be read stops the scan with an error: a
// report that silently skipped training data would understate the
// overlap.
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
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	readers := opts.Readers
	if readers <= 0 {
		readers = 2 * workers
	}
	readers = min(readers, len(shards))
	su := &scanSetup{cfg: cfg, opts: opts, st: &counters{}}
	su.perceptual = x.maxDistance >= 0 && len(x.perceptual) > 0
	su.stored = su.perceptual && !opts.Rehash
	su.cfg.MetaFields = opts.HashFields
	if su.stored {
		su.cfg.MetaFields = append(slices.Clone(opts.HashFields), phash.Field)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		errOnce  sync.Once
		firstErr error
	)
	su.fail = func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	urls := make(chan string)
	work := make(chan trainItem, 4*workers)
	var readWG, hashWG sync.WaitGroup
	for range readers {
		readWG.Go(func() {
			for url := range urls {
				if err := x.scanShard(ctx, su, url, work); err != nil {
					if ctx.Err() == nil {
						su.fail(fmt.Errorf("contamination: %w", err))
					}
					return
				}
				su.st.shards.Add(1)
			}
		})
	}
	for range workers {
		hashWG.Go(func() {
			for it := range work {
				rec := x.hashItem(it, su)
				x.matchRecord(rec, it.shard, it.image, su.st)
				if it.acc != nil {
					it.acc.mu.Lock()
					it.acc.recs = append(it.acc.recs, rec)
					it.acc.mu.Unlock()
					it.acc.wg.Done()
				}
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
					opts.Progress(su.st.snapshot(start))
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
	stats := su.st.snapshot(start)
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

// scanShard matches one shard's images: from the cache when it has them,
// else by sending them to the hash workers (and caching what they find
// once the whole shard is read).
func (x *Index) scanShard(ctx context.Context, su *scanSetup, url string, work chan<- trainItem) error {
	var key entryKey
	caching := su.opts.Cache != nil
	if caching {
		id, err := identify(ctx, su.cfg, url)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			su.warn(fmt.Errorf("hash cache: shard %s is read without its cache: %w", url, err))
			caching = false
		}
		key = newEntryKey(id, su.cfg, su.opts.HashFields)
	}
	if caching && !su.opts.Rehash {
		e, err := su.opts.Cache.load(key)
		if err != nil {
			su.warn(err)
		}
		if e != nil && (e.Perceptual || !su.perceptual) {
			return x.scanCached(ctx, su, url, e)
		}
	}
	var acc *shardRecords
	if caching {
		acc = &shardRecords{}
	}
	var samples int64
	n := 0
	for s, err := range stream.ReadImages(ctx, su.cfg, url) {
		if err != nil {
			return err
		}
		su.st.samples.Add(1)
		samples++
		_, data, ok := s.Image()
		if !ok {
			continue
		}
		if acc != nil {
			acc.wg.Add(1)
		}
		select {
		case work <- trainItem{shard: s.URL, key: s.Key, index: n, image: data, meta: s.Meta, acc: acc}:
			n++
		case <-ctx.Done():
			if acc != nil {
				acc.wg.Done()
			}
			return ctx.Err()
		}
	}
	if acc == nil {
		return nil
	}
	acc.wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// A shard that changed while it was read may mix two versions: its
	// hashes are not kept.
	if id, err := identify(ctx, su.cfg, url); err != nil || id != key.ID {
		su.warn(fmt.Errorf("hash cache: shard %s changed while it was read; its hashes are not cached", url))
		return nil
	}
	slices.SortFunc(acc.recs, func(a, b trainRecord) int { return a.index - b.index })
	if err := su.opts.Cache.store(key, &shardEntry{Samples: samples, Perceptual: su.perceptual, Records: acc.recs}); err != nil {
		su.warn(err)
		return nil
	}
	su.st.cacheWrites.Add(1)
	return nil
}

func (su *scanSetup) warn(err error) {
	if su.opts.Warn != nil {
		su.opts.Warn(err)
	}
}

// scanCached matches a shard's cached records. Candidate near-duplicates
// need the image itself (to tell the same pixels from a near copy): for
// those the shard is read again, and only they are decoded.
func (x *Index) scanCached(ctx context.Context, su *scanSetup, url string, e *shardEntry) error {
	su.st.samples.Add(e.Samples)
	su.st.cachedShards.Add(1)
	type candidate struct {
		near  []int
		phash uint64
	}
	pending := map[string]candidate{}
	for _, r := range e.Records {
		su.st.images.Add(1)
		if r.state == phFailed {
			su.st.undecodable.Add(1)
		}
		if near := x.matchRecord(r, url, nil, su.st); len(near) > 0 {
			pending[r.key] = candidate{near, r.phash}
		}
	}
	if len(pending) == 0 {
		return ctx.Err()
	}
	for s, err := range stream.ReadImages(ctx, su.cfg, url) {
		if err != nil {
			return err
		}
		c, ok := pending[s.Key]
		if !ok {
			continue
		}
		if _, data, ok := s.Image(); ok {
			x.verify(data, c.near, url, s.Key, c.phash, su.st)
			delete(pending, s.Key)
		}
		if len(pending) == 0 {
			return nil
		}
	}
	return fmt.Errorf("shard %s no longer holds the samples %v its cached hashes name", url, slices.Sorted(maps.Keys(pending)))
}

// hashItem computes a training image's record: its file SHA-256, the
// hashes its json names and, when the scan needs one, its perceptual hash,
// from the json when stored there, else by decoding.
func (x *Index) hashItem(it trainItem, su *scanSetup) trainRecord {
	rec := trainRecord{index: it.index, key: it.key, file: sha256.Sum256(it.image)}
	su.st.images.Add(1)
	su.st.bytes.Add(int64(len(it.image)))
	for _, f := range su.opts.HashFields {
		var s string
		if raw, ok := it.meta[f]; ok && json.Unmarshal(raw, &s) == nil {
			if jh, ok := parseHexHash(s); ok {
				rec.json = append(rec.json, jh)
			}
		}
	}
	if !su.perceptual {
		return rec
	}
	if su.stored {
		var s string
		if raw, ok := it.meta[phash.Field]; ok && json.Unmarshal(raw, &s) == nil {
			if h, err := phash.Parse(s); err == nil {
				su.st.stored.Add(1)
				rec.phash, rec.state = h.Bits, phHash
				if h.Flat {
					rec.state = phFlat
				}
				return rec
			}
		}
	}
	h, err := perceptualHash(it.image, nil)
	switch {
	case err != nil:
		su.st.undecodable.Add(1)
		rec.state = phFailed
	case h.Flat:
		su.st.perceptual.Add(1)
		rec.state = phFlat
	default:
		su.st.perceptual.Add(1)
		rec.phash, rec.state = h.Bits, phHash
	}
	return rec
}

// matchRecord records the evaluation images a training image matches. A
// candidate near-duplicate is verified against image (decoded in full);
// without image (a cached record) the candidates are returned for the
// caller to verify.
func (x *Index) matchRecord(r trainRecord, shard string, image []byte, st *counters) (near []int) {
	h := Hashes{File: r.file, PHash: r.phash, Flat: r.state != phHash}
	byFile, near := x.candidates(h, r.json)
	for _, i := range byFile {
		x.record(i, match{kind: tasks.MatchExactFile, shard: shard, key: r.key})
	}
	if len(near) == 0 || image == nil {
		return near
	}
	x.verify(image, near, shard, r.key, r.phash, st)
	return nil
}

// verify decodes a training image in full and records it as the same
// pixels as, or a near-duplicate of, each candidate.
func (x *Index) verify(image []byte, near []int, shard, key string, ph uint64, st *counters) {
	st.verified.Add(1)
	pixels, perr := HashPixels(image)
	for _, i := range near {
		kind := tasks.MatchNear
		if perr == nil && pixels == x.images[i].h.Pixels {
			kind = tasks.MatchExactPixels
		}
		x.record(i, match{kind: kind, distance: phash.Distance(x.images[i].h.PHash, ph), shard: shard, key: key})
	}
}

// counters are Stats in progress.
type counters struct {
	shards, samples, images, bytes, perceptual, stored, verified, undecodable, cachedShards, cacheWrites atomic.Int64
}

func (c *counters) snapshot(start time.Time) Stats {
	return Stats{Shards: c.shards.Load(), Samples: c.samples.Load(), Images: c.images.Load(), Bytes: c.bytes.Load(),
		Perceptual: c.perceptual.Load(), Stored: c.stored.Load(), Verified: c.verified.Load(), Undecodable: c.undecodable.Load(),
		CachedShards: c.cachedShards.Load(), CacheWrites: c.cacheWrites.Load(), Elapsed: time.Since(start)}
}
