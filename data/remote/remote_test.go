package remote_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/bmca/bmca/data/remote"
	"github.com/bmca/bmca/data/remote/remotetest"
)

func payload(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

var fast = remote.Options{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, IdleTimeout: 200 * time.Millisecond}

func TestReaderSurvivesFaults(t *testing.T) {
	data := payload(300_000)
	cases := []struct {
		name      string
		fault     remotetest.Fault
		noRange   bool
		wantReq   int // requests the read should take
		wantRange bool
	}{
		{"clean", remotetest.Fault{}, false, 1, false},
		{"dropped twice mid-body", remotetest.Fault{DropAfter: 100_000, Times: 2}, false, 3, true},
		{"500 then ok", remotetest.Fault{Status: 500, Times: 3}, false, 4, false},
		{"429 then ok", remotetest.Fault{Status: 429, Times: 1}, false, 2, false},
		{"stall then ok", remotetest.Fault{DropAfter: 5000, Stall: 5 * time.Second, Times: 1}, false, 2, true},
		{"dropped, no range support", remotetest.Fault{DropAfter: 70_000, Times: 1}, true, 2, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := remotetest.New(map[string][]byte{"/s.tar": data})
			defer srv.Close()
			srv.NoRange = c.noRange
			srv.Token = "hf_secret"
			srv.Fault("/s.tar", c.fault)
			opts := fast
			opts.Token = "hf_secret"
			retries := 0
			opts.OnRetry = func(string, int, error) { retries++ }
			r, err := remote.Open(context.Background(), srv.URL("/s.tar"), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read %d bytes, differing from the %d served", len(got), len(data))
			}
			if n := srv.Requests("/s.tar"); n != c.wantReq {
				t.Errorf("%d requests, want %d", n, c.wantReq)
			}
			if retries != c.wantReq-1 {
				t.Errorf("%d retries reported, want %d", retries, c.wantReq-1)
			}
			sawRange := false
			for _, rg := range srv.Ranges() {
				sawRange = sawRange || rg != ""
			}
			if sawRange != c.wantRange {
				t.Errorf("range requests %v, want some: %v", srv.Ranges(), c.wantRange)
			}
		})
	}
}

func TestReaderGivesUp(t *testing.T) {
	srv := remotetest.New(map[string][]byte{"/s.tar": payload(1000)})
	defer srv.Close()
	srv.Token = "hf_secret"

	t.Run("permanent status is not retried", func(t *testing.T) {
		opts := fast
		opts.Token = "wrong-token-value"
		_, err := remote.Open(context.Background(), srv.URL("/s.tar"), opts)
		var se *remote.StatusError
		if !errors.As(err, &se) || se.Status != 401 || srv.Requests("/s.tar") != 1 {
			t.Fatalf("error %v after %d requests, want one 401", err, srv.Requests("/s.tar"))
		}
		if strings.Contains(err.Error(), "wrong-token-value") || !strings.Contains(err.Error(), "HF_TOKEN") {
			t.Errorf("error %q leaks the token or lacks the hint", err)
		}
	})
	t.Run("keeps failing", func(t *testing.T) {
		srv.Fault("/s.tar", remotetest.Fault{Status: 503})
		opts := fast
		opts.Token = "hf_secret"
		opts.MaxAttempts = 3
		_, err := remote.Open(context.Background(), srv.URL("/s.tar"), opts)
		if !errors.Is(err, remote.ErrGaveUp) {
			t.Fatalf("error %v, want ErrGaveUp", err)
		}
	})
	t.Run("cancelled while backing off", func(t *testing.T) {
		srv.Fault("/s.tar", remotetest.Fault{Status: 503})
		opts := fast
		opts.Token = "hf_secret"
		opts.Backoff, opts.MaxBackoff = time.Hour, time.Hour
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := remote.Open(ctx, srv.URL("/s.tar"), opts)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Fatalf("error %v after %v, want the deadline promptly", err, time.Since(start))
		}
	})
}

func TestSecretNeverPrinted(t *testing.T) {
	opts := remote.Options{Token: "hf_abcdef"}
	for _, s := range []string{fmt.Sprint(opts), fmt.Sprintf("%v %+v %#v %s", opts, opts, opts, opts.Token)} {
		if strings.Contains(s, "hf_abcdef") {
			t.Errorf("formatted options leak the token: %s", s)
		}
	}
}

func TestReaderAt(t *testing.T) {
	data := payload(1_000_000)
	srv := remotetest.New(map[string][]byte{"/f.parquet": data})
	defer srv.Close()
	srv.Fault("/f.parquet", remotetest.Fault{DropAfter: 1000, Times: 1})
	r, err := remote.NewReaderAt(context.Background(), srv.URL("/f.parquet"), fast, 64<<10, 4)
	if err != nil {
		t.Fatal(err)
	}
	if r.Size() != int64(len(data)) {
		t.Fatalf("size %d, want %d", r.Size(), len(data))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		off := rng.Int64N(int64(len(data)))
		n := rng.IntN(200_000)
		buf := make([]byte, n)
		got, err := r.ReadAt(buf, off)
		want := min(n, len(data)-int(off))
		if got != want || (err != nil && !(err == io.EOF && got < n)) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", n, off, got, err)
		}
		if !bytes.Equal(buf[:got], data[off:int(off)+got]) {
			t.Fatalf("ReadAt(%d bytes at %d) returned other bytes", n, off)
		}
	}
	// Nearby small reads are served from the cache.
	before := r.Requests.Load()
	buf := make([]byte, 100)
	for i := range 50 {
		r.ReadAt(buf, 500_000+int64(i)*100)
	}
	if extra := r.Requests.Load() - before; extra > 1 {
		t.Errorf("50 nearby reads took %d requests", extra)
	}
}

// TestOpenAt: a download continued by a later process asks only for the
// missing bytes, and still gets the right ones from a server that ignores
// Range.
func TestOpenAt(t *testing.T) {
	data := payload(50_000)
	for _, noRange := range []bool{false, true} {
		srv := remotetest.New(map[string][]byte{"/w.bin": data})
		srv.NoRange = noRange
		r, err := remote.OpenAt(context.Background(), srv.URL("/w.bin"), 30_000, fast)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[30_000:]) {
			t.Errorf("noRange=%v: got %d bytes, want the last %d of the file", noRange, len(got), len(data)-30_000)
		}
		if r.Offset() != int64(len(data)) {
			t.Errorf("noRange=%v: Offset %d, want %d", noRange, r.Offset(), len(data))
		}
		if rg := srv.Ranges(); len(rg) != 1 || rg[0] != "bytes=30000-" {
			t.Errorf("noRange=%v: Range headers %q, want one bytes=30000-", noRange, rg)
		}
	}
}

// TestStat: the size and the server's validator, through a transient
// failure; a changed file has another validator; a missing one is an error.
func TestStat(t *testing.T) {
	data := payload(12_345)
	for _, noRange := range []bool{false, true} {
		srv := remotetest.New(map[string][]byte{"/s.tar": data})
		srv.NoRange = noRange
		srv.Fault("/s.tar", remotetest.Fault{Status: 503, Times: 1})
		info, err := remote.Stat(context.Background(), srv.URL("/s.tar"), fast)
		if err != nil || info.Size != int64(len(data)) || info.ETag == "" {
			t.Fatalf("no range %v: %+v, %v", noRange, info, err)
		}
		srv.Put("/s.tar", payload(12_346)[1:]) // same size, other bytes
		again, err := remote.Stat(context.Background(), srv.URL("/s.tar"), fast)
		if err != nil || again.Size != info.Size || again.ETag == info.ETag {
			t.Errorf("no range %v: changed file %+v, before %+v (%v)", noRange, again, info, err)
		}
		if _, err := remote.Stat(context.Background(), srv.URL("/missing.tar"), fast); err == nil {
			t.Error("missing file: no error")
		}
		srv.Close()
	}
}
