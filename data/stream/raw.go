package stream

import (
	"context"
	"iter"
	"slices"
)

// ExpandSources expands shard sources as Config.Shards takes them (paths,
// globs, brace ranges, URLs, "biomedica:" specs, "::"-joined lists) into
// the shards, in order.
func ExpandSources(sources []string) ([]string, error) {
	shards, err := expandSources(sources, nil)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(shards))
	for i, s := range shards {
		out[i] = s.url
	}
	return out, nil
}

// ReadImages reads one shard (local or remote, WebDataset or parquet, as
// cfg's Format, Parquet, HTTP and MaxMemberBytes say) for tools that inspect
// training data rather than train on it: each sample with its image members
// (jpg, png, jpeg, webp) undecoded and, in Sample.Meta, the json fields of
// cfg.MetaFields; captions and the rest of the json are skipped unread. A
// sample whose image member exceeds MaxMemberBytes comes without it.
func ReadImages(ctx context.Context, cfg Config, url string) iter.Seq2[Sample, error] {
	meta := map[string]bool{}
	for _, f := range cfg.MetaFields {
		meta[f] = true
	}
	keep := func(ext string) bool { return slices.Contains(imageExtensions[:], ext) }
	return func(yield func(Sample, error) bool) {
		stopped := false
		err := readURL(ctx, cfg, meta, keep, url, func(s Sample) bool {
			if !yield(s, nil) {
				stopped = true
				return false
			}
			return true
		})
		if err != nil && !stopped {
			yield(Sample{URL: url}, err)
		}
	}
}
