package hub

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"regexp"
)

var (
	sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
	gitIDPattern  = regexp.MustCompile(`^[0-9a-f]{40}$`)
)

// verify checks a downloaded file against what the hub announced: its
// size, and its ETag, which the hub sets to the sha256 of LFS files and to
// the Git blob id (sha1 of "blob <size>\0" and the content) of the others.
// An ETag of neither form (some mirrors) is checked by size only.
func verify(f *os.File, m meta) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if m.size >= 0 && st.Size() != m.size {
		return fmt.Errorf("%d bytes received, %d announced", st.Size(), m.size)
	}
	var h hash.Hash
	switch {
	case sha256Pattern.MatchString(m.etag):
		h = sha256.New()
	case gitIDPattern.MatchString(m.etag):
		h = sha1.New()
		fmt.Fprintf(h, "blob %d\x00", st.Size())
	default:
		return nil
	}
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, st.Size())); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != m.etag {
		return fmt.Errorf("%w: the content hashes to %s, the hub's ETag is %s", ErrChecksum, got, m.etag)
	}
	return nil
}
