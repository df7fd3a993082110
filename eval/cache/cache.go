// Package cache keeps evaluation features on disk, so an evaluation suite
// encodes each image once per model: eval/tasks asks a FeatureCache for a
// split's features under a key that covers the model, the task's data
// definition and the data's fingerprint (tasks.FeatureKey), and stores what
// it computed on a miss.
//
//	env.Cache = cache.New(filepath.Join(userCache, "bmca", "features"))
//	env.ModelKey = modelKey // changes with the weights, preprocessing, tokenizer
//
// Entries are files ROOT/ab/abcdef….feat (the key's first two hex digits
// name a folder), written atomically (temporary file, fsync, rename), so a
// crash leaves the old entry or none, never half of one. Each ends in a
// CRC-32 of its content; an entry that fails it is reported as corrupt and
// the caller recomputes and overwrites it. Entries are never deleted here:
// remove the folder to reclaim the space.
package cache

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/bmca/bmca/eval/tasks"
	"github.com/bmca/bmca/internal/atomicfile"
)

// magic starts every entry; the last byte is the format version.
const magic = "BMCAFEAT\x01\n"

// Dir is a feature cache in a folder. Its methods are safe for concurrent
// use (each entry is one file replaced atomically).
type Dir struct {
	root string
}

// New returns the cache in root; the folder is created on the first Store.
func New(root string) *Dir { return &Dir{root: root} }

// Root is the cache folder.
func (d *Dir) Root() string { return d.root }

// Path is where the entry for key lives.
func (d *Dir) Path(key string) (string, error) {
	if len(key) < 8 {
		return "", fmt.Errorf("feature cache: key %q is too short", key)
	}
	for _, r := range key {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return "", fmt.Errorf("feature cache: key %q is not lower-case hex", key)
		}
	}
	return filepath.Join(d.root, key[:2], key+".feat"), nil
}

// header is the JSON part of an entry.
type header struct {
	Dim       int      `json:"dim"`
	Images    int      `json:"images"`
	Texts     int      `json:"texts"`
	Excluded  int      `json:"excluded,omitempty"`
	Labels    []string `json:"labels,omitempty"`
	HasLabels bool     `json:"has_labels"`
	TextImage []int    `json:"text_image,omitempty"`
}

// Store writes f under key, replacing any earlier entry.
func (d *Dir) Store(key string, f *tasks.Features) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("feature cache: %w", err)
	}
	path, err := d.Path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("feature cache: %w", err)
	}
	h, err := json.Marshal(header{Dim: f.Dim, Images: f.Len(), Texts: len(f.TextImage), Excluded: f.Excluded,
		Labels: f.Labels, HasLabels: f.Labels != nil, TextImage: f.TextImage})
	if err != nil {
		return fmt.Errorf("feature cache: %w", err)
	}
	err = atomicfile.Write(path, func(w io.Writer) error {
		crc := crc32.NewIEEE()
		out := io.MultiWriter(w, crc)
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(h)))
		for _, part := range [][]byte{[]byte(magic), n[:], h, floatBytes(f.Images), floatBytes(f.Texts)} {
			if _, err := out.Write(part); err != nil {
				return err
			}
		}
		var sum [4]byte
		binary.LittleEndian.PutUint32(sum[:], crc.Sum32())
		_, err := w.Write(sum[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("feature cache %s: %w", path, err)
	}
	return nil
}

// Load reads the entry for key: nil, nil when there is none, an error when
// it cannot be read or is corrupt.
func (d *Dir) Load(key string) (*tasks.Features, error) {
	path, err := d.Path(key)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("feature cache: %w", err)
	}
	f, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("feature cache entry %s is corrupt: %w", path, err)
	}
	return f, nil
}

func decode(data []byte) (*tasks.Features, error) {
	if !bytes.HasPrefix(data, []byte(magic)) {
		return nil, errors.New("not a bmca feature file of this version")
	}
	if len(data) < len(magic)+8+4 {
		return nil, errors.New("truncated")
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, errors.New("checksum mismatch")
	}
	rest := body[len(magic):]
	n := binary.LittleEndian.Uint64(rest)
	rest = rest[8:]
	if n > uint64(len(rest)) {
		return nil, errors.New("header length past the end")
	}
	var h header
	if err := json.Unmarshal(rest[:n], &h); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	rest = rest[n:]
	if h.Dim <= 0 || h.Images < 0 || h.Texts < 0 || uint64(len(rest)) != 4*uint64(h.Dim)*uint64(h.Images+h.Texts) {
		return nil, fmt.Errorf("%d bytes of features for %d images and %d texts of dim %d", len(rest), h.Images, h.Texts, h.Dim)
	}
	f := &tasks.Features{Dim: h.Dim, Excluded: h.Excluded, TextImage: h.TextImage}
	f.Images = bytesFloats(rest[:4*h.Dim*h.Images])
	if h.Texts > 0 {
		f.Texts = bytesFloats(rest[4*h.Dim*h.Images:])
	}
	if h.HasLabels {
		f.Labels = h.Labels
		if f.Labels == nil {
			f.Labels = []string{}
		}
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

func floatBytes(x []float32) []byte {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func bytesFloats(b []byte) []float32 {
	x := make([]float32, len(b)/4)
	for i := range x {
		x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return x
}
