package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bmca/bmca/data/remote"
	"github.com/gofrs/flock"
	"github.com/schollz/progressbar/v3"
)

// File is a file of a repository in the cache.
type File struct {
	// Path is the file in its snapshot directory (a symlink to the blob);
	// filepath.Dir(Path) is the snapshot of the commit.
	Path string
	// Commit is the commit the revision resolved to.
	Commit string
}

// meta is what a HEAD request on a resolve URL tells about a file.
type meta struct {
	commit   string
	etag     string
	size     int64  // -1 when not announced
	location string // where the content is: the resolve URL or a CDN URL
}

// Download returns the cache path of file in the repository at
// ref.Revision, downloading it unless the cache has it.
//
// As huggingface_hub does, a branch or tag is resolved by asking the hub
// (one HEAD request) so an updated model is noticed; a commit hash whose
// file is cached needs no request. When the hub cannot be asked (offline
// mode, network or hub down, a rejected token), the revision's last known
// commit in the cache is used if it holds the file.
func (c *Client) Download(ctx context.Context, ref Ref, file string) (File, error) {
	if ref.Revision == "" {
		ref.Revision = DefaultRevision
	}
	if err := ValidateRepoID(ref.Repo); err != nil {
		return File{}, err
	}
	if err := validateRevision(ref.Revision); err != nil {
		return File{}, err
	}
	if err := validateFile(file); err != nil {
		return File{}, err
	}
	cached, state := c.lookup(ref, file)
	if state == present && isCommit(ref.Revision) {
		return cached, nil
	}
	if c.Offline {
		return c.offline(ref, file, cached, state)
	}
	// One quick attempt first: when it fails and the cache has the file,
	// the cache answers without waiting through retries.
	m, err := c.head(ctx, ref, file)
	if err != nil && transient(err) && state != present && ctx.Err() == nil {
		m, err = c.retryHead(ctx, ref, file, err)
	}
	if err != nil {
		var he *Error
		errors.As(err, &he)
		if he != nil && he.Kind == ErrEntryNotFound && he.commit != "" {
			// Recorded as huggingface_hub does, so offline runs know it too.
			_ = c.markAbsent(ref.Repo, he.commit, file)
			_ = c.writeRef(ref, he.commit)
		}
		if errors.Is(err, ErrEntryNotFound) || errors.Is(err, ErrRevisionNotFound) || ctx.Err() != nil {
			return File{}, err
		}
		if state == present {
			return cached, nil
		}
		if transient(err) {
			cause := err
			if he != nil && he.Status != 0 { // say the status, not the whole message again
				cause = &relabeled{msg: fmt.Sprintf("HTTP %d %s", he.Status, he.Message), err: err}
			}
			return File{}, &Error{Kind: ErrNotCached, Repo: ref.Repo, Revision: ref.Revision, File: file, Endpoint: c.Endpoint,
				Err: fmt.Errorf("not in the cache %s, and the hub cannot be reached: %w", c.CacheDir, cause)}
		}
		return File{}, err
	}
	return c.store(ctx, ref, file, m)
}

// offline answers from the cache alone.
func (c *Client) offline(ref Ref, file string, cached File, state cacheState) (File, error) {
	e := &Error{Repo: ref.Repo, Revision: ref.Revision, File: file, Endpoint: c.Endpoint}
	switch state {
	case present:
		return cached, nil
	case absent:
		e.Kind, e.commit = ErrEntryNotFound, cached.Commit
	default:
		e.Kind = ErrNotCached
		e.Err = fmt.Errorf("not in the cache %s, and HF_HUB_OFFLINE is set: run once without it to download", c.CacheDir)
	}
	return File{}, e
}

// store puts the file described by m into the cache (downloading its blob
// unless present) and links it into the commit's snapshot.
func (c *Client) store(ctx context.Context, ref Ref, file string, m meta) (File, error) {
	f := File{Path: c.pointerPath(ref.Repo, m.commit, file), Commit: m.commit}
	if st, err := os.Stat(f.Path); err == nil && !st.IsDir() {
		_ = c.writeRef(ref, m.commit) // best effort: the cache may be read-only (shared)
		return f, nil
	}
	if err := c.writeRef(ref, m.commit); err != nil {
		return File{}, fmt.Errorf("hub cache: %w", err)
	}
	if err := os.MkdirAll(c.CacheDir, 0o755); err != nil {
		return File{}, fmt.Errorf("hub cache: %w", err)
	}
	c.tagCacheDir()
	blob := c.blobPath(ref.Repo, m.etag)
	lockPath := c.lockPath(ref.Repo, m.etag)
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o755); err != nil {
		return File{}, fmt.Errorf("hub cache: %w", err)
	}
	lock := flock.New(lockPath, flock.SetPermissions(0o664))
	if _, err := lock.TryLockContext(ctx, 100*time.Millisecond); err != nil {
		return File{}, fmt.Errorf("hub cache: locking %s: %w", lockPath, err)
	}
	defer lock.Unlock()
	if _, err := os.Stat(blob); errors.Is(err, os.ErrNotExist) {
		if err := c.fetch(ctx, ref, file, m, blob); err != nil {
			return File{}, err
		}
	}
	if err := link(f.Path, blob); err != nil {
		return File{}, fmt.Errorf("hub cache: linking %s: %w", f.Path, err)
	}
	return f, nil
}

// resolveURL is the hub's address of a file at a revision.
func (c *Client) resolveURL(ref Ref, file string) string {
	parts := strings.Split(file, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return c.Endpoint + "/" + ref.Repo + "/resolve/" + url.PathEscape(ref.Revision) + "/" + strings.Join(parts, "/")
}

// retryHead retries a metadata request that failed with err, with
// backoff, while the failure may pass.
func (c *Client) retryHead(ctx context.Context, ref Ref, file string, err error) (meta, error) {
	opts := c.retryOptions()
	delay := opts.Backoff
	for attempt := 1; attempt < opts.MaxAttempts; attempt++ {
		if opts.OnRetry != nil {
			opts.OnRetry(c.resolveURL(ref, file), attempt, err)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return meta{}, ctx.Err()
		}
		delay = min(2*delay, opts.MaxBackoff)
		var m meta
		if m, err = c.head(ctx, ref, file); err == nil || !transient(err) {
			return m, err
		}
	}
	return meta{}, err
}

// head asks the hub about a file with HEAD requests, following redirects
// that stay on the hub (a renamed repository) and stopping at one that
// leaves it (an LFS file's CDN), whose response carries the metadata.
func (c *Client) head(ctx context.Context, ref Ref, file string) (meta, error) {
	hc := c.httpClient()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	u := c.resolveURL(ref, file)
	for range 10 {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
		if err != nil {
			return meta{}, err
		}
		req.Header.Set("Accept-Encoding", "identity") // the real size, not a compressed one
		req.Header.Set("User-Agent", "bmca-hub")
		if c.Token != "" && c.onHub(req.URL) {
			req.Header.Set("Authorization", "Bearer "+string(c.Token))
		}
		resp, err := hc.Do(req)
		if err != nil {
			return meta{}, err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "" {
			target, err := req.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return meta{}, fmt.Errorf("%s: bad redirect: %w", u, err)
			}
			if c.onHub(target) {
				u = target.String()
				continue
			}
			return c.metaOf(ref, file, resp, target.String())
		}
		if resp.StatusCode >= 400 {
			e := c.statusError(ref, file, resp)
			e.commit = resp.Header.Get("X-Repo-Commit")
			return meta{}, e
		}
		return c.metaOf(ref, file, resp, u)
	}
	return meta{}, fmt.Errorf("%s: more than 10 redirects", c.resolveURL(ref, file))
}

// metaOf reads the metadata headers huggingface_hub reads: the commit, the
// ETag of the content (X-Linked-Etag on a redirect to LFS storage) and its
// size (X-Linked-Size, or Content-Length when not redirected).
func (c *Client) metaOf(ref Ref, file string, resp *http.Response, location string) (meta, error) {
	m := meta{commit: resp.Header.Get("X-Repo-Commit"), location: location, size: -1}
	etag := resp.Header.Get("X-Linked-Etag")
	if etag == "" {
		etag = resp.Header.Get("ETag")
	}
	m.etag = strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
	if s := resp.Header.Get("X-Linked-Size"); s != "" {
		m.size, _ = strconv.ParseInt(s, 10, 64)
	} else if resp.StatusCode/100 == 2 && resp.ContentLength >= 0 {
		m.size = resp.ContentLength
	}
	bad := func(what string) (meta, error) {
		return meta{}, &Error{Kind: errNotHub, Repo: ref.Repo, Revision: ref.Revision, File: file, Endpoint: c.Endpoint,
			Err: fmt.Errorf("the answer of %s has no %s header, so %s does not look like a Hugging Face Hub (check HF_ENDPOINT, proxies and firewalls)", c.resolveURL(ref, file), what, c.Endpoint)}
	}
	switch {
	case !isCommit(m.commit):
		return bad("X-Repo-Commit")
	case m.etag == "" || strings.ContainsAny(m.etag, `/\`) || m.etag == "." || m.etag == "..":
		return bad("usable ETag")
	}
	return m, nil
}

// errNotHub is the kind of answers without the hub's metadata headers.
var errNotHub = errors.New("not a Hugging Face Hub answer")

// retryOptions are the retry settings with defaults, as huggingface_hub's:
// five attempts, waits from 1 s doubling up to 8 s.
func (c *Client) retryOptions() remote.Options {
	o := c.Retry
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 8 * time.Second
	}
	o.Token, o.Client = "", nil
	return o
}

// fetch downloads the content into blob through blob+".incomplete",
// continuing what an interrupted run left there, and checks it before the
// rename that puts it into the cache.
func (c *Client) fetch(ctx context.Context, ref Ref, file string, m meta, blob string) error {
	inc := blob + ".incomplete"
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	out, err := os.OpenFile(inc, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	defer out.Close()
	off, err := out.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	if m.size >= 0 && off > m.size {
		off = 0 // longer than the file: not a prefix of it
	}
	if err := c.copyFrom(ctx, ref, file, m, out, off); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	if err := verify(out, m); err != nil {
		out.Close()
		os.Remove(inc)
		return &Error{Kind: ErrChecksum, Repo: ref.Repo, Revision: ref.Revision, File: file, Endpoint: c.Endpoint, Err: err}
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	if err := os.Rename(inc, blob); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	return nil
}

// copyFrom appends the content from byte off on to out (truncated to off).
func (c *Client) copyFrom(ctx context.Context, ref Ref, file string, m meta, out *os.File, off int64) error {
	if err := out.Truncate(off); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	if _, err := out.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("hub cache: %w", err)
	}
	if m.size >= 0 && off == m.size {
		return nil
	}
	opts := c.retryOptions()
	opts.Client = c.httpClient()
	if loc, err := url.Parse(m.location); err == nil && c.onHub(loc) {
		opts.Token = c.Token
	}
	r, err := remote.OpenAt(ctx, m.location, off, opts)
	var se *remote.StatusError
	if errors.As(err, &se) && se.Status == http.StatusRequestedRangeNotSatisfiable && off > 0 {
		return c.copyFrom(ctx, ref, file, m, out, 0) // the kept part does not fit the file: start over
	}
	if err != nil {
		return &Error{Kind: errDownload, Repo: ref.Repo, Revision: ref.Revision, File: file, Endpoint: c.Endpoint, Err: hideQuery(err, m.location)}
	}
	defer r.Close()
	var w io.Writer = out
	bar := c.bar(ref, file, m.size, off)
	if bar != nil {
		w = io.MultiWriter(out, bar)
	}
	n, err := io.Copy(w, r)
	if err != nil {
		if bar != nil {
			_ = bar.Clear()
		}
		return &Error{Kind: errDownload, Repo: ref.Repo, Revision: ref.Revision, File: file, Endpoint: c.Endpoint,
			Err: fmt.Errorf("interrupted after %d bytes, kept in %s (run again to resume): %w", off+n, out.Name(), hideQuery(err, m.location))}
	}
	if bar != nil {
		_ = bar.Finish()
	}
	return nil
}

// errDownload is the kind of failed content downloads.
var errDownload = errors.New("download failed")

// hideQuery keeps a signed URL's query (its signature) out of an error's
// text; errors.Is and As still see the original.
func hideQuery(err error, location string) error {
	q := strings.IndexByte(location, '?')
	if q < 0 {
		return err
	}
	return &relabeled{msg: strings.ReplaceAll(err.Error(), location, location[:q]+"?…"), err: err}
}

// relabeled is an error with another text; errors.Is and As see through it.
type relabeled struct {
	msg string
	err error
}

func (r *relabeled) Error() string { return r.msg }
func (r *relabeled) Unwrap() error { return r.err }

// bar is a progress bar for downloads of at least ProgressMin bytes.
func (c *Client) bar(ref Ref, file string, size, off int64) *progressbar.ProgressBar {
	limit := c.ProgressMin
	if limit <= 0 {
		limit = DefaultProgressMin
	}
	if c.Progress == nil || size < limit {
		return nil
	}
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(c.Progress),
		progressbar.OptionSetDescription(ref.Repo+" "+file),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	_ = bar.Set64(off)
	return bar
}
