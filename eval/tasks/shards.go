package tasks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"

	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/eval/formats"
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
// files, expanded by stream.ExpandShards and read by stream.ReadShard
// (plain or gzip tar, WebDataset grouping, lower-cased extensions).
func DefaultShards() ShardSource { return localShards{} }

type localShards struct{}

func (localShards) Expand(patterns []string) ([]string, error) {
	for _, p := range patterns {
		if isRemote(p) {
			return nil, fmt.Errorf("shard %s: remote shards are not supported yet (data/stream reads local files)", p)
		}
	}
	return stream.ExpandShards(patterns)
}

func (localShards) Read(ctx context.Context, shards []string) iter.Seq2[stream.Sample, error] {
	return func(yield func(stream.Sample, error) bool) {
		for _, shard := range shards {
			if !readShardFile(ctx, shard, yield) {
				return
			}
		}
	}
}

// readShardFile yields the samples of one shard; false means stop.
func readShardFile(ctx context.Context, shard string, yield func(stream.Sample, error) bool) bool {
	f, err := os.Open(shard)
	if err != nil {
		return yield(stream.Sample{}, err)
	}
	defer f.Close()
	for s, err := range stream.ReadShard(ctx, shard, f) {
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

func isRemote(shard string) bool {
	return strings.Contains(shard, "://") || strings.HasPrefix(shard, "pipe:")
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
