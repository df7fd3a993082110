package stream

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bmca/bmca/data/remote"
)

// Batches yields training batches forever, epoch after epoch, starting at
// start; the caller stops by breaking out of the loop or cancelling ctx.
//
// Each epoch reads every shard once, in an order shuffled from (Seed,
// epoch), passes the samples through the shuffle buffer seeded from (Seed,
// epoch), and batches them. Bad samples are skipped and counted in Stats;
// a shard that fails is counted and left. The only fatal errors are an
// epoch that yields no usable sample at all and a tokenizer that returns
// the wrong number of ids; a cancelled ctx ends the sequence with ctx's
// error.
//
// Resuming replays the epoch's shuffle without decoding the first
// start.Samples samples, so it costs reading those bytes again and yields
// exactly the batches an uninterrupted stream would have.
func (s *Stream) Batches(ctx context.Context, start Position) iter.Seq2[Batch, error] {
	return s.run(ctx, start, false)
}

// Once yields one pass over the shards for evaluation: shards in the order
// given, samples in file order, no shuffling, and a last batch with fewer
// samples when they do not divide evenly. Skipping and counting work as in
// Batches. The batches' Next positions count samples of that single pass.
func (s *Stream) Once(ctx context.Context) iter.Seq2[Batch, error] {
	return s.run(ctx, Position{}, true)
}

// job is one entry of the ordered queue: a sample to process, or the end
// of an epoch.
type job struct {
	epoch  int
	index  int64  // position of the sample in the epoch's shuffled order
	seed   uint64 // augmentation seed, fixed by (Seed, epoch, index)
	sample Sample
	done   chan result // receives the worker's result; buffered

	end *epochEnd // set on the marker that closes an epoch
}

// epochEnd summarises an epoch as the reader saw it.
type epochEnd struct {
	read        int64 // samples read, including those skipped to resume
	skipped     int64 // samples skipped to resume
	shards      []string
	shardErrors int
	lastErr     error
}

// result is a worker's output for one sample.
type result struct {
	pixels []float32
	tokens []int32
	reason Reason // empty for a usable sample
	err    error  // why decoding failed, for ReasonDecode
}

// run builds the pipeline: one reader goroutine (shard order, tar parsing,
// shuffle buffer, resume skipping), Workers goroutines decoding images and
// tokenising captions, and the caller's goroutine, which takes results in
// the reader's order and assembles batches. The ordered queue is what makes
// the output independent of the worker count; its capacity (one batch plus
// two jobs per worker) bounds the samples in flight.
func (s *Stream) run(ctx context.Context, start Position, once bool) iter.Seq2[Batch, error] {
	return func(yield func(Batch, error) bool) {
		if start.Epoch < 0 || start.Samples < 0 {
			yield(Batch{}, fmt.Errorf("stream: invalid start position %+v", start))
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		// Cancel first, then wait, so that no goroutine outlives the loop.
		defer wg.Wait()
		defer cancel()

		ordered := make(chan *job, s.cfg.BatchSize+2*s.cfg.Workers)
		work := make(chan *job)
		wg.Go(func() {
			defer close(work)
			defer close(ordered)
			s.read(ctx, start, once, ordered, work)
		})
		for range s.cfg.Workers {
			wg.Go(func() {
				for j := range work {
					start := time.Now()
					r := s.process(j.sample, j.seed)
					s.timing.decodedOne(time.Since(start))
					j.done <- r
				}
			})
		}
		s.assemble(ctx, start, once, ordered, yield)
	}
}

// read is the reader goroutine. It sends every sample to ordered, then to
// work, and an epochEnd marker after each epoch; it stops when ctx is done.
func (s *Stream) read(ctx context.Context, start Position, once bool, ordered, work chan<- *job) {
	skip := start.Samples
	for epoch := start.Epoch; ; epoch++ {
		if !s.readEpoch(ctx, epoch, skip, once, ordered, work) || once {
			return
		}
		skip = 0
	}
}

// laneItem is what a reader lane hands the merger: a sample, or the end of
// the lane.
type laneItem struct {
	sample Sample
}

// readEpoch runs one epoch: the reader lanes, their round-robin merge, the
// cluster cap, the shuffle buffer and the resume skip. It returns false
// when ctx ended it.
func (s *Stream) readEpoch(ctx context.Context, epoch int, skip int64, once bool, ordered, work chan<- *job) bool {
	lanes := s.cfg.Readers
	buf := newShuffler(s.cfg.ShuffleBuffer, s.cfg.Seed, epoch)
	if once {
		lanes, buf = 1, newShuffler(1, s.cfg.Seed, epoch)
	}
	// Counted before the lanes start: a lane can fail its first shard before
	// this goroutine runs again, and that failure belongs to this epoch.
	errorsBefore := s.Stats().ShardErrors
	laneCtx, stopLanes := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopLanes()
	chans := make([]chan laneItem, lanes)
	for l := range lanes {
		chans[l] = make(chan laneItem, 16)
		wg.Go(func() { s.lane(laneCtx, epoch, l, lanes, once, chans[l]) })
	}

	end := &epochEnd{skipped: skip}
	perEpoch := s.cfg.SamplesPerEpoch
	if once {
		perEpoch = 0
	}
	// The reader's own time runs from mark to each hand-over; the time a
	// hand-over blocks (the workers or the consumer behind) is not its own.
	mark := time.Now()
	defer func() { s.timing.reading(time.Since(mark)) }()
	emit := func(sm Sample) bool {
		j := &job{epoch: epoch, index: end.read, sample: sm}
		end.read++
		if j.index < skip {
			return true
		}
		j.seed = mix64(uint64(s.cfg.Seed) ^ mix64(uint64(epoch)<<32^uint64(j.index)))
		j.done = make(chan result, 1)
		s.timing.handedOver(time.Since(mark))
		defer func() { mark = time.Now() }()
		select {
		case ordered <- j:
		case <-ctx.Done():
			return false
		}
		select {
		case work <- j:
		case <-ctx.Done():
			return false
		}
		return true
	}
	clusterCount := map[string]int{}
	open := lanes
	full := false // the epoch reached SamplesPerEpoch
	for open > 0 && !full {
		for l := range lanes {
			if chans[l] == nil {
				continue
			}
			var it laneItem
			var ok bool
			select {
			case it, ok = <-chans[l]:
			case <-ctx.Done():
				return false
			}
			if !ok {
				chans[l] = nil
				open--
				continue
			}
			if capN := s.cfg.Filter.ClusterCap; capN > 0 && it.sample.bad == "" {
				c, _ := metaString(it.sample.Meta, fieldCluster)
				if clusterCount[c] >= capN {
					s.counts.filtered(ReasonClusterCap)
					continue
				}
				clusterCount[c]++
			}
			if out, ok := buf.push(it.sample); ok && !emit(out) {
				return false
			}
			if perEpoch > 0 && end.read >= perEpoch {
				full = true
				break
			}
		}
	}
	if !full {
		for sm := range buf.drain {
			if !emit(sm) {
				return false
			}
			if perEpoch > 0 && end.read >= perEpoch {
				break
			}
		}
	}
	stopLanes()
	wg.Wait()
	end.shards = s.epochShardNames(epoch, once)
	if st := s.Stats(); st.ShardErrors > errorsBefore {
		end.shardErrors = int(st.ShardErrors - errorsBefore)
		end.lastErr = errors.New(st.LastShardError)
	}
	select {
	case ordered <- &job{epoch: epoch, end: end}:
	case <-ctx.Done():
		return false
	}
	return true
}

// lane reads lane l's shards for the epoch, applies the stateless filters
// and sends the samples on out, which it closes when its shards are done
// (never, for resampled or fixed-size epochs, until ctx ends).
func (s *Stream) lane(ctx context.Context, epoch, l, lanes int, once bool, out chan<- laneItem) {
	defer close(out)
	next := s.laneShards(epoch, l, lanes, once)
	for {
		url, ok := next()
		if !ok {
			return
		}
		s.counts.shardOpened()
		err := s.readShardURL(ctx, url, func(sm Sample) bool {
			if sm.bad == "" && s.filterActive() {
				if r := s.cfg.Filter.keep(sm.Meta, sm.Key, uint64(s.cfg.Seed)); r != "" {
					s.counts.filtered(r)
					return true
				}
			}
			select {
			case out <- laneItem{sample: sm}:
				return true
			case <-ctx.Done():
				return false
			}
		})
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.counts.shardError(err)
		}
	}
}

// filterActive reports whether any stateless filter is configured.
func (s *Stream) filterActive() bool {
	f := s.cfg.Filter
	return len(f.fields()) > 0 && !(len(f.fields()) == 1 && f.ClusterCap > 0 && f.ClusterWeights == nil && f.DefaultClusterWeight == 0)
}

// laneShards returns the generator of lane l's shards for the epoch:
// resampled, weighted draws with replacement from a generator seeded by
// (Seed, epoch, rank, lane), without end; otherwise the epoch's shuffled
// order (file order for Once), this rank's share (every WorldSize-th) and
// this lane's share of that, repeated in reshuffled passes when the epoch
// has a fixed size.
func (s *Stream) laneShards(epoch, l, lanes int, once bool) func() (string, bool) {
	if s.cfg.Resampled && !once {
		rng := rand.New(rand.NewPCG(mix64(uint64(s.cfg.Seed)^uint64(s.cfg.Rank)<<40^uint64(l)<<20), uint64(epoch)))
		cum := make([]float64, len(s.shards))
		total := 0.0
		for i, sh := range s.shards {
			total += sh.weight
			cum[i] = total
		}
		return func() (string, bool) {
			if total <= 0 {
				return "", false
			}
			x := rng.Float64() * total
			i, _ := slices.BinarySearch(cum, x)
			for i < len(cum)-1 && s.shards[i].weight == 0 {
				i++
			}
			return s.shards[min(i, len(cum)-1)].url, true
		}
	}
	pass, i := 0, 0
	var share []string
	passShare := func(pass int) []string {
		all := s.Shards()
		if !once {
			all = shuffledShards(all, s.cfg.Seed, epoch, pass)
		}
		var out []string
		for k := s.cfg.Rank; k < len(all); k += s.cfg.WorldSize {
			if (k/s.cfg.WorldSize)%lanes == l {
				out = append(out, all[k])
			}
		}
		return out
	}
	share = passShare(0)
	return func() (string, bool) {
		if i == len(share) {
			if once || s.cfg.SamplesPerEpoch == 0 || len(share) == 0 {
				return "", false
			}
			pass++
			share, i = passShare(pass), 0
		}
		i++
		return share[i-1], true
	}
}

// epochShardNames lists the epoch's shards for error messages.
func (s *Stream) epochShardNames(epoch int, once bool) []string {
	if once || s.cfg.Resampled {
		return s.Shards()
	}
	return shuffledShards(s.Shards(), s.cfg.Seed, epoch, 0)
}

// readShardURL opens one shard, local or remote, and reads it in its
// format.
func (s *Stream) readShardURL(ctx context.Context, url string, yield func(Sample) bool) error {
	keep := func(ext string) bool { return ext == CaptionExtension || slices.Contains(imageExtensions[:], ext) }
	return readURL(ctx, s.cfg, s.metaFields, keep, url, yield)
}

// readURL opens one shard, local or remote, and reads it in its format,
// keeping the members keep accepts and the json fields in meta.
func readURL(ctx context.Context, cfg Config, meta map[string]bool, keep func(ext string) bool, url string, yield func(Sample) bool) error {
	opts := readOptions{keep: keep, meta: meta, maxMember: cfg.MaxMemberBytes}
	parquetFile := cfg.Format == "parquet" || (cfg.Format == "" && strings.HasSuffix(strings.ToLower(url), ".parquet"))
	if remote.IsRemote(url) {
		if parquetFile {
			ra, err := remote.NewReaderAt(ctx, url, cfg.HTTP, 0, 0)
			if err != nil {
				return fmt.Errorf("shard %s: %w", url, err)
			}
			return readParquet(ctx, url, ra, ra.Size(), cfg.Parquet, meta, cfg.MaxMemberBytes, yield)
		}
		r, err := remote.Open(ctx, url, cfg.HTTP)
		if err != nil {
			return fmt.Errorf("shard %s: %w", url, err)
		}
		defer r.Close()
		return readShard(ctx, url, r, opts, yield)
	}
	f, err := os.Open(url)
	if err != nil {
		return fmt.Errorf("shard %s: %w", url, err)
	}
	defer f.Close()
	if parquetFile {
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("shard %s: %w", url, err)
		}
		return readParquet(ctx, url, f, st.Size(), cfg.Parquet, meta, cfg.MaxMemberBytes, yield)
	}
	return readShard(ctx, url, f, opts, yield)
}

// process checks, decodes and tokenises one sample.
func (s *Stream) process(sm Sample, seed uint64) result {
	if sm.bad != "" {
		return result{reason: sm.bad}
	}
	_, data, ok := sm.Image()
	if !ok {
		return result{reason: ReasonNoImage}
	}
	caption, ok := sm.Caption()
	if !ok {
		return result{reason: ReasonNoCaption}
	}
	if strings.TrimSpace(caption) == "" {
		return result{reason: ReasonEmptyCaption}
	}
	pixels, err := s.img(data, seed)
	if err != nil {
		return result{reason: ReasonDecode, err: fmt.Errorf("shard %s, sample %q: %w", sm.URL, sm.Key, err)}
	}
	return result{pixels: pixels, tokens: s.tok.Encode(caption)}
}

// assemble runs in the caller's goroutine: it takes jobs in order, waits for
// their results, and yields batches. A full batch is held until the next
// job shows whether the epoch ended, so that the last batch of an epoch
// points at the next epoch's start instead of its own end.
func (s *Stream) assemble(ctx context.Context, start Position, once bool, ordered <-chan *job, yield func(Batch, error) bool) {
	ctxLen := s.tok.ContextLength()
	pixelLen := 3 * s.cfg.ImageSize * s.cfg.ImageSize
	var (
		cur      batchBuilder
		pending  *Batch // a full batch waiting for its Next
		consumed int64  // samples of the current epoch consumed so far
		usable   int64  // usable samples of the current epoch
	)
	consumed = start.Samples
	for {
		var j *job
		select {
		case next, ok := <-ordered:
			if !ok {
				// The reader only stops early when ctx is done.
				if err := ctx.Err(); err != nil {
					yield(Batch{}, err)
				}
				return
			}
			j = next
		case <-ctx.Done():
			yield(Batch{}, ctx.Err())
			return
		}

		if pending != nil {
			pending.Next = Position{Epoch: j.epoch, Samples: consumed}
			if j.end != nil {
				pending.Next = Position{Epoch: j.epoch + 1}
			}
			if !yield(*pending, nil) {
				return
			}
			pending = nil
		}

		if j.end != nil {
			if err := s.checkEpoch(j.epoch, j.end, usable, !once && s.cfg.DropLast); err != nil {
				yield(Batch{}, err)
				return
			}
			if cur.size > 0 && (once || !s.cfg.DropLast) {
				b := cur.take()
				b.Epoch = j.epoch
				b.Next = Position{Epoch: j.epoch + 1}
				s.counts.delivered(b.Size)
				if !yield(b, nil) {
					return
				}
			}
			cur = batchBuilder{}
			if once {
				return
			}
			consumed, usable = 0, 0
			continue
		}

		var res result
		select {
		case res = <-j.done:
		case <-ctx.Done():
			yield(Batch{}, ctx.Err())
			return
		}
		consumed = j.index + 1
		if res.reason == "" && pixelLen == 0 {
			pixelLen = len(res.pixels)
		}
		if res.reason == "" && len(res.pixels) != pixelLen {
			res.reason = ReasonImageSize
		}
		if res.reason != "" {
			s.counts.skip(res.reason, res.err)
			continue
		}
		if len(res.tokens) != ctxLen {
			yield(Batch{}, fmt.Errorf("stream: tokenizer returned %d ids for sample %q, its context length is %d", len(res.tokens), j.sample.Key, ctxLen))
			return
		}
		usable++
		if cur.size == 0 {
			cur.reserve(s.cfg.BatchSize, pixelLen, ctxLen)
		}
		cur.add(j.sample.Key, res)
		if cur.size == s.cfg.BatchSize {
			b := cur.take()
			b.Epoch = j.epoch
			s.counts.delivered(b.Size)
			pending = &b
		}
	}
}

// checkEpoch turns an epoch without data into an error naming its shards,
// and so, when the last partial batch of an epoch is dropped, an epoch read
// from its start with fewer usable samples than one batch: every epoch
// would then end without a batch, and training would wait forever. An
// epoch resumed part-way is only checked for having read anything, since
// its usable samples may all lie before the resume point.
func (s *Stream) checkEpoch(epoch int, end *epochEnd, usable int64, dropsLast bool) error {
	tooFew := dropsLast && end.skipped == 0 && usable > 0 && usable < int64(s.cfg.BatchSize)
	if end.read > 0 && (usable > 0 || end.skipped > 0) && !tooFew {
		return nil
	}
	names := end.shards
	more := ""
	if len(names) > 5 {
		names, more = names[:5], fmt.Sprintf(" and %d more", len(end.shards)-5)
	}
	st := s.Stats()
	what := "no usable sample"
	if tooFew {
		what = fmt.Sprintf("only %d usable samples, fewer than one batch of %d (an epoch's last, partial batch is dropped in training, so no batch can ever be made)", usable, s.cfg.BatchSize)
	}
	msg := fmt.Sprintf("stream: epoch %d: %s in %d shards (%s%s); read %d samples; skipped so far: %v; filtered so far: %v",
		epoch, what, len(end.shards), strings.Join(names, ", "), more, end.read, st.Skipped, st.Filtered)
	if end.shardErrors > 0 {
		return fmt.Errorf("%s; %d shards failed, last: %w", msg, end.shardErrors, end.lastErr)
	}
	return errors.New(msg)
}

// batchBuilder accumulates samples into a Batch.
type batchBuilder struct {
	b    Batch
	size int
}

// reserve allocates a whole batch up front, since batches are large.
func (bb *batchBuilder) reserve(batchSize, pixelLen, ctxLen int) {
	bb.b.Pixels = make([]float32, 0, batchSize*pixelLen)
	bb.b.Tokens = make([]int32, 0, batchSize*ctxLen)
	bb.b.Keys = make([]string, 0, batchSize)
}

func (bb *batchBuilder) add(key string, r result) {
	bb.b.Pixels = append(bb.b.Pixels, r.pixels...)
	bb.b.Tokens = append(bb.b.Tokens, r.tokens...)
	bb.b.Keys = append(bb.b.Keys, key)
	bb.size++
}

func (bb *batchBuilder) take() Batch {
	b := bb.b
	b.Size = bb.size
	*bb = batchBuilder{}
	return b
}

// shuffledShards returns the shard order of an epoch's pass, a permutation
// drawn from (seed, epoch, pass) alone.
func shuffledShards(shards []string, seed int64, epoch, pass int) []string {
	out := slices.Clone(shards)
	rng := rand.New(rand.NewPCG(uint64(seed)^uint64(pass)<<48, uint64(epoch)<<1))
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// shuffler is the sample shuffle buffer: once full, each sample pushed
// replaces a uniformly chosen buffered one, which comes out; at the end the
// rest comes out in random order. This is webdataset's shuffle with the
// initial fill equal to the buffer size; a buffer of 1 keeps the order.
type shuffler struct {
	buf  []Sample
	size int
	rng  *rand.Rand
}

// newShuffler seeds the buffer from (seed, epoch) on a stream distinct from
// the shard order's.
func newShuffler(size int, seed int64, epoch int) *shuffler {
	return &shuffler{size: size, rng: rand.New(rand.NewPCG(uint64(seed), uint64(epoch)<<1|1))}
}

// push adds s and returns the sample that leaves the buffer, if any.
func (b *shuffler) push(s Sample) (Sample, bool) {
	if len(b.buf) < b.size {
		b.buf = append(b.buf, s)
		return Sample{}, false
	}
	k := b.rng.IntN(b.size)
	out := b.buf[k]
	b.buf[k] = s
	return out, true
}

// drain empties the buffer in random order.
func (b *shuffler) drain(yield func(Sample) bool) {
	for len(b.buf) > 0 {
		k := b.rng.IntN(len(b.buf))
		out := b.buf[k]
		last := len(b.buf) - 1
		b.buf[k] = b.buf[last]
		b.buf[last] = Sample{}
		b.buf = b.buf[:last]
		if !yield(out) {
			return
		}
	}
}
