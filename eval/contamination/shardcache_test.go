package contamination

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bmca/bmca/data/phash"
	"github.com/bmca/bmca/data/remote"
	"github.com/bmca/bmca/data/remote/remotetest"
	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/eval/tasks"
)

// warnings collects a scan's warnings.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) add(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, err.Error())
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// cacheFiles lists the cache's entry files.
func cacheFiles(t *testing.T, root string) []string {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".hashes") {
			out = append(out, p)
		}
		return err
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

// TestHashCacheInvalidation: a shard that changes is read again (and the
// unchanged one still comes from the cache); a corrupt entry is reported,
// recomputed and rewritten; an entry from an exact-only scan does not serve
// a near-duplicate search. The planted copies are found every time.
func TestHashCacheInvalidation(t *testing.T) {
	p := plantCase(t, false)
	root := filepath.Join(t.TempDir(), "train-hashes")
	var w warnings
	scan := func(maxDistance int) Stats {
		t.Helper()
		idx, st := scanPlanted(t, p, maxDistance, ScanOptions{Workers: 2, Cache: NewHashCache(root), Warn: w.add})
		if maxDistance >= 0 {
			checkPlanted(t, idx, p.want, maxDistance)
		}
		return st
	}
	// An exact-only scan fills the cache without perceptual hashes…
	if st := scan(-1); st.CacheWrites != 2 || st.Perceptual != 0 {
		t.Fatalf("exact-only scan: %+v", st)
	}
	if st := scan(-1); st.CachedShards != 2 || st.Bytes != 0 {
		t.Errorf("second exact-only scan: %+v; want both shards from the cache", st)
	}
	// …which a near-duplicate search cannot use: it decodes, and rewrites.
	if st := scan(DefaultMaxDistance); st.CachedShards != 0 || st.Perceptual != 35 || st.CacheWrites != 2 {
		t.Errorf("near-duplicate scan after an exact-only one: %+v", st)
	}
	if st := scan(DefaultMaxDistance); st.CachedShards != 2 || st.Perceptual != 0 {
		t.Errorf("second near-duplicate scan: %+v; want both shards from the cache", st)
	}
	if st := scan(-1); st.CachedShards != 2 {
		t.Errorf("an exact-only scan after a near-duplicate one: %+v; want both shards from the cache", st)
	}
	if got := cacheFiles(t, root); len(got) != 2 {
		t.Fatalf("cache entries %v, want one per shard", got)
	}
	if msgs := w.take(); len(msgs) != 0 {
		t.Errorf("warnings %q", msgs)
	}

	// The shard changes: one more unrelated image (and a new mtime).
	shard1 := filepath.Join(p.dir, "train-001.tar")
	old, _ := os.Stat(shard1)
	p.shards["train-001.tar"] = append(p.shards["train-001.tar"], member{"late.jpg", encodeJPEG(t, scene(4242), 80)})
	writeTar(t, shard1, p.shards["train-001.tar"])
	if err := os.Chtimes(shard1, time.Now(), old.ModTime().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	idx, st := scanPlanted(t, p, DefaultMaxDistance, ScanOptions{Workers: 2, Cache: NewHashCache(root), Warn: w.add})
	checkPlanted36(t, idx, p.want)
	if st.CachedShards != 1 || st.Perceptual != 19 || st.CacheWrites != 1 || st.Images != 36 {
		t.Errorf("after a shard changed: %+v; want the other shard from the cache, the changed one (19 images) decoded and cached", st)
	}

	if msgs := w.take(); len(msgs) != 0 {
		t.Errorf("warnings %q", msgs)
	}
	// Corrupt every entry in a different way: each is reported and
	// recomputed, never trusted.
	entries := cacheFiles(t, root)
	if len(entries) != 3 { // the changed shard's old entry stays, unused
		t.Fatalf("cache entries %v", entries)
	}
	for i, e := range entries {
		data, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0:
			data[len(data)/2] ^= 0x40 // a flipped bit
		case 1:
			data = data[:len(data)-9] // truncated
		default:
			data = []byte("not a cache entry")
		}
		if err := os.WriteFile(e, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx, st = scanPlanted(t, p, DefaultMaxDistance, ScanOptions{Workers: 2, Cache: NewHashCache(root), Warn: w.add})
	checkPlanted36(t, idx, p.want)
	if st.CachedShards != 0 || st.Perceptual != 36 || st.CacheWrites != 2 {
		t.Errorf("after corrupting the cache: %+v; want every shard decoded and cached again", st)
	}
	if msgs := w.take(); len(msgs) != 2 || !strings.Contains(msgs[0], "corrupt") || !strings.Contains(msgs[1], "corrupt") {
		t.Errorf("warnings %q, want one per corrupt entry in use", msgs)
	}
	if _, st = scanPlanted(t, p, DefaultMaxDistance, ScanOptions{Workers: 2, Cache: NewHashCache(root), Warn: w.add}); st.CachedShards != 2 {
		t.Errorf("after recomputing: %+v; want both shards from the cache", st)
	}
	// Rehash ignores the cache and rewrites it.
	if _, st = scanPlanted(t, p, DefaultMaxDistance, ScanOptions{Workers: 2, Cache: NewHashCache(root), Rehash: true}); st.CachedShards != 0 || st.Perceptual != 36 || st.CacheWrites != 2 {
		t.Errorf("rehash: %+v; want every image decoded and the entries rewritten", st)
	}
}

// checkPlanted36 is checkPlanted for the case with one more unrelated
// training image.
func checkPlanted36(t *testing.T, idx *Index, want map[string]string) {
	t.Helper()
	o := idx.Reports()["planted"]
	got := map[string]string{}
	for _, m := range o.Matches {
		got[m.Key] = m.Kind
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || o.TrainImages != 36 {
		t.Errorf("found %v in %d training images\nwant  %v in 36", got, o.TrainImages, want)
	}
}

// TestHashCacheRemote: remote shards are cached under their ETag; a shard
// replaced on the server is read again.
func TestHashCacheRemote(t *testing.T) {
	p := plantCase(t, false)
	files := map[string][]byte{}
	for _, name := range []string{"train-000.tar", "train-001.tar"} {
		data, err := os.ReadFile(filepath.Join(p.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files["/"+name] = data
	}
	srv := remotetest.New(files)
	defer srv.Close()
	suite, err := tasks.LoadSuite(p.suite)
	if err != nil {
		t.Fatal(err)
	}
	cache := NewHashCache(filepath.Join(t.TempDir(), "train-hashes"))
	scan := func() (*Index, Stats) {
		t.Helper()
		idx := NewIndex(DefaultMaxDistance)
		if _, err := idx.AddSuite(context.Background(), suite, nil, nil); err != nil {
			t.Fatal(err)
		}
		cfg := stream.Config{Shards: []string{srv.URL("/train-{000..001}.tar")}, HTTP: remote.Options{Backoff: time.Millisecond}}
		st, err := idx.Scan(context.Background(), cfg, ScanOptions{Workers: 2, Cache: cache, Warn: func(err error) { t.Errorf("warning: %v", err) }})
		if err != nil {
			t.Fatal(err)
		}
		return idx, st
	}
	idx, st := scan()
	checkPlanted(t, idx, p.want, DefaultMaxDistance)
	if st.CacheWrites != 2 {
		t.Errorf("first scan: %+v", st)
	}
	idx, st = scan()
	checkPlanted(t, idx, p.want, DefaultMaxDistance)
	if st.CachedShards != 2 || st.Perceptual != 0 {
		t.Errorf("second scan: %+v; want both shards from the cache", st)
	}
	shard0 := withStoredPHash(t, p.shards["train-000.tar"]) // other bytes, same images
	writeTar(t, filepath.Join(p.dir, "new.tar"), shard0)
	data, err := os.ReadFile(filepath.Join(p.dir, "new.tar"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Put("/train-000.tar", data)
	idx, st = scan()
	checkPlanted(t, idx, p.want, DefaultMaxDistance)
	if st.CachedShards != 1 || st.CacheWrites != 1 || st.Stored != 17 {
		t.Errorf("after replacing a shard: %+v; want it read again (its 17 stored hashes), the other from the cache", st)
	}
}

// TestStoredPHashIsUsed: a training image whose json names the perceptual
// hash of an evaluation image is reported as its near-duplicate, though its
// pixels are unrelated — the stored hash, not a decode, was compared; with
// Rehash it is not.
func TestStoredPHashIsUsed(t *testing.T) {
	p := plantCase(t, false)
	evalHash, err := phash.FromEncoded(mustRead(t, filepath.Join(p.dir, "eval05.jpg")))
	if err != nil {
		t.Fatal(err)
	}
	members := append(p.shards["train-000.tar"], member{"liar.jpg", encodeJPEG(t, scene(777), 75)},
		member{"liar.json", []byte(fmt.Sprintf(`{%q: %q}`, phash.Field, evalHash.String()))})
	writeTar(t, filepath.Join(p.dir, "train-000.tar"), members)
	for _, rehash := range []bool{false, true} {
		suite, _ := tasks.LoadSuite(p.suite)
		idx := NewIndex(DefaultMaxDistance)
		if _, err := idx.AddSuite(context.Background(), suite, nil, nil); err != nil {
			t.Fatal(err)
		}
		st, err := idx.Scan(context.Background(), stream.Config{Shards: []string{filepath.Join(p.dir, "train-000.tar")}}, ScanOptions{Rehash: rehash})
		if err != nil {
			t.Fatal(err)
		}
		var found string
		for _, m := range idx.Reports()["planted"].Matches {
			if m.Key == "eval05.jpg" {
				found = m.TrainKey + " " + m.Kind
			}
		}
		want := "liar " + tasks.MatchNear
		if rehash {
			want = ""
		}
		if found != want || (st.Stored == 1) == rehash {
			t.Errorf("rehash %v: eval05 matched %q, want %q (%d stored hashes read)", rehash, found, want, st.Stored)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestDecodeEntryRejects: an entry cut anywhere, or with any byte changed,
// does not decode; nor does one read under another key.
func TestDecodeEntryRejects(t *testing.T) {
	root := t.TempDir()
	c := NewHashCache(root)
	k := entryKey{ID: shardID{Shard: "/data/000000.tar", Size: 1234, Version: "v"}, HashFields: []string{"image_hash"}, PHashVersion: phash.Version}
	e := &shardEntry{Samples: 3, Perceptual: true, Records: []trainRecord{
		{index: 0, key: "a", file: [32]byte{1}, json: [][32]byte{{2}}, phash: 0xdeadbeef, state: phHash},
		{index: 1, key: "PMC1-0-fig", file: [32]byte{3}, state: phFlat},
	}}
	if err := c.store(k, e); err != nil {
		t.Fatal(err)
	}
	got, err := c.load(k)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(e) {
		t.Fatalf("load: %+v, %v; want %+v", got, err, e)
	}
	other := k
	other.ID.Size++
	if got, err := c.load(other); got != nil || err != nil {
		t.Errorf("another shard version: %+v, %v; want no entry", got, err)
	}
	path, keyJSON := c.path(k)
	data := mustRead(t, path)
	for n := range len(data) {
		if _, err := decodeEntry(data[:n], keyJSON); err == nil {
			t.Errorf("entry cut to %d of %d bytes decodes", n, len(data))
		}
	}
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x01
		if _, err := decodeEntry(bad, keyJSON); err == nil {
			t.Errorf("entry with byte %d changed decodes", i)
		}
	}
	// The right bytes under another key (a hash collision, a copied file).
	otherPath, otherKey := c.path(other)
	if err := os.MkdirAll(filepath.Dir(otherPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeEntry(data, otherKey); err == nil {
		t.Error("an entry decodes under another key")
	}
	if _, err := c.load(other); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("loading an entry written for another key: %v", err)
	}
}
