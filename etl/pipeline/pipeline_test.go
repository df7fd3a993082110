package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/etl/pmc"
	"github.com/bmca/bmca/etl/sample"
	"github.com/bmca/bmca/etl/shardwriter"
	"github.com/bmca/bmca/internal/testshared"
	"github.com/bmca/bmca/text/tokenizer"
)

func run(t testing.TB, cfg Config) *Summary {
	t.Helper()
	sum, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Complete {
		t.Fatalf("run not complete")
	}
	return sum
}

// streamKeys reads every WebDataset shard of dir through data/stream, as
// training would (decode, preprocess, tokenize), and returns the keys.
func streamKeys(t *testing.T, dir string) []string {
	t.Helper()
	var shards []string
	for _, g := range pmc.Groups {
		sizes, err := shardwriter.ReadSizes(filepath.Join(dir, string(g)))
		if err != nil {
			t.Fatal(err)
		}
		for name := range sizes {
			if strings.HasSuffix(name, ".tar") {
				shards = append(shards, filepath.Join(dir, string(g), name))
			}
		}
	}
	slices.Sort(shards)
	if len(shards) == 0 {
		t.Fatal("no shards")
	}
	s, err := stream.New(stream.Config{Shards: shards, BatchSize: 4, ShuffleBuffer: 1, Workers: 2},
		stream.Deterministic(preprocess.OpenAI(16).Apply), tokenizer.NewByteLevel(32))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for b, err := range s.Once(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, b.Keys...)
	}
	if st := s.Stats(); len(st.Skipped) != 0 || st.ShardErrors != 0 {
		t.Errorf("stream skipped %v, shard errors %d (%v)", st.Skipped, st.ShardErrors, st.LastShardError)
	}
	return keys
}

// checkSizes verifies that every sizes.json matches its shards.
func checkSizes(t *testing.T, dir string) int {
	t.Helper()
	total := 0
	for _, g := range pmc.Groups {
		gdir := filepath.Join(dir, string(g))
		sizes, err := shardwriter.ReadSizes(gdir)
		if err != nil {
			t.Fatal(err)
		}
		for name, n := range sizes {
			if !strings.HasSuffix(name, ".tar") {
				continue
			}
			f, err := os.Open(filepath.Join(gdir, name))
			if err != nil {
				t.Fatal(err)
			}
			count := 0
			for _, err := range stream.ReadShard(context.Background(), name, f) {
				if err != nil {
					t.Fatalf("%s/%s: %v", g, name, err)
				}
				count++
			}
			f.Close()
			if count != n {
				t.Errorf("%s/%s holds %d samples, sizes.json says %d", g, name, count, n)
			}
			total += n
		}
	}
	return total
}

// TestRunRealArticles runs the 33 text-only articles and the 4 articles
// with figures (5 packages: one is both an archive and its extracted
// folder) and reads the result back through data/stream.
func TestRunRealArticles(t *testing.T) {
	withFigs := testshared.Path(t, "data/jats-with-figures")
	textOnly := testshared.Path(t, "data/jats")
	out := t.TempDir()
	sum := run(t, Config{Inputs: []string{withFigs, textOnly}, Out: out, Workers: 2})

	if sum.Packages != 38 || sum.Bad != 0 {
		t.Errorf("%d packages (%d bad), want 38 and 0", sum.Packages, sum.Bad)
	}
	// 275 figures in jats/, 10 in jats-with-figures/ plus PMC12419688's
	// figure counted again in its archive.
	if sum.Figures != 286 || sum.Samples != 9 {
		t.Errorf("%d figures → %d samples, want 286 → 9", sum.Figures, sum.Samples)
	}
	wantDrops := map[sample.Reason]int{sample.MissingImage: 274, sample.NoCaption: 2, sample.DuplicateArticle: 1}
	if fmt.Sprint(sum.Dropped) != fmt.Sprint(wantDrops) {
		t.Errorf("dropped %v, want %v", sum.Dropped, wantDrops)
	}
	// koaf197 is CC BY, PMC10802347 CC BY-NC-ND, the Texture XML states no license.
	for g, n := range map[pmc.Group]int{pmc.Commercial: 1, pmc.Noncommercial: 3, pmc.Other: 5} {
		if gs := sum.Groups[g]; gs.Samples != n || len(gs.Shards) != 1 {
			t.Errorf("%s: %d samples in %v, want %d in one shard", g, gs.Samples, gs.Shards, n)
		}
	}
	if checkSizes(t, out) != 9 {
		t.Errorf("sizes.json files do not add up to 9")
	}
	keys := streamKeys(t, out)
	slices.Sort(keys)
	want := []string{
		"PMC10802347-1-nihpp-2023_12_31_573776v1-f0002",
		"PMC10802347-2-nihpp-2023_12_31_573776v1-f0003",
		"PMC10802347-3-nihpp-2023_12_31_573776v1-f0004",
		"PMC12419688-0-koaf197f1",
		"texture-elife-32671-0-fig1", "texture-elife-32671-1-fig2", "texture-elife-32671-2-fig3",
		"texture-elife-32671-3-fig4", "texture-elife-32671-4-fig5",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("keys read back %v,\nwant %v", keys, want)
	}
	man, err := ReadManifest(out)
	if err != nil || !man.Complete || man.Samples != 9 {
		t.Errorf("manifest %+v %v", man, err)
	}
}

func TestFileListDecidesLicense(t *testing.T) {
	withFigs := testshared.Path(t, "data/jats-with-figures")
	tmp := t.TempDir()
	list := filepath.Join(tmp, "oa_file_list.csv")
	csv := "File,Article Citation,Accession ID,Last Updated (YYYY-MM-DD HH:MM:SS),PMID,License\n" +
		"oa_package/e4/9c/PMC12419688.tar.gz,\"Plant Cell. 2025 Aug 9; 37(9):koaf197\",PMC12419688,2025-09-10 00:00:00,40795775,CC BY-NC-SA\n" +
		"oa_package/00/00/PMC10802347.tar.gz,\"bioRxiv. 2024 Jan 3;, 2023.12.31.573776\",PMC10802347,2024-01-25 10:00:00,38260464,CC BY\n"
	if err := os.WriteFile(list, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out")
	sum := run(t, Config{Inputs: []string{withFigs}, Out: out, FileList: list})
	for g, n := range map[pmc.Group]int{pmc.Commercial: 3, pmc.Noncommercial: 1, pmc.Other: 5} {
		if sum.Groups[g].Samples != n {
			t.Errorf("%s: %d samples, want %d", g, sum.Groups[g].Samples, n)
		}
	}
	f, err := os.Open(filepath.Join(out, "noncommercial", "000000.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for s, err := range stream.ReadShard(context.Background(), "x", f) {
		if err != nil {
			t.Fatal(err)
		}
		var r sample.Record
		if err := json.Unmarshal(s.Members["json"], &r); err != nil {
			t.Fatal(err)
		}
		if r.ArticleLicense != "CC BY-NC-SA" || r.ArticleCitation != "Plant Cell. 2025 Aug 9; 37(9):koaf197" {
			t.Errorf("license %q citation %q: the file list's", r.ArticleLicense, r.ArticleCitation)
		}
	}
}

func TestShardBoundsAndDeterminism(t *testing.T) {
	tmp := t.TempDir()
	in := synthCorpus(t, tmp, 12)
	var ref map[string]string
	for _, workers := range []int{1, 4} {
		out := filepath.Join(tmp, fmt.Sprintf("out-%d", workers))
		sum := run(t, Config{Inputs: []string{in}, Out: out, Workers: workers, ShardSamples: 4, Formats: []shardwriter.Format{shardwriter.WebDataset, shardwriter.Parquet}})
		if sum.Figures != 26 || sum.Samples != 24 || sum.Dropped[sample.Duplicate] != 2 {
			t.Fatalf("%d figures → %d samples, dropped %v; want 26 → 24 with 2 duplicates", sum.Figures, sum.Samples, sum.Dropped)
		}
		if sum.Groups[pmc.Noncommercial].Samples != 6 || sum.Groups[pmc.Commercial].Samples != 18 {
			t.Errorf("split %d/%d, want 18 commercial, 6 noncommercial", sum.Groups[pmc.Commercial].Samples, sum.Groups[pmc.Noncommercial].Samples)
		}
		checkSizes(t, out)
		// Bounded shards, and no package split across two.
		lines, err := readJournal(filepath.Join(out, JournalName))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			if l.Shard == nil {
				continue
			}
			if l.Shard.Samples > 4 {
				t.Errorf("shard %s/%d holds %d samples, more than 4", l.Shard.Group, l.Shard.Index, l.Shard.Samples)
			}
			n := 0
			for _, p := range l.Packages {
				n += p.Samples
			}
			if n != l.Shard.Samples {
				t.Errorf("shard %s/%d: packages add up to %d samples, the shard holds %d", l.Shard.Group, l.Shard.Index, n, l.Shard.Samples)
			}
		}
		files := outputFiles(t, out)
		if ref == nil {
			ref = files
			continue
		}
		sameFiles(t, files, ref)
	}
}

// TestResumeAfterCrash cuts the journal after its first shard, as a crash
// would (half a line written, temporary and unrecorded shard files left),
// and checks that rerunning redoes only the lost packages and produces
// exactly the shards of an uninterrupted run.
func TestResumeAfterCrash(t *testing.T) {
	tmp := t.TempDir()
	in := synthCorpus(t, tmp, 12)
	cfg := Config{Inputs: []string{in}, ShardSamples: 3, Workers: 2}

	cfg.Out = filepath.Join(tmp, "ref")
	run(t, cfg)
	want := outputFiles(t, cfg.Out)

	cfg.Out = filepath.Join(tmp, "crash")
	run(t, cfg)
	jpath := filepath.Join(cfg.Out, JournalName)
	lines, err := readJournal(jpath)
	if err != nil {
		t.Fatal(err)
	}
	var kept []byte
	done := 0
	for _, l := range lines {
		b, _ := json.Marshal(l)
		kept = append(append(kept, b...), '\n')
		done += len(l.Packages)
		if l.Shard != nil {
			break
		}
	}
	kept = append(kept, `{"shard":{"group":"commer`...)
	if err := os.WriteFile(jpath, kept, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Out, "commercial", shardwriter.TempPrefix+"000009.tar-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A sizes.json replacement killed before its rename.
	if err := os.WriteFile(filepath.Join(cfg.Out, "commercial", "."+shardwriter.SizesName+".tmp-4242"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}

	sum := run(t, cfg)
	if sum.RunPackages != 12-done {
		t.Errorf("resumed run processed %d packages, want the %d not recorded", sum.RunPackages, 12-done)
	}
	sameFiles(t, outputFiles(t, cfg.Out), want)
	if sum.Samples != 24 || sum.Packages != 12 {
		t.Errorf("resumed summary: %d packages, %d samples", sum.Packages, sum.Samples)
	}
}

// TestInterruptAndResume cancels a run after a few packages, as Ctrl-C
// does: the shards being written are committed, the output is consistent,
// and a second run completes it without redoing anything.
func TestInterruptAndResume(t *testing.T) {
	tmp := t.TempDir()
	in := synthCorpus(t, tmp, 12)
	out := filepath.Join(tmp, "out")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Config{Inputs: []string{in}, Out: out, ShardSamples: 5, Workers: 3,
		Progress: func(p Progress) {
			if p.Done == 5 {
				cancel()
			}
		}}
	sum, err := Run(ctx, cfg)
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want ErrInterrupted wrapping context.Canceled", err)
	}
	if sum.Complete || sum.Packages != 5 {
		t.Errorf("interrupted run: complete %v, %d packages; want false, 5", sum.Complete, sum.Packages)
	}
	first := checkSizes(t, out)
	if first != sum.Samples || first == 0 {
		t.Errorf("after the interruption the shards hold %d samples, the summary says %d", first, sum.Samples)
	}
	if man, err := ReadManifest(out); err != nil || man.Complete {
		t.Errorf("manifest after interruption: %+v, %v", man, err)
	}

	cfg.Progress = nil
	sum = run(t, Config{Inputs: cfg.Inputs, Out: out, ShardSamples: 5, Workers: 3})
	if sum.RunPackages != 7 || sum.Packages != 12 || sum.Samples != 24 {
		t.Errorf("resumed: %d packages this run, %d in all, %d samples; want 7, 12, 24", sum.RunPackages, sum.Packages, sum.Samples)
	}
	if checkSizes(t, out) != 24 {
		t.Errorf("shards after resuming do not hold 24 samples")
	}
	keys := streamKeys(t, out)
	if len(keys) != 24 {
		t.Errorf("%d samples streamed, want 24", len(keys))
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			t.Errorf("key %s written twice", k)
		}
		seen[k] = true
	}
}

func TestBadPackagesAreListed(t *testing.T) {
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in")
	writePackage(t, in, "PMC1", "PMC1", ccBY, []synthFig{{seed: 1, caption: "Good."}})
	// Not gzip at all; a published package cut short; a folder whose XML is broken.
	if err := os.WriteFile(filepath.Join(in, "PMC2.tar.gz"), []byte("this is not a package"), 0o644); err != nil {
		t.Fatal(err)
	}
	real, err := os.ReadFile(testshared.Path(t, "data/jats-with-figures/stencila-PMC12419688/PMC12419688.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "PMC3.tar.gz"), real[:len(real)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(in, "PMC4")
	if err := os.MkdirAll(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "a.nxml"), []byte("<article><front></article>"), 0o644); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(tmp, "out")
	sum := run(t, Config{Inputs: []string{in}, Out: out})
	if sum.Packages != 4 || sum.Bad != 3 || sum.Samples != 1 {
		t.Fatalf("%d packages, %d bad, %d samples; want 4, 3, 1", sum.Packages, sum.Bad, sum.Samples)
	}
	data, err := os.ReadFile(filepath.Join(out, BadName))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 {
		t.Fatalf("%s has %d lines, want 3", BadName, len(lines))
	}
	for i, want := range []string{"PMC2.tar.gz", "PMC3.tar.gz", "a.nxml"} {
		var b BadPackage
		if err := json.Unmarshal([]byte(lines[i]), &b); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.Error, want) {
			t.Errorf("bad package %d: %q, want it to name %s", i, b.Error, want)
		}
	}
	if !strings.Contains(sum.BadPackages[2].Error, "line 1") {
		t.Errorf("XML error %q does not give the line", sum.BadPackages[2].Error)
	}
	// Skipped packages are finished: a rerun does not retry them.
	if again := run(t, Config{Inputs: []string{in}, Out: out}); again.RunPackages != 0 || again.Bad != 3 {
		t.Errorf("rerun processed %d packages, %d bad", again.RunPackages, again.Bad)
	}
}

func TestResumeRefusesOtherFormats(t *testing.T) {
	tmp := t.TempDir()
	in := synthCorpus(t, tmp, 2)
	out := filepath.Join(tmp, "out")
	run(t, Config{Inputs: []string{in}, Out: out})
	_, err := Run(context.Background(), Config{Inputs: []string{in}, Out: out, Formats: []shardwriter.Format{shardwriter.Parquet}})
	if err == nil || !strings.Contains(err.Error(), "use the same flags to resume") {
		t.Errorf("resuming with another format: %v", err)
	}
}

func TestParts(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want Part
		ok   bool
	}{{"3/16", Part{3, 16}, true}, {"0/1", Part{0, 1}, true}, {"16/16", Part{}, false}, {"-1/4", Part{}, false}, {"3", Part{}, false}, {"a/b", Part{}, false}, {"0/0", Part{}, false}, {"0/-1", Part{}, false}} {
		p, err := ParsePart(tc.s)
		if (err == nil) != tc.ok || (tc.ok && p != tc.want) {
			t.Errorf("ParsePart(%q) = %v, %v", tc.s, p, err)
		}
	}
	// Every name lands in exactly one part.
	for i := range 100 {
		name := fmt.Sprintf("PMC%d", i)
		n := 0
		for k := range 4 {
			if (Part{k, 4}).Contains(name) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s is in %d of 4 parts", name, n)
		}
	}
	if (Part{3, 16}).Dir() != "part-00003-of-00016" {
		t.Errorf("dir %s", Part{3, 16}.Dir())
	}
}

// TestSplitRunAndMerge runs a corpus as two parts and merges them: the
// merged dataset equals a single run's, the image shared by packages of
// different parts kept once.
func TestSplitRunAndMerge(t *testing.T) {
	tmp := t.TempDir()
	in := synthCorpus(t, tmp, 12)
	// Two more packages that share an image and fall into different parts.
	var names []string
	for i := 0; len(names) < 2; i++ {
		name := fmt.Sprintf("PMC%d", 5000+i)
		if (Part{len(names), 2}).Contains(name) {
			names = append(names, name)
		}
	}
	for _, name := range names {
		writePackage(t, in, name, name, ccBY, []synthFig{{seed: 999, caption: "Shared across parts."}})
	}
	formats := []shardwriter.Format{shardwriter.WebDataset, shardwriter.Parquet}
	single := run(t, Config{Inputs: []string{in}, Out: filepath.Join(tmp, "single"), ShardSamples: 4, Formats: formats})

	out := filepath.Join(tmp, "split")
	if _, err := Merge(context.Background(), out); err == nil {
		t.Errorf("merging a folder without parts succeeded")
	}
	partSamples := 0
	for i := range 2 {
		s := run(t, Config{Inputs: []string{in}, Out: out, ShardSamples: 4, Formats: formats, Part: Part{i, 2}})
		partSamples += s.Samples
		if i == 0 {
			_, err := Merge(context.Background(), out)
			if err == nil || !strings.Contains(err.Error(), "parts 1 of 2 are missing") {
				t.Errorf("merge with a part missing: %v", err)
			}
		}
	}
	// Each part deduplicates only within itself.
	if partSamples <= single.Samples {
		t.Fatalf("parts hold %d samples, the single run %d: want the cross-part duplicates in both", partSamples, single.Samples)
	}
	merged, err := Merge(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if merged.Samples != single.Samples || merged.Packages != single.Packages || merged.Figures != single.Figures {
		t.Errorf("merged %d samples, %d packages, %d figures; single run %d, %d, %d",
			merged.Samples, merged.Packages, merged.Figures, single.Samples, single.Packages, single.Figures)
	}
	if fmt.Sprint(merged.Dropped) != fmt.Sprint(single.Dropped) {
		t.Errorf("merged drops %v, single run %v", merged.Dropped, single.Dropped)
	}
	if checkSizes(t, out) != single.Samples {
		t.Errorf("merged shards do not hold %d samples", single.Samples)
	}
	mk := streamKeys(t, out)
	sk := streamKeys(t, filepath.Join(tmp, "single"))
	slices.Sort(mk)
	slices.Sort(sk)
	if len(mk) != len(sk) {
		t.Errorf("merged keys %d, single run %d", len(mk), len(sk))
	}
	// Parquet shards are merged alongside.
	for _, g := range pmc.Groups {
		sizes, _ := shardwriter.ReadSizes(filepath.Join(out, string(g)))
		for name, n := range sizes {
			if idx, f, _ := shardwriter.ParseName(name); f == shardwriter.Parquet && sizes[shardwriter.Name(idx, shardwriter.WebDataset)] != n {
				t.Errorf("%s/%s: %d rows, its tar %d samples", g, name, n, sizes[shardwriter.Name(idx, shardwriter.WebDataset)])
			}
		}
	}
	// Merging again gives the same result.
	again, err := Merge(context.Background(), out)
	if err != nil || again.Samples != merged.Samples {
		t.Errorf("second merge: %v, %d samples", err, again.Samples)
	}

	// An incomplete part blocks the merge.
	pdir := filepath.Join(out, Part{1, 2}.Dir())
	man, _ := ReadManifest(pdir)
	man.Complete = false
	if err := writeManifest(pdir, man); err != nil {
		t.Fatal(err)
	}
	if _, err := Merge(context.Background(), out); err == nil || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("merge with an incomplete part: %v", err)
	}
}

// BenchmarkRun measures end-to-end throughput on the real articles: the
// 33 text-only ones and the 4 with figure images.
func BenchmarkRun(b *testing.B) {
	inputs := []string{testshared.Path(b, "data/jats-with-figures"), testshared.Path(b, "data/jats")}
	tmp := b.TempDir()
	packages := 0
	b.ResetTimer()
	for i := range b.N {
		sum, err := Run(context.Background(), Config{Inputs: inputs, Out: filepath.Join(tmp, fmt.Sprint(i))})
		if err != nil {
			b.Fatal(err)
		}
		packages += sum.RunPackages
	}
	b.ReportMetric(float64(packages)/b.Elapsed().Seconds(), "articles/s")
}

// BenchmarkRunSynthetic measures throughput on many small packages with
// images, where per-package overhead and image handling dominate.
func BenchmarkRunSynthetic(b *testing.B) {
	tmp := b.TempDir()
	in := synthCorpus(b, tmp, 200)
	packages := 0
	b.ResetTimer()
	for i := range b.N {
		sum, err := Run(context.Background(), Config{Inputs: []string{in}, Out: filepath.Join(tmp, fmt.Sprint(i))})
		if err != nil {
			b.Fatal(err)
		}
		packages += sum.RunPackages
	}
	b.ReportMetric(float64(packages)/b.Elapsed().Seconds(), "articles/s")
}
