package contamination

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bmca/bmca/data/phash"
	"github.com/bmca/bmca/data/stream"
	"github.com/bmca/bmca/eval/tasks"
	"golang.org/x/image/draw"
)

// scene draws a 256×192 image of random soft blobs on a gradient: structured
// like a photograph or figure (so its perceptual hash means something) and
// different for every seed.
func scene(seed uint64) *image.RGBA {
	if img, ok := scenes.Load(seed); ok {
		return img.(*image.RGBA) // callers only read it
	}
	img := drawScene(seed)
	scenes.Store(seed, img)
	return img
}

// scenes memoises scene: the planted case is built by many tests.
var scenes sync.Map

func drawScene(seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 99))
	const w, h = 256, 192
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	type blob struct{ x, y, r, cr, cg, cb float64 }
	var blobs []blob
	for range 6 {
		blobs = append(blobs, blob{rng.Float64() * w, rng.Float64() * h, 15 + rng.Float64()*50, rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255})
	}
	gx, gy := rng.Float64()*100, rng.Float64()*100
	for y := range h {
		for x := range w {
			r, g, b := gx*float64(x)/w, gy*float64(y)/h, 60.0
			for _, bl := range blobs {
				d := math.Hypot(float64(x)-bl.x, float64(y)-bl.y)
				k := math.Exp(-d * d / (2 * bl.r * bl.r))
				r, g, b = r+(bl.cr-r)*k, g+(bl.cg-g)*k, b+(bl.cb-b)*k
			}
			img.Set(x, y, color.RGBA{uint8(r), uint8(g), uint8(b), 255})
		}
	}
	return img
}

func encodePNG(t *testing.T, img image.Image, level png.CompressionLevel) []byte {
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: level}).Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image, q int) []byte {
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func decode(t testing.TB, data []byte) image.Image {
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func resize(img image.Image, f float64) image.Image {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, int(float64(b.Dx())*f), int(float64(b.Dy())*f)))
	draw.BiLinear.Scale(out, out.Bounds(), img, b, draw.Src, nil)
	return out
}

type member struct {
	name string
	data []byte
}

func writeTar(t testing.TB, path string, members []member) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Name: m.name, Mode: 0o644, Size: int64(len(m.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// planted is a constructed case: an evaluation task of ten images, and
// training shards holding copies of five of them, changed in the ways
// contamination happens, among thirty unrelated images.
type planted struct {
	dir, suite string
	want       map[string]string   // eval key → match kind
	shards     map[string][]member // file name → members
}

// plantCase builds the case; with storePHash every training image's json
// carries its perceptual hash, as bmca's ETL writes it.
func plantCase(t *testing.T, storePHash bool) planted {
	dir := t.TempDir()
	p := planted{dir: dir, want: map[string]string{}}
	var rows []string
	eval := map[string][]byte{}
	for i := range 10 {
		img := scene(uint64(i))
		name := fmt.Sprintf("eval%02d.png", i)
		data := encodePNG(t, img, png.BestSpeed)
		if i%2 == 1 {
			name = fmt.Sprintf("eval%02d.jpg", i)
			data = encodeJPEG(t, img, 92)
		}
		eval[name] = data
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, fmt.Sprintf("%s,%d", name, i%2))
	}
	if err := os.WriteFile(filepath.Join(dir, "test.csv"), []byte("path,label\n"+strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.suite = filepath.Join(dir, "suite.yaml")
	if err := os.WriteFile(p.suite, []byte(`tasks:
  - {name: planted, kind: zeroshot_classification, format: csv, data: [test.csv], classes: [a, b], templates: ["{c}"]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// Training data: unrelated images around the planted copies.
	var shard0, shard1 []member
	for i := range 30 {
		m := member{fmt.Sprintf("other%02d.jpg", i), encodeJPEG(t, scene(uint64(1000+i)), 75)}
		if i%2 == 0 {
			shard0 = append(shard0, m)
		} else {
			shard1 = append(shard1, m)
		}
	}
	// The same file.
	shard0 = append(shard0, member{"copy.png", eval["eval00.png"]})
	p.want["eval00.png"] = tasks.MatchExactFile
	// The same pixels in another file.
	shard1 = append(shard1, member{"resaved.png", encodePNG(t, decode(t, eval["eval02.png"]), png.NoCompression)})
	p.want["eval02.png"] = tasks.MatchExactPixels
	// Re-encoded at a lower JPEG quality.
	shard1 = append(shard1, member{"requality.jpg", encodeJPEG(t, decode(t, eval["eval01.jpg"]), 40)})
	p.want["eval01.jpg"] = tasks.MatchNear
	// Resized to 60% and re-encoded.
	shard0 = append(shard0, member{"resized.jpg", encodeJPEG(t, resize(decode(t, eval["eval04.png"]), 0.6), 75)})
	p.want["eval04.png"] = tasks.MatchNear
	// Re-encoded (other bytes), but the json hash names the eval file: as
	// bmca's shards record the figure file a sample was made from.
	sum := sha256.Sum256(eval["eval03.jpg"])
	shard1 = append(shard1, member{"hashed.jpg", encodeJPEG(t, resize(decode(t, eval["eval03.jpg"]), 0.5), 50)},
		member{"hashed.json", []byte(`{"image_file_name": "f3.jpg", "image_hash": "` + hex.EncodeToString(sum[:]) + `", "article_text": "…"}`)})
	p.want["eval03.jpg"] = tasks.MatchExactFile
	p.shards = map[string][]member{"train-000.tar": shard0, "train-001.tar": shard1}
	for name, members := range p.shards {
		if storePHash {
			members = withStoredPHash(t, members)
			p.shards[name] = members
		}
		writeTar(t, filepath.Join(dir, name), members)
	}
	return p
}

// withStoredPHash adds to each image member's json (a new one, next to
// it, when it has none) the image's perceptual hash as bmca's ETL stores it.
func withStoredPHash(t testing.TB, members []member) []member {
	hasJSON := map[string]bool{}
	hashes := map[string]string{}
	for _, m := range members {
		key, ext, _ := strings.Cut(m.name, ".")
		switch ext {
		case "json":
			hasJSON[key] = true
		case "txt":
		default:
			h, err := phash.FromEncoded(m.data)
			if err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
			hashes[key] = fmt.Sprintf(`"%s": %q`, phash.Field, h.String())
		}
	}
	var out []member
	for _, m := range members {
		key, ext, _ := strings.Cut(m.name, ".")
		field, ok := hashes[key]
		switch {
		case ok && ext == "json":
			out = append(out, member{m.name, append(append(slices.Clone(m.data[:len(m.data)-1]), ", "+field...), '}')})
		case ok && ext != "txt" && !hasJSON[key]:
			out = append(out, m, member{key + ".json", []byte("{" + field + "}")})
		default:
			out = append(out, m)
		}
	}
	return out
}

// TestPlanted plants known evaluation images in training shards — the same
// file, the same pixels re-saved, a JPEG re-encoded at another quality, a
// resized copy, a re-encoded copy named by the json hash field — among
// unrelated images, and expects exactly those found, each as what it is,
// on every path a training image's hashes take: decoded; read from the
// json (image_phash, as bmca's ETL writes it); computed and cached, then
// read from the cache.
func TestPlanted(t *testing.T) {
	exactOnly := map[string]string{"eval00.png": tasks.MatchExactFile, "eval03.jpg": tasks.MatchExactFile}
	for _, tc := range []struct {
		name        string
		maxDistance int
		storePHash  bool
		cache       bool
	}{
		{"decoded", DefaultMaxDistance, false, false},
		{"stored phash", DefaultMaxDistance, true, false},
		{"cached", DefaultMaxDistance, false, true},
		{"exact only", -1, false, false},
		{"exact only cached", -1, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := plantCase(t, tc.storePHash)
			want := p.want
			if tc.maxDistance < 0 {
				want = exactOnly
			}
			var cache *HashCache
			if tc.cache {
				cache = NewHashCache(filepath.Join(t.TempDir(), "train-hashes"))
			}
			passes := 1
			if tc.cache {
				passes = 2 // the first fills the cache, the second reads it
			}
			for pass := range passes {
				idx, stats := scanPlanted(t, p, tc.maxDistance, ScanOptions{Workers: 2, Cache: cache})
				checkPlanted(t, idx, want, tc.maxDistance)
				if stats.Shards != 2 || stats.Images != 35 || stats.Samples != 35 || stats.Undecodable != 0 {
					t.Errorf("pass %d: stats %+v", pass, stats)
				}
				decoded, stored, cached := stats.Perceptual, stats.Stored, stats.CachedShards
				switch {
				case tc.maxDistance < 0 && pass == 0:
					if decoded != 0 || stored != 0 || cached != 0 {
						t.Errorf("exact only: %d decoded, %d stored, %d cached shards", decoded, stored, cached)
					}
				case tc.storePHash:
					if decoded != 0 || stored != 35 {
						t.Errorf("stored hashes: %d images decoded, %d hashes read; want 0 and 35", decoded, stored)
					}
				case pass == 0:
					if decoded != 35 || stored != 0 || cached != 0 || (tc.cache && stats.CacheWrites != 2) {
						t.Errorf("first pass: %d decoded, %d stored, %d cached shards, %d cache writes", decoded, stored, cached, stats.CacheWrites)
					}
				default:
					if decoded != 0 || cached != 2 || stats.Bytes != 0 || stats.CacheWrites != 0 {
						t.Errorf("cached pass: %d decoded, %d cached shards, %d bytes hashed, %d cache writes; want 0, 2, 0, 0",
							decoded, cached, stats.Bytes, stats.CacheWrites)
					}
				}
			}
		})
	}
}

// scanPlanted indexes the planted case's suite and scans its shards.
func scanPlanted(t *testing.T, p planted, maxDistance int, opts ScanOptions) (*Index, Stats) {
	t.Helper()
	suite, err := tasks.LoadSuite(p.suite)
	if err != nil {
		t.Fatal(err)
	}
	idx := NewIndex(maxDistance)
	absent, err := idx.AddSuite(context.Background(), suite, nil, nil)
	if err != nil || len(absent) != 0 {
		t.Fatalf("AddSuite: %v, absent %v", err, absent)
	}
	var last Stats
	opts.Progress = func(s Stats) { last = s }
	if opts.Warn == nil {
		opts.Warn = func(err error) { t.Errorf("warning: %v", err) }
	}
	stats, err := idx.Scan(context.Background(), stream.Config{Shards: []string{filepath.Join(p.dir, "train-{000..001}.tar")}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if last != stats {
		t.Errorf("stats %+v, last progress %+v", stats, last)
	}
	return idx, stats
}

// checkPlanted compares the report with the planted copies.
func checkPlanted(t *testing.T, idx *Index, want map[string]string, maxDistance int) {
	t.Helper()
	o := idx.Reports()["planted"]
	got := map[string]string{}
	for _, m := range o.Matches {
		got[m.Key] = m.Kind
		if m.TrainShard == "" || m.TrainKey == "" || m.Kind == tasks.MatchNear && m.Distance > maxDistance {
			t.Errorf("match %+v", m)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("found %v\nwant  %v", got, want)
	}
	count := func(kind string) int {
		n := 0
		for _, k := range want {
			if k == kind {
				n++
			}
		}
		return n
	}
	if o.Checked != 10 || o.TrainImages != 35 || o.ExactFile != count(tasks.MatchExactFile) || o.ExactPixels != count(tasks.MatchExactPixels) ||
		o.Near != count(tasks.MatchNear) || o.MaxDistance != max(maxDistance, -1) {
		t.Errorf("report %+v", o)
	}
	examples := make([]int, 0)
	for _, m := range o.Matches {
		examples = append(examples, m.Example)
		if want := fmt.Sprintf("eval%02d", m.Example); !strings.HasPrefix(m.Key, want) {
			t.Errorf("match %s has example index %d", m.Key, m.Example)
		}
	}
	if !slices.IsSorted(examples) {
		t.Errorf("matches not in example order: %v", examples)
	}
}

// TestScanErrors: a missing shard stops the scan (a report that skipped
// training data would understate the overlap).
func TestScanErrors(t *testing.T) {
	p := plantCase(t, false)
	suite, _ := tasks.LoadSuite(p.suite)
	idx := NewIndex(DefaultMaxDistance)
	if _, err := idx.AddSuite(context.Background(), suite, nil, nil); err != nil {
		t.Fatal(err)
	}
	_, err := idx.Scan(context.Background(), stream.Config{Shards: []string{filepath.Join(p.dir, "train-000.tar"), filepath.Join(p.dir, "missing.tar")}}, ScanOptions{})
	if err == nil || !strings.Contains(err.Error(), "missing.tar") {
		t.Errorf("missing shard: %v", err)
	}
	if _, err := NewIndex(8).Scan(context.Background(), stream.Config{Shards: []string{filepath.Join(p.dir, "none-*.tar")}}, ScanOptions{}); err == nil {
		t.Error("no shards accepted")
	}
}

// TestPixelHash: the same pixels hash the same whatever the image type; a
// changed pixel or size does not.
func TestPixelHash(t *testing.T) {
	rgb := scene(7)
	n := image.NewNRGBA(rgb.Bounds())
	var gray image.Image = image.NewGray(rgb.Bounds())
	g := gray.(*image.Gray)
	for y := range rgb.Bounds().Dy() {
		for x := range rgb.Bounds().Dx() {
			c := rgb.RGBAAt(x, y)
			n.SetNRGBA(x, y, color.NRGBA{c.R, c.G, c.B, 255})
			g.SetGray(x, y, color.Gray{c.G})
		}
	}
	viaPNG := decode(t, encodePNG(t, rgb, png.BestSpeed))
	if PixelHash(rgb) != PixelHash(n) || PixelHash(rgb) != PixelHash(viaPNG) {
		t.Error("RGBA, NRGBA and a PNG of the same pixels hash differently")
	}
	grayRGB := image.NewRGBA(g.Bounds())
	for y := range g.Bounds().Dy() {
		for x := range g.Bounds().Dx() {
			v := g.GrayAt(x, y).Y
			grayRGB.SetRGBA(x, y, color.RGBA{v, v, v, 255})
		}
	}
	if PixelHash(g) != PixelHash(grayRGB) {
		t.Error("a grey image and its RGB copy hash differently")
	}
	n.SetNRGBA(3, 4, color.NRGBA{1, 2, 3, 255})
	if PixelHash(rgb) == PixelHash(n) {
		t.Error("a changed pixel hashes the same")
	}
	if PixelHash(rgb) == PixelHash(rgb.SubImage(image.Rect(0, 0, 255, 192))) {
		t.Error("a cropped image hashes the same")
	}
}
