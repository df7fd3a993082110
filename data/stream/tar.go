package stream

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"path"
	"regexp"
	"strings"
)

// Sample is one WebDataset sample: the tar members that share a key.
type Sample struct {
	// Key is the member path up to the first dot of its base name,
	// directory included ("images/00042" for "images/00042.seg.png").
	Key string
	// URL names the shard the sample came from.
	URL string
	// Members maps each lower-cased extension ("jpg", "txt", "seg.png") to
	// the member's bytes.
	Members map[string][]byte
	// Meta holds the json metadata fields the stream was asked to keep
	// (filters' fields and Config.MetaFields), raw; nil when none were
	// asked for. ReadShard leaves it nil and keeps the json member whole.
	Meta map[string]json.RawMessage

	// bad, when set, says why the reader already knows the sample is
	// unusable (a member too large, unparsable metadata).
	bad Reason
}

// imageExtensions are the members OpenCLIP takes as the image, in its order
// of preference (open_clip_train/data.py renames "jpg;png;jpeg;webp").
var imageExtensions = [...]string{"jpg", "png", "jpeg", "webp"}

// CaptionExtension is the member OpenCLIP takes as the caption.
const CaptionExtension = "txt"

// Image returns the image member, choosing as OpenCLIP does the first of
// jpg, png, jpeg, webp that the sample has.
func (s Sample) Image() (ext string, data []byte, ok bool) {
	for _, ext := range imageExtensions {
		if data, ok := s.Members[ext]; ok {
			return ext, data, true
		}
	}
	return "", nil, false
}

// Caption returns the txt member as text.
func (s Sample) Caption() (string, bool) {
	data, ok := s.Members[CaptionExtension]
	return string(data), ok
}

// gzipMagic starts every gzip stream; .tgz and .tar.gz shards are detected
// by it rather than by name.
var gzipMagic = []byte{0x1f, 0x8b}

// metaMember matches the members webdataset skips as metadata
// (its skip_meta pattern, e.g. "__index__").
var metaMember = regexp.MustCompile(`__[^/]*__($|/)`)

// ReadShard streams the samples of one WebDataset shard read from r, plain
// tar or gzip-compressed tar (detected by its magic bytes). It follows
// webdataset's grouping: only regular files count; a member's key is its
// path up to the first dot of the base name and its extension the rest,
// lower-cased; members without such a dot, or named like __meta__, are
// skipped; a new sample starts when the key changes or, as OpenCLIP guards
// against shards that end with the key the next one starts with, when an
// extension repeats within one key.
//
// A read error is yielded once, wrapped with url, and ends the sequence;
// a sample whose member was cut is dropped, one whose members were all read
// before the error is kept. url only labels samples and errors.
func ReadShard(ctx context.Context, url string, r io.Reader) iter.Seq2[Sample, error] {
	return func(yield func(Sample, error) bool) {
		err := readShard(ctx, url, r, readOptions{}, func(s Sample) bool { return yield(s, nil) })
		if err != nil {
			yield(Sample{}, err)
		}
	}
}

// readOptions say what readShard keeps of each sample.
type readOptions struct {
	// keep (when not nil) says which extensions to read; the others still
	// take part in grouping but their bytes are skipped, which matters for
	// BIOMEDICA, whose json member holds the whole article.
	keep func(ext string) bool
	// meta, when not empty, makes the json member be scanned for these
	// top-level fields only, into Sample.Meta, instead of being read.
	meta map[string]bool
	// maxMember, when > 0, marks samples with a larger kept member as
	// ReasonTooLarge instead of reading it.
	maxMember int64
}

// readShard is ReadShard with a push callback and readOptions. It returns
// nil when yield stops it early.
func readShard(ctx context.Context, url string, r io.Reader, opts readOptions, yield func(Sample) bool) error {
	br := bufio.NewReaderSize(r, 1<<16)
	var src io.Reader = br
	if magic, _ := br.Peek(len(gzipMagic)); string(magic) == string(gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("shard %s: gzip: %w", url, err)
		}
		defer zr.Close()
		src = zr
	}
	counted := &countingReader{r: src}
	tr := tar.NewReader(counted)

	var cur Sample
	seen := map[string]bool{} // extensions of cur, read or not
	end := int64(0)           // where the header after the last member starts; -1 when unknown
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("shard %s: %w", url, err)
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// archive/tar also ends quietly when the stream stops right
			// after a member, or after one zero block: a shard cut at a
			// member boundary. Every writer of WebDataset shards (Python's
			// tarfile, GNU tar, Go's archive/tar) ends the archive with two
			// zero blocks, which Next reads before io.EOF.
			if end >= 0 && counted.n-end < 2*tarBlock {
				err = fmt.Errorf("%w: the archive stops at byte %d without its end-of-archive blocks", ErrTruncated, counted.n)
			} else {
				break
			}
		}
		if err != nil {
			// The members read so far are whole: keep their sample (a
			// truncated shard loses only what was cut).
			if len(seen) > 0 && ctx.Err() == nil {
				yield(cur)
			}
			return fmt.Errorf("shard %s: %w", url, err)
		}
		end = counted.n + (hdr.Size+tarBlock-1)/tarBlock*tarBlock
		if hdr.Typeflag == tar.TypeGNUSparse || hasSparsePAX(hdr) {
			end = -1 // its size in the archive is not hdr.Size
		}
		if hdr.Typeflag != tar.TypeReg || metaMember.MatchString(hdr.Name) {
			continue
		}
		key, ext, ok := splitKey(hdr.Name)
		if !ok {
			continue
		}
		if len(seen) > 0 && (key != cur.Key || seen[ext]) {
			if !yield(cur) {
				return nil
			}
			clear(seen)
		}
		if len(seen) == 0 {
			cur = Sample{Key: key, URL: url, Members: map[string][]byte{}}
		}
		seen[ext] = true
		if ext == "json" && len(opts.meta) > 0 {
			meta, err := readMeta(tr, opts.meta)
			if err != nil {
				if rerr := ctx.Err(); rerr != nil {
					return fmt.Errorf("shard %s: %w", url, rerr)
				}
				cur.bad = ReasonBadMeta
				continue
			}
			cur.Meta = meta
			continue
		}
		if opts.keep != nil && !opts.keep(ext) {
			continue
		}
		if opts.maxMember > 0 && hdr.Size > opts.maxMember {
			cur.bad = ReasonTooLarge
			continue
		}
		data, err := readMember(tr, hdr.Size)
		if err != nil {
			return fmt.Errorf("shard %s, member %s: %w", url, hdr.Name, err)
		}
		cur.Members[ext] = data
	}
	if len(seen) > 0 {
		yield(cur)
	}
	return nil
}

// readMember reads a member whose header gives its size into one buffer of
// that size: io.ReadAll would grow a buffer by doubling, allocating and
// copying a large image several times. Sizes past 64 MiB, which only a
// stream without a member limit lets through, are left to io.ReadAll, so
// that a lying header cannot allocate more than the data.
func readMember(r io.Reader, size int64) ([]byte, error) {
	if size < 0 || size > 64<<20 {
		return io.ReadAll(r)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, err
	}
	return data, nil
}

// ErrTruncated is wrapped by the error of a shard whose tar archive ends
// early, even exactly between two members.
var ErrTruncated = errors.New("shard is truncated")

// tarBlock is the tar format's block size.
const tarBlock = 512

// countingReader counts the bytes the tar reader consumes (it reads
// nothing ahead), so the end of the last member is known.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// hasSparsePAX reports a PAX-format sparse file, whose data in the
// archive is not hdr.Size bytes long.
func hasSparsePAX(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// splitKey applies webdataset's base_plus_ext rule,
// ^((?:.*/|)[^.]+)[.]([^/]*)$: the base name must have a dot that is not its
// first character.
func splitKey(name string) (key, ext string, ok bool) {
	dir, base := path.Split(name)
	dot := strings.IndexByte(base, '.')
	if dot <= 0 {
		return "", "", false
	}
	return dir + base[:dot], strings.ToLower(base[dot+1:]), true
}
