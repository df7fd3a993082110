// Package jats reads the parts of a JATS (NLM nXML) journal article that a
// figure–caption dataset needs: every <fig> with its label, caption text and
// graphic, the paragraphs that cite each figure, and the article metadata
// (identifiers, title, journal, date, license, keywords, subjects, abstract,
// references). It streams the document with encoding/xml, so an article is
// read in one pass without building a tree.
//
//	art, err := jats.Parse(r)
//	for _, fig := range art.Figures {
//		fmt.Println(fig.Label, fig.Graphic, fig.Caption)
//	}
//
// What counts as a figure is exactly the <fig> element, wherever it occurs
// (body, floats-group, fig-group children such as eLife figure supplements,
// appendices, sub-articles). Captions of <table-wrap>, <supplementary-material>,
// <boxed-text> and <media> are not figures. Text is taken as PMC renders it:
// mixed content (<italic>, <xref>, <sup>, MathML) is kept as its text, block
// elements (<title>, <p>, list items) are separated by a space, and runs of
// white space, non-breaking spaces included, collapse to one space.
package jats

import (
	"path"
	"strings"
	"time"
)

// Article is what Parse extracts from one article. Metadata comes from the
// top-level <front> only; the front-stubs of sub-articles (eLife decision
// letters, author responses) are ignored, while their figures count.
type Article struct {
	// ArticleType is the article-type attribute of <article>
	// ("research-article", "editorial", "news", ...).
	ArticleType string
	// PMCID is the PubMed Central id with its "PMC" prefix ("PMC3166277"),
	// "" when the XML has none (publisher XML such as eLife's).
	PMCID string
	// PMID is the PubMed id, "" when absent.
	PMID string
	// DOI is the article's DOI, "" when absent.
	DOI string
	// Title is the article title as text.
	Title string
	// Journal is the abbreviated journal name PMC citations start with:
	// the nlm-ta journal id, else the iso-abbrev one, else JournalTitle.
	Journal string
	// JournalTitle is the full <journal-title>.
	JournalTitle string
	// Date is the publication date: electronic, else print, else
	// collection, else any other <pub-date>.
	Date Date
	// Volume, Issue, FirstPage, LastPage and ELocationID locate the article
	// in its journal, as in the article's citation.
	Volume, Issue, FirstPage, LastPage, ELocationID string
	// License describes <permissions>/<license>.
	License License
	// Keywords are the <kwd> of every <kwd-group>, in document order.
	Keywords []string
	// Subjects are the <subject> of every <subj-group> in
	// <article-categories>, in document order.
	Subjects []string
	// Abstract is the text of the first <abstract> without an
	// abstract-type (else of the first <abstract>).
	Abstract string
	// References are the entries of the reference lists.
	References []Reference
	// Figures are the <fig> elements in document order.
	Figures []Figure
	// Text is all character data of the document, concatenated without
	// separators, as ElementTree's itertext joins it (BIOMEDICA's
	// article_text).
	Text string
}

// Date is a publication date; Month and Day are 0 when the XML omits them.
type Date struct {
	Year, Month, Day int
}

// IsZero reports whether no year is known.
func (d Date) IsZero() bool { return d.Year == 0 }

// Time returns the date as midnight UTC, taking a missing month or day as 1.
func (d Date) Time() time.Time {
	return time.Date(d.Year, time.Month(max(d.Month, 1)), max(d.Day, 1), 0, 0, 0, 0, time.UTC)
}

// License is what the article says about its license.
type License struct {
	// URL is the license URL: the xlink:href of <license>, else the text of
	// <ali:license_ref>, else a creativecommons.org link in the license text.
	URL string
	// Type is the license-type attribute ("open-access", "cc-by", ...).
	Type string
	// Text is the text of <license> (its <license-p> paragraphs).
	Text string
	// Copyright is the <copyright-statement>; older PLoS articles state
	// their Creative Commons license only there.
	Copyright string
}

// Reference is one entry of a reference list.
type Reference struct {
	// Citation is the text of the reference, its label left out.
	Citation string
	// IDs are its <pub-id> values in document order.
	IDs []PubID
}

// PubID is a typed identifier of a cited work.
type PubID struct {
	Type  string // pub-id-type: "pmid", "doi", "pmcid", ...
	Value string
}

// Figure is one <fig>.
type Figure struct {
	// ID is the fig's id attribute, the target of <xref rid>.
	ID string
	// Label is the <label> text ("Figure 1").
	Label string
	// Caption is the text of the fig's <caption>: title and paragraphs,
	// with nested supplementary-material (eLife source-data notes) left
	// out and formulas kept as text. "" when the fig has no caption.
	Caption string
	// Graphic is the xlink:href of the fig's first <graphic>, "" when it
	// has none. PMC hrefs usually carry no extension ("koaf197f1"); see
	// ImageID.
	Graphic string
	// Context holds the paragraphs that cite the figure through
	// <xref ref-type="fig">, in document order and without repeats. As in
	// BIOMEDICA's image_context, other markup is stripped but the figure
	// xrefs are kept, with their rid rewritten to the cited figures'
	// ImageID: `... shown in <xref ref-type="fig" rid="pone.0046493.g002">Figure 2</xref>.`
	Context []string
}

// ImageID is the figure's image id: the base name of its graphic href
// without an image extension (BIOMEDICA's image_id and image_cluster_id).
func (f Figure) ImageID() string { return ImageID(f.Graphic) }

// imageExtensions are the extensions ImageID strips. Only these count as an
// extension: PMC names such as "pone.0000217.g001" contain dots that are
// part of the name.
var imageExtensions = []string{"jpg", "jpeg", "png", "gif", "tif", "tiff", "webp", "bmp", "eps", "svg"}

// ImageID returns the base name of an href without a known image extension:
// "koaf197f1" stays as is, "fig1.jpg" gives "fig1", "elife-00666-fig1.tif"
// gives "elife-00666-fig1", and "pone.0000217.g001" keeps its dots.
func ImageID(href string) string {
	base := path.Base(strings.ReplaceAll(strings.TrimSpace(href), `\`, "/"))
	if base == "." || base == "/" {
		return ""
	}
	if dot := strings.LastIndexByte(base, '.'); dot > 0 {
		ext := strings.ToLower(base[dot+1:])
		for _, e := range imageExtensions {
			if ext == e {
				return base[:dot]
			}
		}
	}
	return base
}
