package tasks

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"strings"

	"github.com/bmca/bmca/data/stream"
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
	// TODO(data/stream): stream.ExpandShards reports a glob that matches
	// nothing with a plain error; once it wraps fs.ErrNotExist the message
	// test can go.
	return errors.Is(err, fs.ErrNotExist) || (err != nil && strings.Contains(err.Error(), "matches no file"))
}

func isRemote(shard string) bool {
	return strings.Contains(shard, "://") || strings.HasPrefix(shard, "pipe:")
}
