package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/bmca/bmca/data/preprocess"
	"github.com/bmca/bmca/text/tokenizer"
)

// biomedicaJSON is a sample's json member shaped like BIOMEDICA's: the
// fields filters read, plus a large article text with escapes and nested
// structures that the scanner must skip.
func biomedicaJSON(license, cluster, panel string, primary []string) []byte {
	article := strings.Repeat(`Results \"quoted\" {not json} [brackets] \\ end. `, 20000) // ~1 MB
	m := map[string]any{
		"article_text":            article,
		"image_set":               []map[string]any{{"caption": "x}", "hash": "ab"}},
		"article_license":         license,
		"image_label_id":          cluster,
		"image_panel_type":        panel,
		"image_primary_label":     primary,
		"image_secondary_label":   []string{"bar plot"},
		"article_reference_count": 12,
		"image_hash":              "deadbeef",
	}
	b, _ := json.Marshal(m)
	return b
}

func TestReadMetaSkipsLargeValues(t *testing.T) {
	raw := biomedicaJSON("CC BY", "17", "single", []string{"Microscopy", "Plots and Charts"})
	want := map[string]bool{"article_license": true, "image_primary_label": true, "image_hash": true, "article_reference_count": true, "missing": true}
	meta, err := readMeta(strings.NewReader(string(raw)), want)
	if err != nil {
		t.Fatal(err)
	}
	if string(meta["article_license"]) != `"CC BY"` || string(meta["image_primary_label"]) != `["Microscopy","Plots and Charts"]` ||
		string(meta["article_reference_count"]) != "12" || len(meta) != 4 {
		t.Errorf("meta %v", meta)
	}
	for _, bad := range []string{`{"a": "unterminated`, `[1,2]`, `{"a" 1}`, `{"a": {"b": [1, 2}`} {
		if _, err := readMeta(strings.NewReader(bad), map[string]bool{"a": true}); err == nil {
			t.Errorf("readMeta(%q) accepted", bad)
		}
	}
}

// metaDataset writes one shard of samples with BIOMEDICA-like metadata.
func metaDataset(t *testing.T) (path string, meta map[string][4]string) {
	dir := t.TempDir()
	licenses := []string{"CC BY", "CC BY-NC", "CC0", "custom"}
	panels := []string{"single", "multiple"}
	primaries := [][]string{{"Clinical Imaging"}, {"Plots and Charts"}, {"Microscopy", "Tables"}}
	meta = map[string][4]string{}
	var members []member
	for i := range 48 {
		key := fmt.Sprintf("s%03d", i)
		lic, cl, pa, pr := licenses[i%4], fmt.Sprint(i%3), panels[i%2], primaries[i%3]
		meta[key] = [4]string{lic, cl, pa, strings.Join(pr, "|")}
		members = append(members,
			member{name: key + ".jpg", data: pngBytes(t, i, testImageSize)},
			member{name: key + ".json", data: biomedicaJSON(lic, cl, pa, pr)},
			member{name: key + ".txt", data: []byte("figure " + key)})
	}
	return writeShard(t, dir, "meta.tar", members), meta
}

func TestFilters(t *testing.T) {
	path, meta := metaDataset(t)
	cases := []struct {
		name   string
		filter Filter
		keep   func(m [4]string) bool
		reason Reason
	}{
		{"commercial subset", Filter{Licenses: []string{"commercial"}}, func(m [4]string) bool { return m[0] == "CC BY" || m[0] == "CC0" }, ReasonLicense},
		{"other subset", Filter{Licenses: []string{"other"}}, func(m [4]string) bool { return m[0] == "custom" }, ReasonLicense},
		{"concept filter", Filter{IncludePrimary: []string{"clinical imaging", "Microscopy"}}, func(m [4]string) bool { return !strings.Contains(m[3], "Plots") }, ReasonLabel},
		{"exclude tables", Filter{ExcludePrimary: []string{"Tables"}}, func(m [4]string) bool { return !strings.Contains(m[3], "Tables") }, ReasonLabel},
		{"single panels", Filter{PanelTypes: []string{"single"}}, func(m [4]string) bool { return m[2] == "single" }, ReasonPanel},
		{"cluster weights", Filter{ClusterWeights: map[string]float64{"0": 0, "1": 1}, DefaultClusterWeight: 1}, func(m [4]string) bool { return m[1] != "0" }, ReasonClusterWeight},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(Config{Shards: []string{path}, BatchSize: 5, Workers: 2, Filter: c.filter, MetaFields: []string{"image_hash"}},
				Deterministic(preprocess.OpenAI(testImageSize).Apply), tokenizer.NewByteLevel(24))
			if err != nil {
				t.Fatal(err)
			}
			got := collectOnce(t, s)
			var want []string
			for _, k := range slices.Sorted(maps.Keys(meta)) {
				if c.keep(meta[k]) {
					want = append(want, k)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("kept %v, want %v", got, want)
			}
			if n := s.Stats().Filtered[c.reason]; n != int64(len(meta)-len(want)) {
				t.Errorf("filtered[%s] = %d, want %d (stats %+v)", c.reason, n, len(meta)-len(want), s.Stats())
			}
		})
	}
	t.Run("cluster cap", func(t *testing.T) {
		s, err := New(Config{Shards: []string{path}, BatchSize: 4, Filter: Filter{ClusterCap: 5}},
			Deterministic(preprocess.OpenAI(testImageSize).Apply), tokenizer.NewByteLevel(24))
		if err != nil {
			t.Fatal(err)
		}
		got := collectOnce(t, s)
		per := map[string]int{}
		for _, k := range got {
			per[meta[k][1]]++
		}
		if len(got) != 15 || per["0"] != 5 || per["1"] != 5 || per["2"] != 5 || s.Stats().Filtered[ReasonClusterCap] != 33 {
			t.Errorf("kept %d per cluster %v, stats %+v", len(got), per, s.Stats())
		}
	})
	t.Run("missing metadata", func(t *testing.T) {
		dir := t.TempDir()
		p := writeShard(t, dir, "nometa.tar", goodSample(t, "k", 1, testImageSize)) // json lacks the field
		s, err := New(Config{Shards: []string{p, path}, BatchSize: 4, Filter: Filter{PanelTypes: []string{"single"}}},
			Deterministic(preprocess.OpenAI(testImageSize).Apply), tokenizer.NewByteLevel(24))
		if err != nil {
			t.Fatal(err)
		}
		collectOnce(t, s)
		if s.Stats().Filtered[ReasonNoMeta] != 1 {
			t.Errorf("stats %+v, want one no_meta", s.Stats())
		}
	})
}

// modeStream builds a stream over 6 shards of 10 samples.
func modeStream(t *testing.T, shards []string, cfg Config) *Stream {
	t.Helper()
	cfg.Shards = shards
	s, err := New(cfg, Deterministic(preprocess.OpenAI(testImageSize).Apply), tokenizer.NewByteLevel(24))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMixingModes(t *testing.T) {
	shards, keys := writeDataset(t, t.TempDir(), 6, 10, testImageSize)
	base := Config{BatchSize: 5, ShuffleBuffer: 8, Seed: 3, Workers: 2}

	t.Run("readers interleave deterministically and resume", func(t *testing.T) {
		cfg := base
		cfg.Readers = 3
		ref := take(t, modeStream(t, shards, cfg), Position{}, 24) // 2 epochs of 12
		var epoch0 []string
		for _, b := range ref[:12] {
			epoch0 = append(epoch0, b.Keys...)
		}
		if !slices.Equal(slices.Sorted(slices.Values(epoch0)), keys) {
			t.Fatalf("epoch 0 is not a permutation of the data")
		}
		cfg.Workers = 1
		sameBatches(t, take(t, modeStream(t, shards, cfg), Position{}, 24), ref)
		sameBatches(t, take(t, modeStream(t, shards, cfg), ref[6].Next, 8), ref[7:15])
	})
	t.Run("ranks split the shards", func(t *testing.T) {
		seen := map[string]int{}
		for rank := range 2 {
			cfg := base
			cfg.Rank, cfg.WorldSize = rank, 2
			for _, b := range take(t, modeStream(t, shards, cfg), Position{}, 6) {
				for _, k := range b.Keys {
					seen[k]++
				}
			}
		}
		if len(seen) != 60 {
			t.Errorf("two ranks saw %d distinct samples of 60", len(seen))
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("sample %s seen %d times by the two ranks", k, n)
			}
		}
	})
	t.Run("resampled epochs of fixed size", func(t *testing.T) {
		cfg := base
		cfg.Resampled, cfg.SamplesPerEpoch, cfg.Readers = true, 25, 2
		ref := take(t, modeStream(t, shards, cfg), Position{}, 15) // 5 batches per epoch
		for i, b := range ref {
			if b.Epoch != i/5 {
				t.Fatalf("batch %d in epoch %d, want %d", i, b.Epoch, i/5)
			}
		}
		if ref[4].Next != (Position{Epoch: 1}) {
			t.Errorf("end of epoch 0 points at %+v", ref[4].Next)
		}
		sameBatches(t, take(t, modeStream(t, shards, cfg), ref[6].Next, 6), ref[7:13])
	})
	t.Run("weights steer resampling", func(t *testing.T) {
		cfg := base
		cfg.Resampled, cfg.SamplesPerEpoch = true, 200
		cfg.Weights = []float64{9, 1}
		// Two sources: a glob of three shards, weight 9 each, and one shard, weight 1.
		s := modeStream(t, []string{filepath.Join(filepath.Dir(shards[0]), "shard-00000[0-2].tar") + "::" + shards[3]}, cfg)
		counts := map[string]int{}
		for _, b := range take(t, s, Position{}, 40) {
			for _, k := range b.Keys {
				counts[k[:3]]++
			}
		}
		// Weight 9 on each of s00..s02 against 1 on s03.
		if counts["s03"]*5 > counts["s00"]+counts["s01"]+counts["s02"] || counts["s04"] != 0 {
			t.Errorf("draws per shard %v", counts)
		}
	})
	t.Run("samples per epoch repeats passes", func(t *testing.T) {
		cfg := base
		cfg.SamplesPerEpoch = 150
		got := take(t, modeStream(t, shards, cfg), Position{}, 30)
		if got[29].Next != (Position{Epoch: 1}) || got[28].Epoch != 0 {
			t.Errorf("batch 29 next %+v", got[29].Next)
		}
	})
	t.Run("invalid combinations", func(t *testing.T) {
		for _, c := range []Config{
			{Resampled: true},
			{Weights: []float64{1}},
			{Rank: 2, WorldSize: 2},
			{Format: "csv"},
		} {
			c.Shards, c.BatchSize = shards, 1
			if _, err := New(c, Deterministic(preprocess.OpenAI(4).Apply), tokenizer.NewByteLevel(8)); err == nil {
				t.Errorf("config %+v accepted", c)
			}
		}
	})
}

func TestExpandBiomedica(t *testing.T) {
	pats, err := ExpandBiomedica("biomedica:noncommercial,other@https://mirror.example/b24m/")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"https://mirror.example/b24m/noncommercial/{000000..000559}.tar", "https://mirror.example/b24m/other/{000000..000114}.tar"}
	if !slices.Equal(pats, want) {
		t.Errorf("patterns %v", pats)
	}
	shards, err := expandSources([]string{"biomedica:all"}, nil)
	if err != nil || len(shards) != 2537 || shards[0].url != BiomedicaBase+"/commercial/000000.tar" || shards[2536].url != BiomedicaBase+"/other/000114.tar" {
		t.Errorf("biomedica:all gives %d shards (%v)", len(shards), err)
	}
	if _, err := ExpandBiomedica("biomedica:public"); err == nil {
		t.Error("unknown subset accepted")
	}
}

// countingReaderAt counts bytes read, to check column projection.
type countingReaderAt struct {
	f *os.File
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.f.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

func TestParquet(t *testing.T) {
	type image struct {
		Bytes []byte `parquet:"bytes,optional"`
		Path  string `parquet:"path,optional"`
	}
	type row struct {
		Key     string   `parquet:"__key__"`
		Image   *image   `parquet:"image,optional"`
		Caption string   `parquet:"caption"`
		License string   `parquet:"article_license"`
		Primary []string `parquet:"image_primary_label,list"`
		Text    string   `parquet:"article_text"`
	}
	var rows []row
	for i := range 40 {
		rows = append(rows, row{
			Key: fmt.Sprintf("p%03d", i), Image: &image{Bytes: pngBytes(t, i, testImageSize), Path: "x.png"},
			Caption: "figure " + fmt.Sprintf("p%03d", i), License: []string{"CC BY", "CC BY-NC"}[i%2],
			Primary: []string{"Microscopy"}, Text: strings.Repeat("article ", 20000),
		})
	}
	path := filepath.Join(t.TempDir(), "shard.parquet")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := parquet.NewGenericWriter[row](f, parquet.MaxRowsPerRowGroup(16),
		parquet.SkipPageBounds("image", "bytes"), parquet.SkipPageStatistics("image", "bytes"))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s, err := New(Config{Shards: []string{path}, BatchSize: 6, Workers: 2, Filter: Filter{Licenses: []string{"commercial"}}},
		Deterministic(preprocess.OpenAI(testImageSize).Apply), tokenizer.NewByteLevel(24))
	if err != nil {
		t.Fatal(err)
	}
	got := collectOnce(t, s)
	var want []string
	for i := 0; i < 40; i += 2 {
		want = append(want, fmt.Sprintf("p%03d", i))
	}
	if !slices.Equal(got, want) || s.Stats().Filtered[ReasonLicense] != 20 {
		t.Errorf("kept %v, stats %+v", got, s.Stats())
	}

	// Projection: reading image, caption, key and license leaves the
	// article text (most of the file) unread.
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	st, _ := fh.Stat()
	cr := &countingReaderAt{f: fh}
	n := 0
	err = readParquet(context.Background(), path, cr, st.Size(), ParquetColumns{}, map[string]bool{"article_license": true, "image_primary_label": true}, 0, func(sm Sample) bool {
		if len(sm.Members["jpg"]) == 0 || !strings.HasPrefix(string(sm.Members["txt"]), "figure") || string(sm.Meta["image_primary_label"]) != `["Microscopy"]` {
			t.Fatalf("row %d: members %v meta %v", n, slices.Collect(maps.Keys(sm.Members)), sm.Meta)
		}
		n++
		return true
	})
	if err != nil || n != 40 {
		t.Fatalf("read %d rows: %v", n, err)
	}
	if read := cr.n.Load(); read > st.Size()/4 {
		t.Errorf("read %d of %d bytes: the article_text column was not skipped", read, st.Size())
	}
	_ = io.EOF
}
