package sample

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/image/tiff"

	"github.com/bmca/bmca/data/phash"
	"github.com/bmca/bmca/etl/jats"
	"github.com/bmca/bmca/etl/pmc"
	"github.com/bmca/bmca/internal/testshared"
)

func openPackage(t *testing.T, rel string, kind pmc.Kind, name string) (*pmc.Package, *jats.Article) {
	t.Helper()
	p, err := pmc.Open(pmc.Source{Path: testshared.Path(t, rel), Kind: kind, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	a, err := jats.Parse(bytes.NewReader(p.XML))
	if err != nil {
		t.Fatal(err)
	}
	return p, a
}

// jsonKeys returns the top-level keys of a JSON object in order.
func jsonKeys(t *testing.T, data []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %v", err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// TestBuildMissingImage: PMC10802347 has 4 figures and its F1 image is
// missing (only the .gif thumbnail came with the package).
func TestBuildMissingImage(t *testing.T) {
	p, a := openPackage(t, "data/jats-with-figures/pubmed-client-PMC10802347/PMC10802347", pmc.Dir, "PMC10802347")
	res, err := Build(a, p, Options{PackageName: p.Name})
	if err != nil {
		t.Fatal(err)
	}
	if res.Figures != 4 || len(res.Samples) != 3 || res.Dropped[MissingImage] != 1 || len(res.Dropped) != 1 {
		t.Fatalf("%d figures, %d samples, dropped %v; want 4, 3, 1 missing image", res.Figures, len(res.Samples), res.Dropped)
	}
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), "nihpp-2023.12.31.573776v1-f0001") {
		t.Errorf("errors %v, want one naming the missing graphic", res.Errors)
	}
	if res.Article != "PMC10802347" || res.License != "CC BY-NC-ND" || res.Group != pmc.Noncommercial {
		t.Errorf("article %s license %s group %s", res.Article, res.License, res.Group)
	}
	s := res.Samples[0]
	if s.Key != "PMC10802347-1-nihpp-2023_12_31_573776v1-f0002" {
		t.Errorf("key %q", s.Key)
	}
	file, err := os.ReadFile(testshared.Path(t, "data/jats-with-figures/pubmed-client-PMC10802347/PMC10802347/nihpp-2023.12.31.573776v1-f0002.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.JPEG, file) || s.Hash != sha256.Sum256(file) || s.Width != 720 || s.Height != 446 {
		t.Errorf("the JPEG is not kept byte for byte (%d bytes, %dx%d)", len(s.JPEG), s.Width, s.Height)
	}
	if !strings.HasPrefix(s.Caption, "Cell-autonomous regulation of choline and purine nucleotide metabolites by SLC25A48. A. Expression of SLC25A48") {
		t.Errorf("caption %.100q", s.Caption)
	}

	if got := jsonKeys(t, s.JSON); !slices.Equal(got, slices.Concat(FieldNames, ExtensionFieldNames)) || len(FieldNames) != 25 {
		t.Fatalf("JSON keys %v,\nwant BIOMEDICA's 25 %v, then bmca's %v", got, FieldNames, ExtensionFieldNames)
	}
	var r Record
	if err := json.Unmarshal(s.JSON, &r); err != nil {
		t.Fatal(err)
	}
	if r.ImageFileName != "nihpp-2023.12.31.573776v1-f0002.jpg" || r.ImageClusterID != "nihpp-2023.12.31.573776v1-f0002" ||
		r.ImageHash != hex.EncodeToString(s.Hash[:]) || r.ImageSize != [2]int{720, 446} {
		t.Errorf("image fields %+v", r)
	}
	// image_phash is the hash the contamination check would compute from
	// the jpg member.
	if want, err := phash.FromEncoded(file); err != nil || want.Flat || r.ImagePHash != want.String() || s.PHash != r.ImagePHash {
		t.Errorf("image_phash %q (sample %q), want %v (%v)", r.ImagePHash, s.PHash, want, err)
	}
	if r.ArticleAccessionID != "PMC10802347" || r.ArticleJournal != "bioRxiv" || r.ArticleLicense != "CC BY-NC-ND" ||
		r.ArticleDate != "1704067200" || r.ArticleTitle != a.Title || r.ArticleText != a.Text {
		t.Errorf("article fields: %s %s %s %s", r.ArticleAccessionID, r.ArticleJournal, r.ArticleLicense, r.ArticleDate)
	}
	if r.ArticleCitation != "bioRxiv. 2024 Jan 1; 2023.12.31.573776" {
		t.Errorf("citation %q", r.ArticleCitation)
	}
	if r.ArticleReferenceCount != 49 || len(r.ArticleReferenceIDs) != 49 || r.ArticleReferenceIDs[0].ArticleIDList[0] != "26168012" {
		t.Errorf("references: %d, first %+v", r.ArticleReferenceCount, r.ArticleReferenceIDs[0])
	}
	if len(r.ImageSet) != 3 || r.ImageSet[0].ImagePath != "PMC10802347/nihpp-2023.12.31.573776v1-f0002.jpg" {
		t.Errorf("image_set %+v", r.ImageSet)
	}
	// image_context is keyed by image id, F1 included: its paragraphs
	// exist even though its image does not.
	ctx := r.ImageContext[r.ImageClusterID]
	if len(ctx) == 0 || !strings.Contains(ctx[0], `<xref ref-type="fig" rid="nihpp-2023.12.31.573776v1-f0002">`) {
		t.Errorf("context of F2: %q", ctx)
	}
	if len(r.ImageContext) != 4 {
		t.Errorf("image_context has %d figures, want 4", len(r.ImageContext))
	}
	for _, f := range []any{r.ImagePrimaryLabel, r.ImageSecondaryLabel, r.ArticleMeshTerms, r.ArticleReferenceList} {
		if f == nil {
			t.Errorf("a list field decodes as null: %s", s.JSON[:200])
		}
	}
}

func TestBuildWithFileList(t *testing.T) {
	p, a := openPackage(t, "data/jats-with-figures/stencila-PMC12419688/PMC12419688.tar.gz", pmc.Archive, "PMC12419688")
	entry := &pmc.Entry{AccessionID: "PMC12419688", Citation: "Plant Cell. 2025 Aug 9; 37(9):koaf197", License: "CC BY-NC"}
	res, err := Build(a, p, Options{PackageName: p.Name, Entry: entry})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Samples) != 1 || res.License != "CC BY-NC" || res.Group != pmc.Noncommercial {
		t.Fatalf("%d samples, license %s → %s; the file list's license must win over the XML's CC BY", len(res.Samples), res.License, res.Group)
	}
	var r Record
	if err := json.Unmarshal(res.Samples[0].JSON, &r); err != nil {
		t.Fatal(err)
	}
	if r.ArticleCitation != entry.Citation || r.ArticleJournal != "Plant Cell" || r.ImageSize != [2]int{750, 495} {
		t.Errorf("citation %q journal %q size %v", r.ArticleCitation, r.ArticleJournal, r.ImageSize)
	}
}

// fakeImages serves synthetic image files.
type fakeImages map[string][]byte

func (f fakeImages) Resolve(href string) (string, bool) {
	for _, n := range []string{href, href + ".jpg", href + ".png"} {
		if _, ok := f[n]; ok {
			return n, true
		}
	}
	return "", false
}

func (f fakeImages) ReadFile(name string) ([]byte, error) { return f[name], nil }

func encode(t *testing.T, img image.Image, enc func(*bytes.Buffer, image.Image) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := enc(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestBuildImageVariants(t *testing.T) {
	transparent := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	transparent.Set(5, 5, color.NRGBA{255, 0, 0, 255}) // the rest is fully transparent
	grey := image.NewGray(image.Rect(0, 0, 64, 48))
	pal := image.NewPaletted(image.Rect(0, 0, 32, 32), []color.Color{color.Black, color.White})
	pngEnc := func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) }
	files := fakeImages{
		"alpha.png":  encode(t, transparent, pngEnc),
		"grey.tif":   encode(t, grey, func(b *bytes.Buffer, m image.Image) error { return tiff.Encode(b, m, nil) }),
		"anim.gif":   encode(t, pal, func(b *bytes.Buffer, m image.Image) error { return gif.Encode(b, m, nil) }),
		"tiny.png":   encode(t, image.NewGray(image.Rect(0, 0, 20, 300)), pngEnc),
		"broken.jpg": {0xff, 0xd8, 0xff, 0xe0, 0, 0},
		"eps.jpg":    []byte("%!PS-Adobe-3.0 EPSF"),
	}
	figs := []jats.Figure{
		{ID: "a", Caption: "alpha", Graphic: "alpha.png"},
		{ID: "b", Caption: "grey tiff", Graphic: "grey.tif"},
		{ID: "c", Caption: "gif named by the href", Graphic: "anim.gif"},
		{ID: "d", Caption: "20 px wide", Graphic: "tiny.png"},
		{ID: "e", Caption: "truncated", Graphic: "broken"},
		{ID: "f", Caption: "not an image", Graphic: "eps"},
		{ID: "g", Caption: "", Graphic: "alpha.png"},
		{ID: "h", Caption: "no graphic"},
		{ID: "i", Caption: "absent", Graphic: "nowhere"},
	}
	res, err := Build(&jats.Article{Figures: figs}, files, Options{PackageName: "pkg.v2"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[Reason]int{TooSmall: 1, Undecodable: 2, NoCaption: 1, NoGraphic: 1, MissingImage: 1}
	if fmt.Sprint(res.Dropped) != fmt.Sprint(want) || len(res.Samples) != 3 {
		t.Fatalf("dropped %v, %d samples; want %v and 3 samples", res.Dropped, len(res.Samples), want)
	}
	if res.Article != "pkg.v2" || res.Samples[0].Key != "pkg_v2-0-alpha" {
		t.Errorf("article %q, key %q: without a PMCID the package name keys the samples, dots replaced", res.Article, res.Samples[0].Key)
	}
	for i, s := range res.Samples {
		img, err := jpeg.Decode(bytes.NewReader(s.JPEG))
		if err != nil {
			t.Fatalf("sample %s: converted image does not decode as JPEG: %v", s.Key, err)
		}
		if b := img.Bounds(); b.Dx() != s.Width || b.Dy() != s.Height {
			t.Errorf("sample %d: %v, recorded %dx%d", i, b, s.Width, s.Height)
		}
		if s.Hash != sha256.Sum256(files[[]string{"alpha.png", "grey.tif", "anim.gif"}[i]]) {
			t.Errorf("sample %d: the hash is not that of the source file", i)
		}
		// The perceptual hash is the jpg member's, which the contamination
		// check would otherwise decode, not the source file's.
		var r Record
		if err := json.Unmarshal(s.JSON, &r); err != nil {
			t.Fatal(err)
		}
		if want, err := phash.FromEncoded(s.JPEG); err != nil || r.ImagePHash != want.String() || s.PHash != r.ImagePHash {
			t.Errorf("sample %d: image_phash %q (sample %q), want %v (%v)", i, r.ImagePHash, s.PHash, want, err)
		}
	}
	// Transparent pixels become white, not black.
	img, _ := jpeg.Decode(bytes.NewReader(res.Samples[0].JPEG))
	if r, g, b, _ := img.At(30, 20).RGBA(); r>>8 < 240 || g>>8 < 240 || b>>8 < 240 {
		t.Errorf("transparent pixel → (%d,%d,%d), want white", r>>8, g>>8, b>>8)
	}
	if _, ok := img.(*image.Gray); ok {
		t.Errorf("colour image written as grey")
	}
	if grey, _ := jpeg.Decode(bytes.NewReader(res.Samples[1].JPEG)); grey.ColorModel() != color.GrayModel {
		t.Errorf("grey TIFF → %T, want a grey JPEG", grey)
	}
}

// TestConvertRealPalettePNG converts the BiomedCLIP example chart, an
// 8-bit palette PNG.
func TestConvertRealPalettePNG(t *testing.T) {
	data, err := os.ReadFile(testshared.Path(t, "data/images/biomedclip/covid_line_chart.png"))
	if err != nil {
		t.Fatal(err)
	}
	f, cfg, err := Probe(data)
	if err != nil || f != PNG || cfg.Width != 298 || cfg.Height != 169 {
		t.Fatalf("Probe: %s %dx%d %v", f, cfg.Width, cfg.Height, err)
	}
	jpg, err := ToJPEG(data, f, cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(jpg))
	if err != nil || img.Bounds().Dx() != 298 || img.Bounds().Dy() != 169 {
		t.Fatalf("converted: %v %v", img.Bounds(), err)
	}
	src, _ := png.Decode(bytes.NewReader(data))
	// Quality 95 keeps every pixel close to the original.
	var worst int
	for y := 0; y < 169; y += 7 {
		for x := 0; x < 298; x += 7 {
			r1, g1, b1, _ := src.At(x, y).RGBA()
			r2, g2, b2, _ := img.At(x, y).RGBA()
			for _, d := range []int{int(r1>>8) - int(r2>>8), int(g1>>8) - int(g2>>8), int(b1>>8) - int(b2>>8)} {
				worst = max(worst, d, -d)
			}
		}
	}
	if worst > 60 {
		t.Errorf("largest channel error %d after conversion", worst)
	}
	// A real JPEG is kept as is, with verification on.
	photo, err := os.ReadFile(testshared.Path(t, "data/images/biomedclip/brain_MRI.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	f, cfg, _ = Probe(photo)
	if out, err := ToJPEG(photo, f, cfg, true); err != nil || !bytes.Equal(out, photo) {
		t.Errorf("a valid JPEG was rewritten (%v)", err)
	}
}

func TestCitation(t *testing.T) {
	for _, tc := range []struct {
		art  jats.Article
		want string
	}{
		{jats.Article{Journal: "Breast Cancer Res", Date: jats.Date{Year: 2001, Month: 11, Day: 2}, Volume: "3", Issue: "1", FirstPage: "55", LastPage: "60"}, "Breast Cancer Res. 2001 Nov 2; 3(1):55-60"},
		{jats.Article{Journal: "PLoS One", Date: jats.Date{Year: 2012, Month: 9}, Volume: "7", Issue: "9", ELocationID: "e46493"}, "PLoS One. 2012 Sep; 7(9):e46493"},
		{jats.Article{}, ""},
	} {
		if got := Citation(&tc.art); got != tc.want {
			t.Errorf("Citation = %q, want %q", got, tc.want)
		}
	}
	// Without an XML date, the date comes from the citation as BIOMEDICA reads it.
	if got := date(&jats.Article{}, "Breast Cancer Res. 2001 Nov 2; 3(1):55-60"); got != "1004659200" {
		t.Errorf("date from citation %s, want 1004659200 (2001-11-02 UTC)", got)
	}
	if got := journal(&jats.Article{}, "Breast Cancer Res. 2001 Nov 2; 3(1):55-60"); got != "Breast Cancer Res" {
		t.Errorf("journal from citation %q", got)
	}
}

func TestKey(t *testing.T) {
	if k := Key("PMC1790863", 2, "pone.0000217.g003"); k != "PMC1790863-2-pone_0000217_g003" {
		t.Errorf("key %q", k)
	}
	if k := filepath.Base(Key("a/b c", 0, "")); k != "a_b_c-0" {
		t.Errorf("key %q", k)
	}
}
