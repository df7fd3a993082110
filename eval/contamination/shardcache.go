package contamination

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/bmca/bmca/data/phash"
	"github.com/bmca/bmca/data/remote"
	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/internal/atomicfile"
)

// HashCache keeps the hashes of training shards' images on disk, so that
// a contamination check reads a shard once: later scans of the same shard
// read its hashes — no download, no decoding — and the shard itself only
// to verify a candidate near-duplicate.
//
// An entry holds one shard: ROOT/ab/abcdef….hashes, named by the SHA-256
// of the shard's identity — its absolute path or URL, its size and version
// (a local file's modification time, a remote one's ETag or else
// Last-Modified) — and of what the scan reads from it (the json hash
// fields, the format, the member size limit, the perceptual hash's
// version). A shard that changes gets another entry. An entry is written
// atomically, and only for a shard read completely whose identity did not
// change while it was read; it ends in a CRC-32, and one that fails it,
// cannot be parsed or names another identity is recomputed and
// overwritten, never trusted. Entries are never deleted here: remove the
// folder to reclaim the space (about 50 bytes plus the key per image).
type HashCache struct {
	root string
}

// NewHashCache returns the cache in root; the folder is created on the
// first write.
func NewHashCache(root string) *HashCache { return &HashCache{root: root} }

// Root is the cache folder.
func (c *HashCache) Root() string { return c.root }

// hashCacheMagic starts every entry; the last byte is the format version.
const hashCacheMagic = "BMCATRNH\x01\n"

// shardID identifies one version of a shard.
type shardID struct {
	Shard   string `json:"shard"` // absolute path or URL
	Size    int64  `json:"size"`
	Version string `json:"version"`
}

// identify finds a shard's identity: a stat for a local file, a one-byte
// range request for a remote one. A remote shard without validators has
// none (errNoIdentity).
func identify(ctx context.Context, cfg stream.Config, url string) (shardID, error) {
	if remote.IsRemote(url) {
		info, err := remote.Stat(ctx, url, cfg.HTTP)
		if err != nil {
			return shardID{}, err
		}
		v := info.ETag
		if v == "" {
			v = info.LastModified
		}
		if v == "" {
			return shardID{}, fmt.Errorf("shard %s: %w", url, errNoIdentity)
		}
		return shardID{Shard: url, Size: info.Size, Version: v}, nil
	}
	abs, err := filepath.Abs(url)
	if err != nil {
		return shardID{}, err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return shardID{}, err
	}
	return shardID{Shard: abs, Size: st.Size(), Version: st.ModTime().UTC().Format(time.RFC3339Nano)}, nil
}

var errNoIdentity = errors.New("the server sends neither ETag nor Last-Modified, so its hashes are not cached")

// entryKey is what names an entry: the shard's identity and how it is
// read. Its JSON is stored in the entry and must match on loading.
type entryKey struct {
	ID           shardID  `json:"id"`
	HashFields   []string `json:"hash_fields"`
	Format       string   `json:"format"`
	Parquet      string   `json:"parquet"`
	MaxMember    int64    `json:"max_member_bytes"`
	PHashVersion int      `json:"phash_version"`
}

func newEntryKey(id shardID, cfg stream.Config, fields []string) entryKey {
	return entryKey{ID: id, HashFields: fields, Format: cfg.Format, Parquet: fmt.Sprintf("%+v", cfg.Parquet),
		MaxMember: cfg.MaxMemberBytes, PHashVersion: phash.Version}
}

// name is the entry's file name stem: the SHA-256 of the key's JSON.
func (k entryKey) name() (string, []byte) {
	data, _ := json.Marshal(k) // strings, ints and a slice of strings: cannot fail
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), data
}

func (c *HashCache) path(k entryKey) (string, []byte) {
	name, data := k.name()
	return filepath.Join(c.root, name[:2], name+".hashes"), data
}

// shardEntry is what the cache keeps of one shard.
type shardEntry struct {
	// Samples is the number of samples the shard holds, with an image or
	// not; records are those with one, in shard order.
	Samples int64
	// Perceptual says whether the records carry perceptual hashes (an
	// exact-only scan computes none).
	Perceptual bool
	Records    []trainRecord
}

// entryHeader is the JSON part of an entry.
type entryHeader struct {
	Key        json.RawMessage `json:"key"`
	Samples    int64           `json:"samples"`
	Perceptual bool            `json:"perceptual"`
	Records    int             `json:"records"`
}

// load reads the entry for k: nil, nil when there is none; an error when
// it is corrupt or was written for another key.
func (c *HashCache) load(k entryKey) (*shardEntry, error) {
	path, keyJSON := c.path(k)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hash cache: %w", err)
	}
	e, err := decodeEntry(data, keyJSON)
	if err != nil {
		return nil, fmt.Errorf("hash cache entry %s for %s is corrupt (its hashes are computed again): %w", path, k.ID.Shard, err)
	}
	return e, nil
}

// store writes the entry for k, replacing any earlier one.
func (c *HashCache) store(k entryKey, e *shardEntry) error {
	path, keyJSON := c.path(k)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("hash cache: %w", err)
	}
	h, err := json.Marshal(entryHeader{Key: keyJSON, Samples: e.Samples, Perceptual: e.Perceptual, Records: len(e.Records)})
	if err != nil {
		return fmt.Errorf("hash cache: %w", err)
	}
	err = atomicfile.Write(path, func(w io.Writer) error {
		crc := crc32.NewIEEE()
		out := io.MultiWriter(w, crc)
		var buf []byte
		buf = append(buf, hashCacheMagic...)
		buf = binary.AppendUvarint(buf, uint64(len(h)))
		buf = append(buf, h...)
		for i, r := range e.Records {
			buf = appendRecord(buf, r)
			if len(buf) >= 1<<16 || i == len(e.Records)-1 {
				if _, err := out.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		if _, err := out.Write(buf); err != nil {
			return err
		}
		_, err := w.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
		return err
	})
	if err != nil {
		return fmt.Errorf("hash cache %s: %w", path, err)
	}
	return nil
}

// A record is: uvarint key length, key, state byte, file SHA-256, uvarint
// count of json hashes, each 32 bytes, perceptual hash (uint64 LE).
func appendRecord(b []byte, r trainRecord) []byte {
	b = binary.AppendUvarint(b, uint64(len(r.key)))
	b = append(b, r.key...)
	b = append(b, r.state)
	b = append(b, r.file[:]...)
	b = binary.AppendUvarint(b, uint64(len(r.json)))
	for _, h := range r.json {
		b = append(b, h[:]...)
	}
	return binary.LittleEndian.AppendUint64(b, r.phash)
}

// decodeEntry parses an entry, checking its checksum and its key.
func decodeEntry(data, keyJSON []byte) (*shardEntry, error) {
	if !bytes.HasPrefix(data, []byte(hashCacheMagic)) {
		return nil, errors.New("not a bmca hash cache entry of this version")
	}
	if len(data) < len(hashCacheMagic)+4 {
		return nil, errors.New("truncated")
	}
	body := data[:len(data)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return nil, errors.New("checksum mismatch")
	}
	r := reader{b: body[len(hashCacheMagic):]}
	var h entryHeader
	if err := json.Unmarshal(r.bytes(r.uvarint()), &h); r.err != nil || err != nil {
		return nil, fmt.Errorf("header: %w", errors.Join(r.err, err))
	}
	if !bytes.Equal(h.Key, keyJSON) {
		return nil, fmt.Errorf("written for %s, not %s", h.Key, keyJSON)
	}
	if h.Records < 0 || h.Samples < int64(h.Records) || h.Records > len(r.b)/42 {
		return nil, fmt.Errorf("%d records of %d samples in %d bytes", h.Records, h.Samples, len(r.b))
	}
	e := &shardEntry{Samples: h.Samples, Perceptual: h.Perceptual, Records: make([]trainRecord, h.Records)}
	for i := range e.Records {
		rec := &e.Records[i]
		rec.index = i
		rec.key = string(r.bytes(r.uvarint()))
		if st := r.bytes(1); len(st) == 1 {
			rec.state = st[0]
		}
		copy(rec.file[:], r.bytes(32))
		n := r.uvarint()
		if n > uint64(len(r.b)/32) {
			return nil, fmt.Errorf("record %d: %d json hashes", i, n)
		}
		for range n {
			var jh [32]byte
			copy(jh[:], r.bytes(32))
			rec.json = append(rec.json, jh)
		}
		if b := r.bytes(8); len(b) == 8 {
			rec.phash = binary.LittleEndian.Uint64(b)
		}
		if r.err != nil {
			return nil, fmt.Errorf("record %d: %w", i, r.err)
		}
		if rec.state > phFailed || (rec.state == phNone) == h.Perceptual {
			return nil, fmt.Errorf("record %d: perceptual state %d in an entry with perceptual=%v", i, rec.state, h.Perceptual)
		}
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d bytes after the last record", len(r.b))
	}
	return e, nil
}

// reader takes bytes off a slice, remembering the first overrun.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}
