package contamination

import (
	"context"
	"encoding/hex"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/bmca/bmca/data/phash"
	"github.com/bmca/bmca/eval/tasks"
)

// DefaultMaxDistance is the Hamming distance (of 64 bits) up to which two
// perceptual hashes count as the same image. On the shared real figures and
// medical images, copies re-encoded at JPEG quality 30–90, resized to 25–70%
// or saved as PNG stayed within 6 bits; unrelated images, even chest X-rays
// of different patients, were 12 or more apart.
const DefaultMaxDistance = 8

// evalImage is one hashed evaluation image.
type evalImage struct {
	task    string
	example int
	key     string
	h       Hashes
}

// match is the closest training image found for an evaluation image.
type match struct {
	kind     string
	distance int
	shard    string
	key      string
}

// rank orders match kinds, closest first.
func rank(kind string) int {
	return slices.Index([]string{tasks.MatchExactFile, tasks.MatchExactPixels, tasks.MatchNear}, kind)
}

// Index holds the evaluation images' hashes and what the scan found.
// Add images (AddTask, AddSuite) before Scan; Scan may be called for
// several training sets in turn, adding to the matches.
type Index struct {
	maxDistance int
	images      []evalImage
	byFile      map[[32]byte][]int
	perceptual  []int // images with an informative perceptual hash
	checked     map[string]int
	order       []string // tasks in the order added
	trained     int64    // training images compared

	mu      sync.Mutex
	matches map[int]match // image → closest training match
}

// NewIndex returns an empty index matching perceptual hashes up to
// maxDistance bits apart; a negative maxDistance matches exact copies only,
// so the scan decodes no training image.
func NewIndex(maxDistance int) *Index {
	return &Index{maxDistance: maxDistance, byFile: map[[32]byte][]int{}, checked: map[string]int{}, matches: map[int]match{}}
}

// MaxDistance is the index's near-duplicate threshold (-1: exact only).
func (x *Index) MaxDistance() int { return x.maxDistance }

// Len is the number of evaluation images indexed.
func (x *Index) Len() int { return len(x.images) }

// add records an image's hashes.
func (x *Index) add(task string, example int, key string, h Hashes) {
	i := len(x.images)
	x.images = append(x.images, evalImage{task: task, example: example, key: key, h: h})
	x.byFile[h.File] = append(x.byFile[h.File], i)
	if !h.Flat && x.maxDistance >= 0 {
		x.perceptual = append(x.perceptual, i)
	}
}

// AddTask hashes the images of one task's evaluated split (see
// tasks.TestImages), workers at a time (0: GOMAXPROCS). reason is non-empty
// when the task's data is absent; nothing is added then. progress, when
// set, is called with the images hashed so far.
func (x *Index) AddTask(ctx context.Context, t tasks.Task, shards tasks.ShardSource, workers int, progress func(done int)) (reason string, err error) {
	images, reason, err := tasks.TestImages(ctx, t, shards)
	if err != nil || reason != "" {
		return reason, err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	type job struct {
		ex  tasks.Example
		h   Hashes
		err error
	}
	var hashed []job
	var mu sync.Mutex
	in := make(chan tasks.Example)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ex := range in {
				h, err := HashEval(ex.Image)
				if err != nil {
					err = fmt.Errorf("%s, sample %q: %w", ex.Source, ex.Key, err)
				}
				ex.Image = nil
				mu.Lock()
				hashed = append(hashed, job{ex, h, err})
				if progress != nil {
					progress(len(hashed))
				}
				mu.Unlock()
			}
		})
	}
	var readErr error
	for ex, err := range images {
		if err != nil {
			readErr = err
			break
		}
		in <- ex
	}
	close(in)
	wg.Wait()
	if readErr != nil {
		return "", fmt.Errorf("task %s: %w", t.Name, readErr)
	}
	slices.SortFunc(hashed, func(a, b job) int { return a.ex.Index - b.ex.Index })
	for _, j := range hashed {
		if j.err != nil {
			return "", fmt.Errorf("task %s: %w", t.Name, j.err)
		}
	}
	for _, j := range hashed {
		x.add(t.Name, j.ex.Index, j.ex.Key, j.h)
	}
	x.checked[t.Name] = len(hashed)
	x.order = append(x.order, t.Name)
	return "", nil
}

// candidates are the evaluation images a training image's hashes may
// match: by file (its bytes, or the file its json hash field names), and
// by perceptual hash within the distance.
func (x *Index) candidates(h Hashes, jsonHashes [][32]byte) (byFile []int, near []int) {
	byFile = append(byFile, x.byFile[h.File]...)
	for _, jh := range jsonHashes {
		byFile = append(byFile, x.byFile[jh]...)
	}
	if x.maxDistance < 0 || h.Flat {
		return byFile, nil
	}
	for _, i := range x.perceptual {
		if phash.Distance(x.images[i].h.PHash, h.PHash) <= x.maxDistance {
			near = append(near, i)
		}
	}
	return byFile, near
}

// record keeps m for image i if it is closer than what was found before.
func (x *Index) record(i int, m match) {
	x.mu.Lock()
	defer x.mu.Unlock()
	old, ok := x.matches[i]
	if !ok || rank(m.kind) < rank(old.kind) || (m.kind == old.kind && m.distance < old.distance) {
		x.matches[i] = m
	}
}

// Reports turns the matches into one report per task added (by name), for
// tasks.Env.Overlaps.
func (x *Index) Reports() map[string]*tasks.Overlap {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := map[string]*tasks.Overlap{}
	for _, name := range x.order {
		out[name] = &tasks.Overlap{Checked: x.checked[name], MaxDistance: max(x.maxDistance, -1), TrainImages: x.trained}
	}
	ids := make([]int, 0, len(x.matches))
	for i := range x.matches {
		ids = append(ids, i)
	}
	slices.Sort(ids)
	for _, i := range ids {
		img, m := x.images[i], x.matches[i]
		o := out[img.task]
		switch m.kind {
		case tasks.MatchExactFile:
			o.ExactFile++
		case tasks.MatchExactPixels:
			o.ExactPixels++
		default:
			o.Near++
		}
		o.Matches = append(o.Matches, tasks.OverlapMatch{Example: img.example, Key: img.key, Kind: m.kind, Distance: m.distance, TrainShard: m.shard, TrainKey: m.key})
	}
	return out
}

// parseHexHash reads a hex SHA-256 (a json hash field); ok is false for
// anything else.
func parseHexHash(s string) (h [32]byte, ok bool) {
	if len(s) != 64 {
		return h, false
	}
	_, err := hex.Decode(h[:], []byte(s))
	return h, err == nil
}
