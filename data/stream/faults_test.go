package stream

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/data/remote"
	"github.com/bmca/bmca/data/remote/remotetest"
	"github.com/bmca/bmca/text/tokenizer"
)

// absurdPNG is a valid PNG whose header claims 100000×100000 pixels: a
// decompression bomb that must be refused from the header.
func absurdPNG(t testing.TB) []byte {
	data := bytes.Clone(pngBytes(t, 9, testImageSize))
	copy(data[16:24], []byte{0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0})
	binary.BigEndian.PutUint32(data[29:33], crc32.ChecksumIEEE(data[12:29]))
	return data
}

// collectOnce reads a whole Once pass with a deadline, so that a deadlock
// fails the test instead of hanging it.
func collectOnce(t *testing.T, s *Stream) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var keys []string
	for b, err := range s.Once(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, b.Keys...)
	}
	return keys
}

// TestRemoteFaults serves shards over HTTP with every fault the issue lists
// and checks that the stream delivers every good sample exactly once,
// skips what cannot be read, counts it all by reason, and ends.
func TestRemoteFaults(t *testing.T) {
	files := map[string][]byte{}
	var want []string
	shard := func(name string, members []member) {
		files["/"+name] = tarBytes(t, members, false)
	}
	var clean []member
	for i := range 30 {
		key := fmt.Sprintf("clean/%03d", i)
		clean = append(clean, goodSample(t, key, i, testImageSize)...)
		want = append(want, key)
	}
	shard("a.tar", clean) // dropped twice, then a 500
	var mixed []member
	for i := range 10 {
		key := fmt.Sprintf("mixed/%03d", i)
		switch i {
		case 2:
			mixed = append(mixed, member{name: key + ".jpg", data: []byte("\xff\xd8\xff\xe0 not really a jpeg")}, member{name: key + ".txt", data: []byte("corrupt")})
		case 4:
			mixed = append(mixed, member{name: key + ".png", data: pngBytes(t, i, testImageSize)}, member{name: key + ".txt", data: []byte("  \n")})
		case 6:
			mixed = append(mixed, member{name: key + ".png", data: absurdPNG(t)}, member{name: key + ".txt", data: []byte("bomb")})
		default:
			mixed = append(mixed, goodSample(t, key, 100+i, testImageSize)...)
			want = append(want, key)
		}
	}
	shard("b.tar", mixed) // stalls once
	// c.tar is cut inside its fourth sample: the first three are kept.
	var cut []member
	for i := range 6 {
		cut = append(cut, goodSample(t, fmt.Sprintf("cut/%03d", i), 200+i, testImageSize)...)
	}
	full := tarBytes(t, cut, false)
	probe := tarBytes(t, cut[:9], false) // three samples: end of the third member set
	files["/c.tar"] = full[:len(probe)-1024+200]
	want = append(want, "cut/000", "cut/001", "cut/002")
	// d.tar always answers 503: skipped after its retries. e.tar is missing.
	files["/d.tar"] = tarBytes(t, goodSample(t, "never/000", 300, testImageSize), false)

	srv := remotetest.New(files)
	defer srv.Close()
	srv.Token = "hf_test_token"
	srv.Fault("/a.tar", remotetest.Fault{DropAfter: 4000, Times: 2})
	srv.Fault("/b.tar", remotetest.Fault{DropAfter: 3000, Stall: 3 * time.Second, Times: 1})
	srv.Fault("/d.tar", remotetest.Fault{Status: 503})

	t.Setenv("HF_TOKEN", "hf_test_token")
	cfg := Config{
		Shards:    []string{srv.URL("/{a,b,c,d,e}.tar")},
		BatchSize: 4, Workers: 2, ImageSize: testImageSize,
		HTTP: remote.Options{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, IdleTimeout: time.Second, MaxAttempts: 4},
	}
	s, err := New(cfg, Deterministic(preprocess.OpenAI(testImageSize).Apply), tokenizer.NewByteLevel(24))
	if err != nil {
		t.Fatal(err)
	}
	got := collectOnce(t, s)
	if !slices.Equal(got, want) {
		t.Errorf("delivered %d samples:\n%v\nwant %d:\n%v", len(got), got, len(want), want)
	}
	st := s.Stats()
	t.Logf("stats: %+v", st)
	wantSkipped := map[Reason]int64{ReasonDecode: 2, ReasonEmptyCaption: 1}
	for r, n := range wantSkipped {
		if st.Skipped[r] != n {
			t.Errorf("skipped[%s] = %d, want %d", r, st.Skipped[r], n)
		}
	}
	// c.tar (truncated), d.tar (503 until giving up), e.tar (404).
	if st.ShardErrors != 3 || st.Shards != 5 {
		t.Errorf("%d shard errors of %d shards, want 3 of 5", st.ShardErrors, st.Shards)
	}
	// Two drops and a stall are resumed, 3 retries of d.tar before giving up.
	if st.Retries < 6 {
		t.Errorf("%d retries counted, want at least 6", st.Retries)
	}
	if strings.Contains(fmt.Sprintf("%+v %v", st, cfg), "hf_test_token") {
		t.Error("the token appears in stats or config output")
	}
	if !strings.Contains(st.LastDecodeError, "mixed/") {
		t.Errorf("last decode error %q does not name its sample", st.LastDecodeError)
	}
}
