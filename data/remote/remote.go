// Package remote reads shards over http(s) the way a long training run
// needs: streamed with bounded memory, authenticated with a bearer token
// that is never printed, retried with exponential backoff on 5xx, 429,
// dropped connections and stalls, and resumed with an HTTP Range request
// from the last byte received, so a connection that drops mid-shard loses
// nothing. A ReaderAt with a chunk cache serves formats that seek (parquet).
//
//	r, err := remote.Open(ctx, "https://huggingface.co/datasets/…/000000.tar", remote.Options{Token: remote.Secret(os.Getenv("HF_TOKEN"))})
//	defer r.Close()
//	io.Copy(dst, r) // survives dropped connections
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Secret is a credential. It formats as "[redacted]" in every fmt verb
// and in JSON, so that logging a configuration cannot leak it.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts the secret for %#v.
func (s Secret) GoString() string { return `remote.Secret("` + s.String() + `")` }

// MarshalText redacts the secret in JSON and YAML.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Options configure remote reads. The zero value is usable.
type Options struct {
	// Client sends the requests; nil means a client with connection and
	// header timeouts (the body is guarded by IdleTimeout instead, since a
	// 10 GB shard legitimately takes minutes).
	Client *http.Client
	// Token is sent as "Authorization: Bearer <token>" (Hugging Face's
	// HF_TOKEN for gated datasets). Go's client drops it on redirects to
	// other hosts, such as Hugging Face's signed CDN URLs.
	Token Secret
	// MaxAttempts is how many consecutive attempts may fail without
	// receiving a byte before a read gives up (0 = 6).
	MaxAttempts int
	// Backoff is the delay before the first retry, doubled after each
	// failure up to MaxBackoff (0 = 500ms and 30s).
	Backoff, MaxBackoff time.Duration
	// IdleTimeout is how long a response may deliver no data before the
	// connection counts as stalled and is retried (0 = 60s).
	IdleTimeout time.Duration
	// OnRetry, if set, is called before each retry with the error that
	// caused it; the stream counts retries with it.
	OnRetry func(url string, attempt int, err error)
}

func (o Options) withDefaults() Options {
	if o.Client == nil {
		o.Client = defaultClient
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 6
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 60 * time.Second
	}
	return o
}

// defaultClient is shared (it pools connections) and never modified.
var defaultClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	ResponseHeaderTimeout: 60 * time.Second,
	TLSHandshakeTimeout:   20 * time.Second,
	MaxIdleConnsPerHost:   32,
	IdleConnTimeout:       90 * time.Second,
}}

// IsRemote reports whether a shard name is an http(s) URL.
func IsRemote(name string) bool {
	return strings.HasPrefix(name, "http://") || strings.HasPrefix(name, "https://")
}

// StatusError is an HTTP response that was not a success.
type StatusError struct {
	URL    string
	Status int
}

// Error gives the URL and status, with a hint for authentication failures.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d %s", e.URL, e.Status, http.StatusText(e.Status))
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += " (gated dataset? accept its terms on the hub and set HF_TOKEN)"
	}
	return msg
}

// Temporary reports whether retrying may help: server errors, 408 and 429.
func (e *StatusError) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout
}

// ErrGaveUp wraps the last error of a read that failed MaxAttempts times
// in a row.
var ErrGaveUp = errors.New("giving up")

// errStalled is the error of a response that stopped delivering data.
var errStalled = errors.New("connection stalled")

// retrier counts consecutive failures and sleeps between attempts.
type retrier struct {
	opts     Options
	url      string
	failures int
	retries  *atomic.Int64
}

// fail records err and waits before the next attempt; it returns an error
// when the attempts are exhausted, the error is permanent or ctx ends.
func (rt *retrier) fail(ctx context.Context, err error) error {
	var se *StatusError
	if errors.As(err, &se) && !se.Temporary() {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	rt.failures++
	if rt.failures >= rt.opts.MaxAttempts {
		return fmt.Errorf("%s: %w after %d attempts: %w", rt.url, ErrGaveUp, rt.failures, err)
	}
	if rt.retries != nil {
		rt.retries.Add(1)
	}
	if rt.opts.OnRetry != nil {
		rt.opts.OnRetry(rt.url, rt.failures, err)
	}
	delay := rt.opts.Backoff << (rt.failures - 1)
	if delay > rt.opts.MaxBackoff || delay <= 0 {
		delay = rt.opts.MaxBackoff
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// get sends a GET for url from byte off (to end, or to off+n-1 when n > 0).
func get(ctx context.Context, opts Options, url string, off, n int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+string(opts.Token))
	}
	switch {
	case n > 0:
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	case off > 0:
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := opts.Client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, &StatusError{URL: url, Status: resp.StatusCode}
	}
	return resp, nil
}

// contentRange parses "bytes start-end/total"; total is -1 when unknown.
func contentRange(h string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(h, "bytes ")
	if !found {
		return 0, 0, false
	}
	span, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	s, _, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}
