package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/testshared"
)

func TestHelpExplainsEveryFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("--help exits %d", code)
	}
	help := stderr.String()
	for _, flag := range []string{"-input", "-out", "-format", "-file-list", "-workers", "-shard-samples", "-shard-mib", "-part", "-merge", "-verify-jpeg", "-quiet", "SLURM", "Kubernetes", "sizes.json", "resumable"} {
		if !strings.Contains(help, flag) {
			t.Errorf("--help does not mention %s", flag)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--out", t.TempDir()}, // no input
		{"--input", "x"},       // no output
		{"--input", "x", "--out", "y", "--format", "csv"},
		{"--input", "x", "--out", "y", "--part", "4/4"},
		{"--merge"},
		{"--merge", "--out", "y", "--input", "x"},
		{"--no-such-flag"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitUsage {
			t.Errorf("%v: exit %d, want %d (stderr %q)", args, code, exitUsage, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	missing := filepath.Join(t.TempDir(), "absent")
	if code := run([]string{"--input", missing, "--out", t.TempDir(), "--quiet"}, &stdout, &stderr); code != exitError || !strings.Contains(stderr.String(), missing) {
		t.Errorf("a missing input: exit %d, stderr %q", code, stderr.String())
	}
}

func TestBuildShards(t *testing.T) {
	in := testshared.Path(t, "data/jats-with-figures")
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--input", in, "--out", out, "--format", "wds,parquet", "--workers", "2"}, &stdout, &stderr); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	summary := stdout.String()
	for _, want := range []string{"complete", "packages: 5 (0 bad)", "figures: 11 → samples 9", "missing_image 1", "duplicate_article 1", "commercial:", "articles/s"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	// The progress bar goes to stderr, never to stdout.
	if strings.Contains(summary, "%|") || !strings.Contains(stderr.String(), "packages") {
		t.Errorf("progress bar misplaced: stdout %q", summary)
	}
	data, err := os.ReadFile(filepath.Join(out, "other", "sizes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sizes map[string]int
	if err := json.Unmarshal(data, &sizes); err != nil || sizes["000000.tar"] != 5 || sizes["000000.parquet"] != 5 {
		t.Errorf("other/sizes.json %s", data)
	}

	// Run again: nothing left to do.
	stdout.Reset()
	if code := run([]string{"--input", in, "--out", out, "--format", "wds,parquet", "--quiet"}, &stdout, &stderr); code != exitOK || !strings.Contains(stdout.String(), "this run: 0 packages") {
		t.Errorf("rerun: exit %d, %s", code, stdout.String())
	}
}

func TestSplitAndMergeCommand(t *testing.T) {
	in := testshared.Path(t, "data/jats-with-figures")
	out := t.TempDir()
	for _, part := range []string{"0/2", "1/2"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"--input", in, "--out", out, "--part", part, "--quiet"}, &stdout, &stderr); code != exitOK {
			t.Fatalf("part %s: exit %d: %s", part, code, stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--merge", "--out", out}, &stdout, &stderr); code != exitOK {
		t.Fatalf("merge: exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "merged 2 parts") || !strings.Contains(stdout.String(), "samples 9") {
		t.Errorf("merge summary:\n%s", stdout.String())
	}
}
