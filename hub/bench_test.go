package hub_test

import (
	"context"
	"testing"

	"github.com/bmca/bmca/hub"
	"github.com/bmca/bmca/hub/hubtest"
)

// BenchmarkDownload measures a 64 MiB LFS download from the local replica
// into a fresh cache: HEAD, redirect, GET, write, sha256 check, rename and
// link. MB/s is the figure that matters; the network is the limit in use.
func BenchmarkDownload(b *testing.B) {
	srv := hubtest.New()
	defer srv.Close()
	const size = 64 << 20
	srv.Push("org/big", map[string][]byte{"open_clip_model.safetensors": payload(size, 1)})
	b.SetBytes(size)
	for b.Loop() {
		c := &hub.Client{Endpoint: srv.URL(), CacheDir: b.TempDir(), Retry: fast}
		if _, err := c.Download(context.Background(), hub.Ref{Repo: "org/big"}, "open_clip_model.safetensors"); err != nil {
			b.Fatal(err)
		}
	}
}
