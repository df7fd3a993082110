package remote

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Info describes a remote file's version, for caches keyed on it.
type Info struct {
	// Size is the file's length in bytes.
	Size int64
	// ETag and LastModified are the server's validators, "" when it sends
	// none.
	ETag, LastModified string
}

// Stat learns a file's size and validators with a one-byte range request
// (a HEAD is not always answered as the GET would be: Hugging Face
// redirects both, but only GETs to the content's final host carry its
// ETag), retried as reads are.
func Stat(ctx context.Context, url string, opts Options) (Info, error) {
	opts = opts.withDefaults()
	rt := retrier{opts: opts, url: url}
	for {
		info, err := stat(ctx, url, opts)
		if err == nil {
			return info, nil
		}
		if err := rt.fail(ctx, err); err != nil {
			return Info{}, err
		}
	}
}

func stat(ctx context.Context, url string, opts Options) (Info, error) {
	resp, err := get(ctx, opts, url, 0, 1)
	if err != nil {
		return Info{}, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	size, err := responseSize(url, resp)
	if err != nil {
		return Info{}, err
	}
	return Info{Size: size, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified")}, nil
}

// responseSize is the total size of the file a response to a range
// request comes from.
func responseSize(url string, resp *http.Response) (int64, error) {
	if resp.StatusCode == http.StatusPartialContent {
		if _, total, ok := contentRange(resp.Header.Get("Content-Range")); ok && total >= 0 {
			return total, nil
		}
		return 0, fmt.Errorf("%s: no total size in Content-Range %q", url, resp.Header.Get("Content-Range"))
	}
	if resp.ContentLength < 0 {
		return 0, fmt.Errorf("%s: server reports no size and no range support", url)
	}
	return resp.ContentLength, nil
}
