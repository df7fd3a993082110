package stream

import (
	"fmt"
	"strings"

	"github.com/bmca/bmca/data/remote"
	"github.com/bmca/bmca/internal/location"
)

// BiomedicaBase is where the BIOMEDICA WebDataset shards are published
// (a gated Hugging Face dataset: accept its terms and set HF_TOKEN).
const BiomedicaBase = "https://huggingface.co/datasets/BIOMEDICA/biomedica_webdataset_24M/resolve/main"

// biomedicaSubsets are the license folders and their shard ranges
// (commercial/000000..001861, noncommercial/000000..000559, other/000000..000114).
var biomedicaSubsets = []struct{ name, last string }{
	{"commercial", "001861"},
	{"noncommercial", "000559"},
	{"other", "000114"},
}

// ExpandBiomedica turns the short spec "biomedica:SUBSETS[@BASE]" into shard
// patterns. SUBSETS is "all" or a comma-separated list of commercial,
// noncommercial and other (the three license groups); BASE replaces
// BiomedicaBase, for a local mirror or another host. For example
// "biomedica:commercial,other" or "biomedica:all@/data/biomedica".
func ExpandBiomedica(spec string) ([]string, error) {
	rest, ok := strings.CutPrefix(spec, "biomedica:")
	if !ok {
		return nil, fmt.Errorf("stream: %q is not a biomedica: spec", spec)
	}
	subsets, base, _ := strings.Cut(rest, "@")
	if base == "" {
		base = BiomedicaBase
	}
	base = strings.TrimSuffix(base, "/")
	want := map[string]bool{}
	for _, s := range strings.Split(subsets, ",") {
		switch s = strings.TrimSpace(s); s {
		case "all":
			for _, b := range biomedicaSubsets {
				want[b.name] = true
			}
		case "commercial", "noncommercial", "other":
			want[s] = true
		default:
			return nil, fmt.Errorf("stream: biomedica subset %q: want all, commercial, noncommercial or other", s)
		}
	}
	var out []string
	for _, b := range biomedicaSubsets {
		if want[b.name] {
			out = append(out, fmt.Sprintf("%s/%s/{000000..%s}.tar", base, b.name, b.last))
		}
	}
	return out, nil
}

// shard is one file of the stream with its sampling weight.
type shard struct {
	url    string
	weight float64
}

// expandSources expands every pattern ("::"-joined lists included) into
// shards; weights, when given, hold one weight per "::"-separated source,
// in order, and apply to each of its shards (OpenCLIP's
// --train-data-upsampling-factors). Local patterns must match existing
// files; URLs are only brace-expanded.
func expandSources(patterns []string, weights []float64) ([]shard, error) {
	var sources []string
	for _, joined := range patterns {
		for _, p := range strings.Split(joined, "::") {
			if p == "" {
				return nil, fmt.Errorf("stream: empty shard pattern in %q", joined)
			}
			sources = append(sources, p)
		}
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("stream: no shard patterns given")
	}
	if len(weights) > 0 && len(weights) != len(sources) {
		return nil, fmt.Errorf("stream: %d weights for %d sources (%s): give one per \"::\"-separated source", len(weights), len(sources), strings.Join(sources, " :: "))
	}
	var out []shard
	for i, src := range sources {
		w := 1.0
		if len(weights) > 0 {
			w = weights[i]
			if !(w >= 0) {
				return nil, fmt.Errorf("stream: weight %v of source %q must be ≥ 0", w, src)
			}
		}
		urls, err := expandOne(src)
		if err != nil {
			return nil, err
		}
		for _, u := range urls {
			out = append(out, shard{url: u, weight: w})
		}
	}
	return out, nil
}

// ExpandSource expands one shard source into shard names, in order: a
// biomedica: spec into its published shards, an http(s) URL by brace
// expansion only (the server is asked when the shard is read), and a local
// pattern by brace expansion and globbing against existing files (see
// ExpandShards). Other kinds of reference are errors that say what is
// supported: bmca runs no "pipe:" shell commands and speaks no s3:// or
// gs:// protocol.
func ExpandSource(src string) ([]string, error) { return expandOne(src) }

// expandOne implements ExpandSource.
func expandOne(src string) ([]string, error) {
	if strings.HasPrefix(src, location.Pipe) {
		return nil, fmt.Errorf("stream: shard source %q: pipe: commands are not run; give the shards' http(s) URLs instead (a bearer token comes from $HF_TOKEN)", src)
	}
	if location.IsURL(src) && !remote.IsRemote(src) {
		return nil, fmt.Errorf("stream: shard source %q: only http:// and https:// URLs can be streamed (mount or mirror other stores, or serve them over https)", src)
	}
	if strings.HasPrefix(src, location.Biomedica) {
		pats, err := ExpandBiomedica(src)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, p := range pats {
			urls, err := expandOne(p)
			if err != nil {
				return nil, err
			}
			out = append(out, urls...)
		}
		return out, nil
	}
	if remote.IsRemote(src) {
		names, err := braceExpand(src)
		if err != nil {
			return nil, fmt.Errorf("stream: shard pattern %q: %w", src, err)
		}
		return names, nil
	}
	return ExpandShards([]string{src})
}
