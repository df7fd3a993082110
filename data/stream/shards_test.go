package stream

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBraceExpand(t *testing.T) {
	cases := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "plain.tar", want: []string{"plain.tar"}},
		{in: "shard-{000000..000003}.tar", want: []string{"shard-000000.tar", "shard-000001.tar", "shard-000002.tar", "shard-000003.tar"}},
		{in: "s{8..11}", want: []string{"s8", "s9", "s10", "s11"}},
		{in: "s{08..11}", want: []string{"s08", "s09", "s10", "s11"}},
		{in: "s{3..1}", want: []string{"s3", "s2", "s1"}},
		{in: "s{0..6..3}", want: []string{"s0", "s3", "s6"}},
		{in: "s{-1..1}", want: []string{"s-1", "s0", "s1"}},
		{in: "{a..c}", want: []string{"a", "b", "c"}},
		{in: "{train,val}.tar", want: []string{"train.tar", "val.tar"}},
		{in: "{a,}x", want: []string{"ax", "x"}},
		{in: "shard_{000..001}_{0..1}.tar", want: []string{"shard_000_0.tar", "shard_000_1.tar", "shard_001_0.tar", "shard_001_1.tar"}},
		{in: "{a,b{1..2}}", want: []string{"a", "b1", "b2"}},
		{in: "lit{x}eral", want: []string{"lit{x}eral"}},
		{in: "open{1..2", wantErr: "unmatched '{'"},
		{in: "close}", wantErr: "unmatched '}'"},
		{in: "s{0..5..0}", wantErr: "step 0"},
		{in: "s{0..99999999}", wantErr: "exceeds"},
		{in: "{0..2000}{0..2000}", wantErr: "more than"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := braceExpand(c.in)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestExpandShards(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a-000.tar", "a-001.tar", "a-002.tar", "b.tgz"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.tar"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := func(names ...string) []string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = filepath.Join(dir, n)
		}
		return out
	}
	cases := []struct {
		name     string
		patterns []string
		want     []string
		wantErr  string
	}{
		{name: "plain path", patterns: p("b.tgz"), want: p("b.tgz")},
		{name: "glob skips directories", patterns: p("*.tar"), want: p("a-000.tar", "a-001.tar", "a-002.tar")},
		{name: "brace range", patterns: p("a-{000..001}.tar"), want: p("a-000.tar", "a-001.tar")},
		{name: "braces then glob", patterns: p("{a-00*,b*}"), want: p("a-000.tar", "a-001.tar", "a-002.tar", "b.tgz")},
		{name: "several patterns and ::", patterns: []string{filepath.Join(dir, "b.tgz") + "::" + filepath.Join(dir, "a-002.tar"), filepath.Join(dir, "a-000.tar")}, want: p("b.tgz", "a-002.tar", "a-000.tar")},
		{name: "missing range member names the pattern", patterns: p("a-{000..003}.tar"), wantErr: "a-{000..003}.tar"},
		{name: "glob matching nothing", patterns: p("*.parquet"), wantErr: "matches no file"},
		{name: "directory", patterns: p("sub.tar"), wantErr: "is a directory"},
		{name: "empty list", patterns: nil, wantErr: "no shard patterns"},
		{name: "empty part", patterns: []string{"::" + filepath.Join(dir, "b.tgz")}, wantErr: "empty shard pattern"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ExpandShards(c.patterns)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
