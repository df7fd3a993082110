package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// Reader streams one URL from start to end, reconnecting with a Range
// request from the last byte received whenever the connection fails,
// stalls or ends early. Memory use is the transport's buffers only.
type Reader struct {
	ctx   context.Context
	url   string
	opts  Options
	off   int64 // position in the file: the start offset plus bytes delivered
	size  int64 // total size, -1 until known
	body  io.ReadCloser
	stop  context.CancelFunc // cancels the current request
	idle  *time.Timer
	stall atomic.Bool
	rt    retrier
	err   error // sticky error
}

// Open starts reading url. It connects before returning, so a missing or
// forbidden file fails here, with the HTTP status in the error.
func Open(ctx context.Context, url string, opts Options) (*Reader, error) {
	return OpenAt(ctx, url, 0, opts)
}

// OpenAt is Open from byte off on: it continues a download that an earlier
// process left half done, asking for the rest with a Range request.
func OpenAt(ctx context.Context, url string, off int64, opts Options) (*Reader, error) {
	opts = opts.withDefaults()
	r := &Reader{ctx: ctx, url: url, opts: opts, off: off, size: -1}
	r.rt = retrier{opts: opts, url: url}
	for {
		err := r.connect()
		if err == nil {
			return r, nil
		}
		if err := r.rt.fail(ctx, err); err != nil {
			return nil, err
		}
	}
}

// Size returns the total size when the server reported it, else -1.
func (r *Reader) Size() int64 { return r.size }

// Offset returns the position in the file: where OpenAt started plus the
// bytes Read has delivered.
func (r *Reader) Offset() int64 { return r.off }

// connect issues the request for the bytes from r.off on.
func (r *Reader) connect() error {
	ctx, cancel := context.WithCancel(r.ctx)
	resp, err := get(ctx, r.opts, r.url, r.off, 0)
	if err != nil {
		cancel()
		return err
	}
	skip := int64(0)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, total, ok := contentRange(resp.Header.Get("Content-Range"))
		if !ok || start > r.off {
			resp.Body.Close()
			cancel()
			return fmt.Errorf("%s: bad Content-Range %q for a request from byte %d", r.url, resp.Header.Get("Content-Range"), r.off)
		}
		skip = r.off - start
		if total >= 0 {
			r.size = total
		}
	default: // 200: the server ignored the range; skip what was delivered
		skip = r.off
		if resp.ContentLength >= 0 {
			r.size = resp.ContentLength
		}
	}
	r.body, r.stop = resp.Body, cancel
	r.stall.Store(false)
	r.idle = time.AfterFunc(r.opts.IdleTimeout, func() {
		r.stall.Store(true)
		cancel()
	})
	if skip > 0 {
		if _, err := io.CopyN(io.Discard, r.body, skip); err != nil {
			r.drop()
			return fmt.Errorf("%s: skipping %d bytes to resume: %w", r.url, skip, err)
		}
	}
	return nil
}

// drop closes the current response.
func (r *Reader) drop() {
	if r.body == nil {
		return
	}
	r.idle.Stop()
	r.stop()
	r.body.Close()
	r.body = nil
}

// Read reads the next bytes of the file, reconnecting as needed.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if r.body == nil {
			if err := r.connect(); err != nil {
				if err := r.rt.fail(r.ctx, err); err != nil {
					r.err = err
					return 0, err
				}
				continue
			}
		}
		n, err := r.body.Read(p)
		if n > 0 {
			r.off += int64(n)
			r.rt.failures = 0
			r.idle.Reset(r.opts.IdleTimeout)
		}
		if err == nil {
			return n, nil
		}
		if err == io.EOF && (r.size < 0 || r.off >= r.size) {
			r.drop()
			r.err = io.EOF
			return n, io.EOF
		}
		if r.stall.Load() {
			err = fmt.Errorf("%s: %w after byte %d", r.url, errStalled, r.off)
		} else if err == io.EOF {
			err = fmt.Errorf("%s: connection closed at byte %d of %d: %w", r.url, r.off, r.size, io.ErrUnexpectedEOF)
		}
		r.drop()
		if ctxErr := r.ctx.Err(); ctxErr != nil {
			r.err = ctxErr
			return n, ctxErr
		}
		if n > 0 {
			// Deliver what arrived; the next Read reconnects.
			return n, nil
		}
		if ferr := r.rt.fail(r.ctx, err); ferr != nil {
			r.err = ferr
			return 0, ferr
		}
	}
}

// Seek supports the skips archive/tar makes over unwanted members: a seek
// forward within a few megabytes reads and discards (cheaper than a new
// request), a longer one reconnects at the new offset. Only io.SeekCurrent
// with a non-negative offset and the no-op query are supported.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	if whence != io.SeekCurrent || offset < 0 {
		return r.off, errors.New("remote: only forward relative seeks are supported")
	}
	if offset == 0 {
		return r.off, nil
	}
	const discardLimit = 4 << 20
	if offset <= discardLimit || r.body == nil {
		if _, err := io.CopyN(io.Discard, r, offset); err != nil {
			return r.off, err
		}
		return r.off, nil
	}
	r.drop()
	r.off += offset
	return r.off, nil
}

// Close releases the connection.
func (r *Reader) Close() error {
	r.drop()
	if r.err == nil {
		r.err = errors.New("remote: read after Close")
	}
	return nil
}
