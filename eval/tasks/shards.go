package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"

	"github.com/bmca/bmca/data/remote"
	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/eval/formats"
	"github.com/bmca/bmca/internal/location"
)

// ShardSource lists and reads WebDataset shards.
type ShardSource interface {
	// Expand turns paths, globs and brace patterns into the shards to read,
	// in order. When shards are absent it returns an error for which
	// IsAbsent is true, and Run reports the task as skipped.
	Expand(patterns []string) ([]string, error)
	// Read streams the samples of the shards, in order.
	Read(ctx context.Context, shards []string) iter.Seq2[stream.Sample, error]
}

// DefaultShards returns the source Run uses when Env.Shards is nil: local
// files and http(s) URLs, expanded by stream.ExpandSource (brace ranges and
// globs; URLs are brace-expanded only) and read by stream.ReadShard (plain
// or gzip tar, WebDataset grouping, lower-cased extensions). Remote shards
// are streamed with retries and Range resume, with $HF_TOKEN as bearer
// token, as training streams them.
func DefaultShards() ShardSource { return defaultShards{} }

type defaultShards struct{}

func (defaultShards) Expand(patterns []string) ([]string, error) {
	var out []string
	for _, joined := range patterns {
		for _, p := range strings.Split(joined, location.SourceSeparator) {
			names, err := stream.ExpandSource(p)
			if err != nil {
				return nil, err
			}
			out = append(out, names...)
		}
	}
	return out, nil
}

func (defaultShards) Read(ctx context.Context, shards []string) iter.Seq2[stream.Sample, error] {
	return func(yield func(stream.Sample, error) bool) {
		for _, shard := range shards {
			if !readShard(ctx, shard, yield) {
				return
			}
		}
	}
}

// readShard yields the samples of one local or remote shard; false means
// stop.
func readShard(ctx context.Context, shard string, yield func(stream.Sample, error) bool) bool {
	var r io.ReadCloser
	var err error
	if remote.IsRemote(shard) {
		r, err = remote.Open(ctx, shard, remote.Options{Token: remote.Secret(os.Getenv("HF_TOKEN"))})
	} else {
		r, err = os.Open(shard)
	}
	if err != nil {
		return yield(stream.Sample{}, err)
	}
	defer r.Close()
	for s, err := range stream.ReadShard(ctx, shard, r) {
		if !yield(s, err) || err != nil {
			return false
		}
	}
	return true
}

// IsAbsent reports whether a ShardSource.Expand error means the shards are
// not there (rather than, say, a malformed pattern).
func IsAbsent(err error) bool {
	return errors.Is(err, fs.ErrNotExist)
}

// wdsSource reads a task's WebDataset shards as records.
type wdsSource struct {
	task             Task
	src              ShardSource
	shards           []string
	labels, captions bool
}

// Fingerprint covers each shard's name, size and modification time (names
// only for shards that cannot be stat-ed, such as a test's ShardSource).
func (w *wdsSource) Fingerprint() string {
	h := sha256.New()
	for _, s := range w.shards {
		name := filepath.Base(s) // the key holds the patterns; see FeatureKey
		if st, err := os.Stat(s); err == nil {
			fmt.Fprintf(h, "%s\t%d\t%d\n", name, st.Size(), st.ModTime().UnixNano())
		} else {
			fmt.Fprintf(h, "%s\n", s)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Len is unknown without reading the shards.
func (w *wdsSource) Len() int { return -1 }

func (w *wdsSource) Records(ctx context.Context) iter.Seq2[formats.Record, error] {
	return func(yield func(formats.Record, error) bool) {
		for s, err := range w.src.Read(ctx, w.shards) {
			if err != nil {
				yield(formats.Record{}, err)
				return
			}
			rec, err := w.record(s)
			if err != nil {
				err = fmt.Errorf("shard %s, sample %q: %w", s.URL, s.Key, err)
			}
			if !yield(rec, err) || err != nil {
				return
			}
		}
	}
}

// record takes the image and the label or captions out of a sample.
func (w *wdsSource) record(s stream.Sample) (formats.Record, error) {
	rec := formats.Record{Key: s.Key, Source: "shard " + s.URL}
	var err error
	if rec.Image, err = imageMember(w.task, s); err != nil {
		return rec, err
	}
	if w.labels {
		raw, ok := s.Members[w.task.LabelKey]
		if !ok {
			return rec, fmt.Errorf("no label member %q (sample has %s)", w.task.LabelKey, memberNames(s))
		}
		rec.Label = strings.TrimSpace(string(raw))
		if w.task.Kind == ZeroShotMultiLabel && formats.IsNPY(raw) {
			if rec.Label, err = npyLabel(raw); err != nil {
				return rec, fmt.Errorf("label member %q: %w", w.task.LabelKey, err)
			}
		}
	}
	if w.captions {
		raw, ok := s.Members[w.task.CaptionKey]
		if !ok {
			return rec, fmt.Errorf("no caption member %q (sample has %s)", w.task.CaptionKey, memberNames(s))
		}
		rec.Captions = splitLines(string(raw))
	}
	return rec, nil
}
