package remote

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// ReaderAt reads byte ranges of a URL with Range requests, through a small
// cache of aligned chunks: parquet readers issue many small reads near each
// other (page headers, then pages), which a chunk serves in one round trip.
// It is safe for concurrent use.
type ReaderAt struct {
	ctx   context.Context
	url   string
	opts  Options
	size  int64
	chunk int64

	mu     sync.Mutex
	cached []cachedChunk // most recently used last
	limit  int

	// Requests counts the range requests sent, for tests and statistics.
	Requests atomic.Int64
}

type cachedChunk struct {
	index int64
	data  []byte
}

// DefaultChunk is the size of the ranges ReaderAt fetches: 4 MiB, as
// parquet-go's maintainers suggest for object storage.
const DefaultChunk = 4 << 20

// NewReaderAt learns the size of url (with a one-byte range request) and
// returns a ReaderAt caching up to cacheChunks chunks of chunkSize bytes
// (0 selects DefaultChunk and 8).
func NewReaderAt(ctx context.Context, url string, opts Options, chunkSize int64, cacheChunks int) (*ReaderAt, error) {
	opts = opts.withDefaults()
	if chunkSize <= 0 {
		chunkSize = DefaultChunk
	}
	if cacheChunks <= 0 {
		cacheChunks = 8
	}
	r := &ReaderAt{ctx: ctx, url: url, opts: opts, chunk: chunkSize, limit: cacheChunks}
	rt := retrier{opts: opts, url: url}
	for {
		size, err := r.probe()
		if err == nil {
			r.size = size
			return r, nil
		}
		if err := rt.fail(ctx, err); err != nil {
			return nil, err
		}
	}
}

// probe asks for the first byte to learn the total size.
func (r *ReaderAt) probe() (int64, error) {
	r.Requests.Add(1)
	resp, err := get(r.ctx, r.opts, r.url, 0, 1)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return responseSize(r.url, resp)
}

// Size returns the size of the file.
func (r *ReaderAt) Size() int64 { return r.size }

// ReadAt implements io.ReaderAt.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset %d", r.url, off)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= r.size {
			return n, io.EOF
		}
		data, err := r.chunkAt(pos / r.chunk)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], data[pos%r.chunk:])
	}
	return n, nil
}

// chunkAt returns chunk i, from the cache or the network.
func (r *ReaderAt) chunkAt(i int64) ([]byte, error) {
	r.mu.Lock()
	for k, c := range r.cached {
		if c.index == i {
			r.cached = append(append(r.cached[:k:k], r.cached[k+1:]...), c)
			r.mu.Unlock()
			return c.data, nil
		}
	}
	r.mu.Unlock()

	start := i * r.chunk
	n := min(r.chunk, r.size-start)
	data := make([]byte, n)
	rt := retrier{opts: r.opts, url: r.url}
	got := int64(0)
	for got < n {
		r.Requests.Add(1)
		resp, err := get(r.ctx, r.opts, r.url, start+got, n-got)
		if err == nil {
			if resp.StatusCode == http.StatusOK && start+got > 0 {
				// No range support: the whole file is not what we asked for.
				resp.Body.Close()
				return nil, fmt.Errorf("%s: server ignores Range requests", r.url)
			}
			var m int
			m, err = io.ReadFull(resp.Body, data[got:])
			resp.Body.Close()
			if m > 0 {
				rt.failures = 0
			}
			got += int64(m)
			if err == nil || got == n {
				break
			}
		}
		if err := rt.fail(r.ctx, err); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	r.cached = append(r.cached, cachedChunk{index: i, data: data})
	if len(r.cached) > r.limit {
		r.cached = r.cached[1:]
	}
	r.mu.Unlock()
	return data, nil
}
