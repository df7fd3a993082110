package hub_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bmca/bmca/data/remote"
	"github.com/bmca/bmca/hub"
	"github.com/bmca/bmca/hub/hubtest"
)

var fast = remote.Options{MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, IdleTimeout: 2 * time.Second}

func newClient(t *testing.T, srv *hubtest.Server) *hub.Client {
	t.Helper()
	return &hub.Client{Endpoint: srv.URL(), CacheDir: t.TempDir(), Retry: fast}
}

func payload(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Expected blob names, computed here rather than taken from hubtest.
func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func gitID(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func count(reqs []hubtest.Request, server, method string) int {
	n := 0
	for _, r := range reqs {
		if r.Server == server && r.Method == method {
			n++
		}
	}
	return n
}

func readLink(t *testing.T, p string) string {
	t.Helper()
	target, err := os.Readlink(p)
	if err != nil {
		t.Fatalf("%s is not a symlink: %v", p, err)
	}
	return target
}

// TestDownloadLayout: files land in the layout huggingface_hub writes:
// blobs named by sha256 (LFS) or Git blob id, relative symlinks from the
// commit's snapshot, refs/main holding the commit.
func TestDownloadLayout(t *testing.T) {
	srv := hubtest.New()
	defer srv.Close()
	cfg := []byte(`{"model_cfg": {"embed_dim": 8}}`)
	weights := payload(200_000, 1)
	commit := srv.Push("org/tiny", map[string][]byte{"open_clip_config.json": cfg, "sub/open_clip_model.safetensors": weights})
	c := newClient(t, srv)
	ctx := context.Background()
	ref := hub.Ref{Repo: "org/tiny", Revision: "main"}

	for _, tc := range []struct {
		file string
		data []byte
		blob string
		link string
	}{
		{"open_clip_config.json", cfg, gitID(cfg), "../../blobs/" + gitID(cfg)},
		{"sub/open_clip_model.safetensors", weights, sha256Hex(weights), "../../../blobs/" + sha256Hex(weights)},
	} {
		f, err := c.Download(ctx, ref, tc.file)
		if err != nil {
			t.Fatal(err)
		}
		repo := filepath.Join(c.CacheDir, "models--org--tiny")
		want := filepath.Join(repo, "snapshots", commit, filepath.FromSlash(tc.file))
		if f.Path != want || f.Commit != commit {
			t.Errorf("%s: got %s at %s, want %s at %s", tc.file, f.Path, f.Commit, want, commit)
		}
		if got := readLink(t, want); got != filepath.FromSlash(tc.link) {
			t.Errorf("%s: link %s, want %s", tc.file, got, tc.link)
		}
		if data, err := os.ReadFile(filepath.Join(repo, "blobs", tc.blob)); err != nil || !bytes.Equal(data, tc.data) {
			t.Errorf("%s: blob %s: %v", tc.file, tc.blob, err)
		}
		if ref, err := os.ReadFile(filepath.Join(repo, "refs", "main")); err != nil || string(ref) != commit {
			t.Errorf("refs/main = %q (%v), want %s without a newline", ref, err, commit)
		}
	}
	if _, err := os.Stat(filepath.Join(c.CacheDir, ".locks", "models--org--tiny", sha256Hex(weights)+".lock")); err != nil {
		t.Errorf("no lock file where huggingface_hub keeps it: %v", err)
	}
	if matches, _ := filepath.Glob(filepath.Join(c.CacheDir, "models--org--tiny", "blobs", "*.incomplete")); len(matches) > 0 {
		t.Errorf("leftover partial downloads: %v", matches)
	}
}

// TestCacheReuse: a branch costs one HEAD per file once cached and no
// GET; a commit hash costs nothing; a new push is noticed.
func TestCacheReuse(t *testing.T) {
	srv := hubtest.New()
	defer srv.Close()
	v1 := payload(50_000, 2)
	commit1 := srv.Push("org/m", map[string][]byte{"w.safetensors": v1})
	c := newClient(t, srv)
	ctx := context.Background()
	main := hub.Ref{Repo: "org/m", Revision: "main"}
	if _, err := c.Download(ctx, main, "w.safetensors"); err != nil {
		t.Fatal(err)
	}
	before := len(srv.Requests())
	f, err := c.Download(ctx, main, "w.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	again := srv.Requests()[before:]
	if len(again) != 1 || again[0].Method != "HEAD" {
		t.Errorf("second download of a branch sent %v, want one HEAD", again)
	}
	before = len(srv.Requests())
	if g, err := c.Download(ctx, hub.Ref{Repo: "org/m", Revision: commit1}, "w.safetensors"); err != nil || g.Path != f.Path {
		t.Fatalf("by commit: %v %v", g, err)
	}
	if n := len(srv.Requests()) - before; n != 0 {
		t.Errorf("a cached commit sent %d requests, want 0", n)
	}
	v2 := payload(50_000, 3)
	commit2 := srv.Push("org/m", map[string][]byte{"w.safetensors": v2})
	g, err := c.Download(ctx, main, "w.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(g.Path); g.Commit != commit2 || !bytes.Equal(data, v2) {
		t.Errorf("after a push: commit %s, want %s, new content %v", g.Commit, commit2, bytes.Equal(data, v2))
	}
	if data, _ := os.ReadFile(f.Path); !bytes.Equal(data, v1) {
		t.Error("the old snapshot changed")
	}
}

// TestPythonLayoutReused: a cache laid out as huggingface_hub writes it
// (relative symlinks into blobs/, refs/main without a newline) is read
// offline with no request, and online with only the HEAD.
func TestPythonLayoutReused(t *testing.T) {
	srv := hubtest.New()
	defer srv.Close()
	data := payload(30_000, 4)
	commit := srv.Push("org/py", map[string][]byte{"open_clip_pytorch_model.bin": data})
	cache := t.TempDir()
	repo := filepath.Join(cache, "models--org--py")
	blob := filepath.Join(repo, "blobs", sha256Hex(data))
	snap := filepath.Join(repo, "snapshots", commit)
	for _, d := range []string{filepath.Dir(blob), snap, filepath.Join(repo, "refs"), filepath.Join(cache, ".locks", "models--org--py")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join("..", "..", "blobs", sha256Hex(data)), filepath.Join(snap, "open_clip_pytorch_model.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "refs", "main"), []byte(commit), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := hub.Ref{Repo: "org/py", Revision: "main"}
	for _, offline := range []bool{true, false} {
		c := &hub.Client{Endpoint: srv.URL(), CacheDir: cache, Offline: offline, Retry: fast}
		before := len(srv.Requests())
		f, err := c.Download(context.Background(), ref, "open_clip_pytorch_model.bin")
		if err != nil {
			t.Fatalf("offline=%v: %v", offline, err)
		}
		if f.Path != filepath.Join(snap, "open_clip_pytorch_model.bin") {
			t.Errorf("offline=%v: %s, want the existing snapshot entry", offline, f.Path)
		}
		reqs := srv.Requests()[before:]
		want := 0
		if !offline {
			want = 1
		}
		if len(reqs) != want || count(reqs, "cdn", "GET")+count(reqs, "hub", "GET") != 0 {
			t.Errorf("offline=%v: requests %v, want %d HEAD", offline, reqs, want)
		}
	}
}

// TestResume: a download cut off (the process gave up) keeps its bytes in
// <blob>.incomplete; the next run asks only for the rest and the result
// checks out.
func TestResume(t *testing.T) {
	srv := hubtest.New()
	defer srv.Close()
	data := payload(300_000, 5)
	srv.Push("org/big", map[string][]byte{"open_clip_model.safetensors": data})
	srv.Fault("org/big", "open_clip_model.safetensors", hubtest.Fault{DropAfter: 120_000, Times: 1})
	c := newClient(t, srv)
	c.Retry.MaxAttempts = 1
	ref := hub.Ref{Repo: "org/big"}
	_, err := c.Download(context.Background(), ref, "open_clip_model.safetensors")
	if err == nil || !strings.Contains(err.Error(), "run again to resume") {
		t.Fatalf("cut-off download: %v, want an error that says it can resume", err)
	}
	inc := filepath.Join(c.CacheDir, "models--org--big", "blobs", sha256Hex(data)+".incomplete")
	kept, rerr := os.ReadFile(inc)
	if rerr != nil || len(kept) != 120_000 || !bytes.Equal(kept, data[:120_000]) {
		t.Fatalf("partial file: %d bytes (%v), want the first 120000", len(kept), rerr)
	}
	before := len(srv.Requests())
	c.Retry.MaxAttempts = 3
	f, err := c.Download(context.Background(), ref, "open_clip_model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(f.Path); !bytes.Equal(got, data) {
		t.Error("resumed file differs")
	}
	var ranges []string
	for _, r := range srv.Requests()[before:] {
		if r.Server == "cdn" && r.Method == "GET" {
			ranges = append(ranges, r.Range)
		}
	}
	if !slices.Equal(ranges, []string{"bytes=120000-"}) {
		t.Errorf("resume requests %q, want one for bytes=120000-", ranges)
	}
	if _, err := os.Stat(inc); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("partial file left behind: %v", err)
	}
}

// TestChecksum: bytes that do not hash to the ETag never enter the
// cache: here a corrupt partial file from an earlier run. The next run
// downloads afresh.
func TestChecksum(t *testing.T) {
	srv := hubtest.New()
	defer srv.Close()
	data := payload(40_000, 6)
	srv.Push("org/c", map[string][]byte{"open_clip_model.safetensors": data, "vocab.txt": []byte("[PAD]\n[UNK]\n")})
	c := newClient(t, srv)
	blobs := filepath.Join(c.CacheDir, "models--org--c", "blobs")
	corrupt := slices.Clone(data[:10_000])
	corrupt[5] ^= 1
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		t.Fatal(err)
	}
	inc := filepath.Join(blobs, sha256Hex(data)+".incomplete")
	if err := os.WriteFile(inc, corrupt, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := hub.Ref{Repo: "org/c"}
	_, err := c.Download(context.Background(), ref, "open_clip_model.safetensors")
	if !errors.Is(err, hub.ErrChecksum) {
		t.Fatalf("corrupt resume: %v, want ErrChecksum", err)
	}
	if _, err := os.Stat(inc); !errors.Is(err, os.ErrNotExist) {
		t.Error("the corrupt partial file was kept")
	}
	if _, err := os.Stat(filepath.Join(blobs, sha256Hex(data))); !errors.Is(err, os.ErrNotExist) {
		t.Error("a corrupt blob entered the cache")
	}
	f, err := c.Download(context.Background(), ref, "open_clip_model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(f.Path); !bytes.Equal(got, data) {
		t.Error("fresh download differs")
	}
	// A Git-stored file is checked against its Git blob id.
	vocab := filepath.Join(blobs, gitID([]byte("[PAD]\n[UNK]\n"))+".incomplete")
	if err := os.WriteFile(vocab, []byte("[PAD]\n[UNX]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Download(context.Background(), ref, "vocab.txt"); !errors.Is(err, hub.ErrChecksum) {
		t.Errorf("corrupt git file: %v, want ErrChecksum", err)
	}
}

// TestTokenStaysOnHub: the token goes to the endpoint (also after the
// same-origin redirect of a renamed repository) and never to the CDN.
func TestTokenStaysOnHub(t *testing.T) {
	srv := hubtest.New()
	defer srv.Close()
	srv.AddToken("hf_secret123")
	data := payload(20_000, 7)
	srv.Push("org/gated", map[string][]byte{"open_clip_model.safetensors": data, "open_clip_config.json": []byte("{}")})
	srv.Gate("org/gated", "hf_secret123")
	srv.Rename("org/gated", "org/gated-v2")
	c := newClient(t, srv)
	c.Token = "hf_secret123"
	for _, file := range []string{"open_clip_model.safetensors", "open_clip_config.json"} {
		f, err := c.Download(context.Background(), hub.Ref{Repo: "org/gated"}, file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(f.Path, "models--org--gated") {
			t.Errorf("cached under %s, want the name asked for", f.Path)
		}
	}
	reqs := srv.Requests()
	if count(reqs, "cdn", "GET") != 1 {
		t.Errorf("requests %v: want one CDN download", reqs)
	}
	for _, r := range reqs {
		want := ""
		if r.Server == "hub" {
			want = "Bearer hf_secret123"
		}
		if r.Authorization != want {
			t.Errorf("%s %s %s: Authorization %q, want %q", r.Server, r.Method, r.Path, r.Authorization, want)
		}
	}
}

// TestErrors: each refusal names what was not found or what to do, and
// never shows the token.
func TestErrors(t *testing.T) {
	srv := hubtest.New()
	defer srv.Close()
	srv.AddToken("hf_valid")
	srv.AddToken("hf_other")
	srv.Push("org/gated", map[string][]byte{"a.json": []byte("{}")})
	srv.Gate("org/gated", "hf_valid")
	srv.Push("org/open", map[string][]byte{"a.json": []byte("{}")})
	cases := []struct {
		name, token string
		ref         hub.Ref
		file        string
		kind        error
		says        []string
	}{
		{"missing repo", "", hub.Ref{Repo: "org/nope"}, "a.json", hub.ErrRepoNotFound, []string{"org/nope", "not found", "HF_TOKEN"}},
		{"missing repo with token", "hf_valid", hub.Ref{Repo: "org/nope"}, "a.json", hub.ErrRepoNotFound, []string{"org/nope", "not found"}},
		{"gated without token", "", hub.Ref{Repo: "org/gated"}, "a.json", hub.ErrAccess, []string{"gated", "accept its terms", srv.URL() + "/org/gated", "HF_TOKEN"}},
		{"gated without access", "hf_other", hub.Ref{Repo: "org/gated"}, "a.json", hub.ErrAccess, []string{"gated", "no access", "accept its terms"}},
		{"invalid token", "hf_expired", hub.Ref{Repo: "org/open"}, "a.json", hub.ErrAccess, []string{"rejected HF_TOKEN", "invalid or expired"}},
		{"missing revision", "", hub.Ref{Repo: "org/open", Revision: "v9"}, "a.json", hub.ErrRevisionNotFound, []string{`revision "v9"`, "org/open"}},
		{"missing file", "", hub.Ref{Repo: "org/open"}, "b.json", hub.ErrEntryNotFound, []string{"b.json", "not found"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, srv)
			c.Token = remote.Secret(tc.token)
			_, err := c.Download(context.Background(), tc.ref, tc.file)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("got %v, want %v", err, tc.kind)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if tc.token != "" && strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), tc.token) {
				t.Errorf("error shows the token: %v", err)
			}
		})
	}
	t.Run("network down", func(t *testing.T) {
		down := hubtest.New()
		down.Push("org/x", map[string][]byte{"a.json": []byte("{}")})
		c := newClient(t, down)
		down.Close()
		_, err := c.Download(context.Background(), hub.Ref{Repo: "org/x"}, "a.json")
		if !errors.Is(err, hub.ErrNotCached) || !strings.Contains(err.Error(), "cannot be reached") {
			t.Errorf("got %v, want ErrNotCached saying the hub cannot be reached", err)
		}
	})
	t.Run("hub down", func(t *testing.T) {
		c := newClient(t, srv)
		srv.Down(true)
		defer srv.Down(false)
		before := len(srv.Requests())
		_, err := c.Download(context.Background(), hub.Ref{Repo: "org/open"}, "a.json")
		if !errors.Is(err, hub.ErrNotCached) || !strings.Contains(err.Error(), "503") {
			t.Errorf("got %v, want ErrNotCached with the 503", err)
		}
		if n := len(srv.Requests()) - before; n != fast.MaxAttempts {
			t.Errorf("%d attempts, want %d", n, fast.MaxAttempts)
		}
	})
}

// TestOffline: HF_HUB_OFFLINE answers from the cache with no request, and
// says what to do when the file is not there.
func TestOffline(t *testing.T) {
	srv := hubtest.New()
	defer srv.Close()
	srv.Push("org/m", map[string][]byte{"a.json": []byte("{}")})
	c := newClient(t, srv)
	c.Offline = true
	_, err := c.Download(context.Background(), hub.Ref{Repo: "org/m"}, "a.json")
	if !errors.Is(err, hub.ErrNotCached) || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
		t.Fatalf("empty cache offline: %v", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("offline sent %d requests", n)
	}
	c.Offline = false
	online, err := c.Download(context.Background(), hub.Ref{Repo: "org/m"}, "a.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Download(context.Background(), hub.Ref{Repo: "org/m"}, "missing.json"); !errors.Is(err, hub.ErrEntryNotFound) {
		t.Fatal(err)
	}
	srv.Close()
	c.Offline = true
	f, err := c.Download(context.Background(), hub.Ref{Repo: "org/m"}, "a.json")
	if err != nil || f != online {
		t.Errorf("offline after download: %v %v, want %v", f, err, online)
	}
	// The hub's 404 was recorded (.no_exist), so offline knows it too.
	if _, err := c.Download(context.Background(), hub.Ref{Repo: "org/m"}, "missing.json"); !errors.Is(err, hub.ErrEntryNotFound) {
		t.Errorf("offline missing file: %v, want ErrEntryNotFound", err)
	}
	// Unreachable rather than offline: the cache answers too.
	c.Offline = false
	if f, err := c.Download(context.Background(), hub.Ref{Repo: "org/m"}, "a.json"); err != nil || f != online {
		t.Errorf("hub unreachable, file cached: %v %v", f, err)
	}
}

// TestConcurrentDownloads: two clients on one cache download a blob once;
// the lock makes the second wait and reuse it.
func TestConcurrentDownloads(t *testing.T) {
	srv := hubtest.New()
	defer srv.Close()
	data := payload(400_000, 8)
	srv.Push("org/m", map[string][]byte{"w.bin": data})
	cache := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &hub.Client{Endpoint: srv.URL(), CacheDir: cache, Retry: fast}
			_, errs[i] = c.Download(context.Background(), hub.Ref{Repo: "org/m"}, "w.bin")
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := count(srv.Requests(), "cdn", "GET"); n != 1 {
		t.Errorf("%d downloads, want 1", n)
	}
}

// TestProgress: large downloads draw a bar, small ones do not.
func TestProgress(t *testing.T) {
	srv := hubtest.New()
	defer srv.Close()
	srv.Push("org/m", map[string][]byte{"big.safetensors": payload(100_000, 9), "small.json": []byte("{}")})
	c := newClient(t, srv)
	var out bytes.Buffer
	c.Progress, c.ProgressMin = &out, 50_000
	if _, err := c.Download(context.Background(), hub.Ref{Repo: "org/m"}, "small.json"); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("a small file drew %q", out.String())
	}
	if _, err := c.Download(context.Background(), hub.Ref{Repo: "org/m"}, "big.safetensors"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "big.safetensors") {
		t.Errorf("no progress bar for a large file: %q", out.String())
	}
}
