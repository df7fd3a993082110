package jats

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// xlinkNS is the XLink namespace of xlink:href.
const xlinkNS = "http://www.w3.org/1999/xlink"

// Parse reads one JATS/NLM article. The error names the line of a syntax
// error, or says that the root element is not <article>.
//
// Named entities are resolved with HTML's table (PMC nXML uses numeric
// references, but hand-made files use &nbsp; and the like); encodings
// other than UTF-8 are accepted when they are ISO-8859-1 or US-ASCII.
func Parse(r io.Reader) (*Article, error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	d.Entity = xml.HTMLEntity
	d.CharsetReader = charsetReader
	p := &parser{}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, _ := d.InputPos()
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				line = se.Line
			}
			return nil, fmt.Errorf("jats: line %d: %w", line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := p.start(t); err != nil {
				return nil, err
			}
		case xml.EndElement:
			p.end()
		case xml.CharData:
			if len(p.stack) > 0 {
				p.chars(t)
			}
		}
	}
	if !p.sawRoot {
		return nil, errors.New("jats: no root element: the document is empty")
	}
	return p.finish(), nil
}

// charsetReader accepts the single-byte encodings old nXML files declare.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "iso-8859-1", "latin1", "latin-1", "us-ascii", "ascii":
		b, err := io.ReadAll(input)
		if err != nil {
			return nil, err
		}
		var out bytes.Buffer
		for _, c := range b {
			out.WriteRune(rune(c))
		}
		return &out, nil
	}
	return nil, fmt.Errorf("unsupported encoding %q (expected UTF-8 or ISO-8859-1)", charset)
}

// parser is the streaming state: the stack of open elements and the text
// collectors open on it.
type parser struct {
	art     Article
	sawRoot bool
	stack   []string        // local names of the open elements
	text    strings.Builder // Article.Text

	sinks []*sink      // open text collectors (title, caption, keywords, ...)
	paras []*para      // open <p> elements, innermost last
	figs  []*figState  // open <fig> elements, innermost last
	alts  []*altFrame  // open <alternatives>, innermost last
	cited []*para      // closed paragraphs that cite a figure
	dates []dateChoice // candidate publication dates
	date  *dateChoice  // the <pub-date> being read
	ref   *Reference   // the <ref> being read

	abstracts []abstractText
	haveTitle bool
	nlmTA     string
	isoAbbrev string
}

type figState struct {
	fig          Figure
	depth        int
	captionDepth int // depth of its <caption> while open, else 0
	haveCaption  bool
}

type dateChoice struct {
	rank int
	date Date
	iso  string
}

type abstractText struct {
	typed bool
	text  string
}

// depth is the depth of the innermost open element (the root is 1).
func (p *parser) depth() int { return len(p.stack) }

// at reports whether the element at depth i (1-based) is name.
func (p *parser) at(i int, name string) bool {
	return i >= 1 && i <= len(p.stack) && p.stack[i-1] == name
}

// parentIs reports whether the parent of the innermost element is name.
func (p *parser) parentIs(name string) bool { return p.at(len(p.stack)-1, name) }

// inArticleMeta reports whether the innermost element lies in the
// top-level article-meta; inJournalMeta likewise for journal-meta.
func (p *parser) inArticleMeta() bool { return p.at(2, "front") && p.at(3, "article-meta") }
func (p *parser) inJournalMeta() bool { return p.at(2, "front") && p.at(3, "journal-meta") }

func attr(t xml.StartElement, local string) string {
	for _, a := range t.Attr {
		if a.Name.Local == local && (a.Name.Space == "" || a.Name.Space == "xlink" || a.Name.Space == xlinkNS) {
			return a.Value
		}
	}
	return ""
}

func hrefAttr(t xml.StartElement) string {
	for _, a := range t.Attr {
		if a.Name.Local == "href" && (a.Name.Space == xlinkNS || a.Name.Space == "xlink") {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

func (p *parser) start(t xml.StartElement) error {
	name := t.Name.Local
	if len(p.stack) == 0 {
		if p.sawRoot {
			return fmt.Errorf("jats: second root element <%s>", name)
		}
		p.sawRoot = true
		if name != "article" {
			return fmt.Errorf("jats: root element is <%s>, expected <article>", name)
		}
		p.art.ArticleType = attr(t, "article-type")
	}
	p.stack = append(p.stack, name)
	d := p.depth()

	if len(p.alts) > 0 {
		a := p.alts[len(p.alts)-1]
		if d == a.depth+1 {
			a.children = append(a.children, altChild{name: name})
		}
	}
	for _, s := range p.sinks {
		s.open(name, d)
	}
	for _, pp := range p.paras {
		pp.open(name, d)
	}

	switch name {
	case "alternatives":
		p.alts = append(p.alts, &altFrame{depth: d})
	case "fig":
		p.figs = append(p.figs, &figState{fig: Figure{ID: attr(t, "id")}, depth: d})
	case "label":
		if f := p.fig(); f != nil && d == f.depth+1 {
			p.collect(d, nil, func(s string) { f.fig.Label = s })
		}
	case "caption":
		if f := p.fig(); f != nil && d == f.depth+1 && !f.haveCaption {
			f.haveCaption = true
			f.captionDepth = d
			p.collect(d, captionSkips, func(s string) { f.fig.Caption = s; f.captionDepth = 0 })
		}
	case "graphic":
		if f := p.fig(); f != nil && f.fig.Graphic == "" && f.captionDepth == 0 {
			f.fig.Graphic = hrefAttr(t)
		}
	case "p":
		p.paras = append(p.paras, &para{depth: d})
	case "xref":
		if n := len(p.paras); n > 0 && attr(t, "ref-type") == "fig" {
			p.paras[n-1].openRef(strings.Fields(attr(t, "rid")), d)
		}
	case "ref":
		p.ref = &Reference{}
		ref := p.ref
		s := p.collect(d, refSkips, func(s string) {
			ref.Citation = tidyCitation(s)
			p.art.References = append(p.art.References, *ref)
			p.ref = nil
		})
		s.citationSpacing = true
	case "pub-id":
		if p.ref != nil {
			ref, typ := p.ref, attr(t, "pub-id-type")
			p.collect(d, nil, func(s string) {
				if s != "" {
					ref.IDs = append(ref.IDs, PubID{Type: typ, Value: s})
				}
			})
		}
	}

	switch {
	case p.inArticleMeta():
		p.startArticleMeta(t, name, d)
	case p.inJournalMeta():
		p.startJournalMeta(t, name, d)
	}
	return nil
}

// startArticleMeta handles the elements of the top-level article-meta.
func (p *parser) startArticleMeta(t xml.StartElement, name string, d int) {
	switch name {
	case "article-id":
		if d == 4 {
			typ := attr(t, "pub-id-type")
			p.collect(d, nil, func(s string) { p.setArticleID(typ, s) })
		}
	case "article-title":
		if d == 5 && p.at(4, "title-group") && !p.haveTitle {
			p.haveTitle = true
			p.collect(d, titleSkips, func(s string) { p.art.Title = s })
		}
	case "subject":
		if p.at(4, "article-categories") {
			p.collect(d, nil, func(s string) {
				if s != "" {
					p.art.Subjects = append(p.art.Subjects, s)
				}
			})
		}
	case "kwd":
		if p.at(4, "kwd-group") {
			p.collect(d, nil, func(s string) {
				if s != "" {
					p.art.Keywords = append(p.art.Keywords, s)
				}
			})
		}
	case "pub-date":
		if d == 4 {
			p.date = &dateChoice{rank: dateRank(t), iso: attr(t, "iso-8601-date")}
		}
	case "year", "month", "day", "season":
		if p.date != nil && p.parentIs("pub-date") {
			dc := p.date
			p.collect(d, nil, func(s string) { dc.set(name, s) })
		}
	case "volume", "issue", "fpage", "lpage", "elocation-id":
		if d == 4 {
			p.collect(d, nil, func(s string) { p.setLocation(name, s) })
		}
	case "license":
		if p.art.License.URL == "" && p.art.License.Text == "" {
			p.art.License.URL = hrefAttr(t)
			p.art.License.Type = attr(t, "license-type")
			p.collect(d, licenseSkips, func(s string) { p.art.License.Text = s })
		}
	case "license_ref":
		if p.art.License.URL == "" {
			p.collect(d, nil, func(s string) {
				if p.art.License.URL == "" {
					p.art.License.URL = s
				}
			})
		}
	case "ext-link":
		if href := hrefAttr(t); p.art.License.URL == "" && strings.Contains(href, "creativecommons.org") && p.within("license") {
			p.art.License.URL = href
		}
	case "copyright-statement":
		if p.art.License.Copyright == "" {
			p.collect(d, nil, func(s string) { p.art.License.Copyright = s })
		}
	case "abstract":
		typed := attr(t, "abstract-type") != ""
		p.collect(d, abstractSkips, func(s string) { p.abstracts = append(p.abstracts, abstractText{typed, s}) })
	}
}

// startJournalMeta handles the elements of the top-level journal-meta.
func (p *parser) startJournalMeta(t xml.StartElement, name string, d int) {
	switch name {
	case "journal-id":
		switch attr(t, "journal-id-type") {
		case "nlm-ta":
			p.collect(d, nil, func(s string) {
				if p.nlmTA == "" {
					p.nlmTA = s
				}
			})
		case "iso-abbrev":
			p.collect(d, nil, func(s string) {
				if p.isoAbbrev == "" {
					p.isoAbbrev = s
				}
			})
		}
	case "journal-title":
		p.collect(d, nil, func(s string) {
			if p.art.JournalTitle == "" {
				p.art.JournalTitle = s
			}
		})
	}
}

// within reports whether an element named name is open.
func (p *parser) within(name string) bool {
	for _, n := range p.stack {
		if n == name {
			return true
		}
	}
	return false
}

func (p *parser) fig() *figState {
	if n := len(p.figs); n > 0 {
		return p.figs[n-1]
	}
	return nil
}

func (p *parser) setArticleID(typ, v string) {
	switch typ {
	case "pmc", "pmcid":
		if p.art.PMCID == "" && v != "" {
			p.art.PMCID = NormalizePMCID(v)
		}
	case "pmid":
		if p.art.PMID == "" {
			p.art.PMID = v
		}
	case "doi":
		if p.art.DOI == "" {
			p.art.DOI = v
		}
	}
}

// NormalizePMCID returns a PMC id with its "PMC" prefix: "3166277" and
// "pmc3166277" both give "PMC3166277".
func NormalizePMCID(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 3 && strings.EqualFold(v[:3], "PMC") {
		return "PMC" + v[3:]
	}
	if v == "" {
		return ""
	}
	return "PMC" + v
}

func (p *parser) setLocation(name, v string) {
	a := &p.art
	for _, f := range []struct {
		name string
		dst  *string
	}{{"volume", &a.Volume}, {"issue", &a.Issue}, {"fpage", &a.FirstPage}, {"lpage", &a.LastPage}, {"elocation-id", &a.ELocationID}} {
		if f.name == name && *f.dst == "" {
			*f.dst = v
		}
	}
}

// collect opens a text collector for the element at depth d; done receives
// its collapsed text when the element closes. Elements named in skips are
// left out with their content.
func (p *parser) collect(d int, skips map[string]bool, done func(string)) *sink {
	s := &sink{depth: d, skips: skips, done: done}
	p.sinks = append(p.sinks, s)
	return s
}

func (p *parser) chars(b []byte) {
	p.text.Write(b)
	if n := len(p.alts); n > 0 {
		a := p.alts[n-1]
		if k := len(a.children); k > 0 && p.depth() > a.depth {
			a.children[k-1].text.Write(b)
		}
		return
	}
	p.emit(string(b))
}

// emit sends text to every open collector and paragraph.
func (p *parser) emit(s string) {
	for _, sk := range p.sinks {
		sk.write(s)
	}
	for _, pp := range p.paras {
		pp.write(s)
	}
}

func (p *parser) end() {
	d := p.depth()
	name := p.stack[d-1]

	switch name {
	case "alternatives":
		if n := len(p.alts); n > 0 && p.alts[n-1].depth == d {
			a := p.alts[n-1]
			p.alts = p.alts[:n-1]
			if s := a.choose(); s != "" {
				if len(p.alts) > 0 {
					// Nested alternatives: hand the choice to the outer one.
					outer := p.alts[len(p.alts)-1]
					if k := len(outer.children); k > 0 {
						outer.children[k-1].text.WriteString(s)
					}
				} else {
					p.emit(s)
				}
			}
		}
	case "pub-date":
		if p.date != nil && d == 4 && p.inArticleMeta() {
			p.dates = append(p.dates, *p.date)
			p.date = nil
		}
	}

	// Close collectors and paragraphs opened by this element, innermost
	// first, and let the others see the element end.
	kept := p.sinks[:0]
	var closed []*sink
	for _, s := range p.sinks {
		if s.depth == d {
			closed = append(closed, s)
			continue
		}
		s.close(name, d)
		kept = append(kept, s)
	}
	p.sinks = kept
	for _, s := range closed {
		s.done(collapse(s.b.String()))
	}

	if n := len(p.paras); n > 0 && p.paras[n-1].depth == d {
		pp := p.paras[n-1]
		p.paras = p.paras[:n-1]
		pp.finish()
		if pp.cites {
			p.cited = append(p.cited, pp)
		}
	}
	for _, pp := range p.paras {
		pp.close(name, d)
	}

	if name == "fig" {
		if n := len(p.figs); n > 0 && p.figs[n-1].depth == d {
			p.art.Figures = append(p.art.Figures, p.figs[n-1].fig)
			p.figs = p.figs[:n-1]
		}
	}
	p.stack = p.stack[:d-1]
}

// finish resolves what needs the whole document: the journal name, the
// date, the abstract and the figure contexts.
func (p *parser) finish() *Article {
	a := &p.art
	a.Text = p.text.String()
	switch {
	case p.nlmTA != "":
		a.Journal = p.nlmTA
	case p.isoAbbrev != "":
		a.Journal = p.isoAbbrev
	default:
		a.Journal = a.JournalTitle
	}
	best := -1
	for i, dc := range p.dates {
		dc.fillFromISO()
		p.dates[i] = dc
		if dc.date.Year != 0 && (best < 0 || dc.rank < p.dates[best].rank) {
			best = i
		}
	}
	if best >= 0 {
		a.Date = p.dates[best].date
	}
	for _, ab := range p.abstracts {
		if !ab.typed {
			a.Abstract = ab.text
			break
		}
	}
	if a.Abstract == "" && len(p.abstracts) > 0 {
		a.Abstract = p.abstracts[0].text
	}
	p.resolveContext()
	return a
}

// resolveContext renders the citing paragraphs, now that every figure's
// graphic is known, and attaches them to the figures they cite.
func (p *parser) resolveContext() {
	figs := p.art.Figures
	byID := make(map[string]int, len(figs))
	for i, f := range figs {
		if f.ID != "" {
			if _, dup := byID[f.ID]; !dup {
				byID[f.ID] = i
			}
		}
	}
	rewrite := func(rid string) string {
		if i, ok := byID[rid]; ok && figs[i].Graphic != "" {
			return figs[i].ImageID()
		}
		return rid
	}
	seen := make([]map[string]bool, len(figs))
	for _, pp := range p.cited {
		text := pp.render(rewrite)
		for _, seg := range pp.segs {
			for _, rid := range seg.rids {
				i, ok := byID[rid]
				if !ok {
					continue
				}
				if seen[i] == nil {
					seen[i] = map[string]bool{}
				}
				if !seen[i][text] {
					seen[i][text] = true
					figs[i].Context = append(figs[i].Context, text)
				}
			}
		}
	}
}

// dateRank orders <pub-date> kinds: electronic publication first, then
// print, then the rest.
func dateRank(t xml.StartElement) int {
	kind := attr(t, "pub-type")
	if kind == "" {
		kind = attr(t, "date-type")
		if kind == "pub" && attr(t, "publication-format") == "print" {
			kind = "ppub"
		}
	}
	switch kind {
	case "epub", "pub", "epub-ppub", "epubr":
		return 0
	case "ppub":
		return 1
	case "collection":
		return 2
	case "pmc-release":
		return 4
	}
	return 3
}

var months = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
var seasons = map[string]int{"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}

func (dc *dateChoice) set(field, v string) {
	n, err := strconv.Atoi(v)
	switch field {
	case "year":
		if err == nil {
			dc.date.Year = n
		}
	case "month":
		if err == nil && n >= 1 && n <= 12 {
			dc.date.Month = n
		} else if len(v) >= 3 {
			dc.date.Month = months[strings.ToLower(v[:3])]
		}
	case "day":
		if err == nil && n >= 1 && n <= 31 {
			dc.date.Day = n
		}
	case "season":
		words := strings.FieldsFunc(v, func(r rune) bool { return r == '-' || r == ' ' || r == '/' })
		if dc.date.Month == 0 && len(words) > 0 {
			word := strings.ToLower(words[0])
			if m, ok := seasons[word]; ok {
				dc.date.Month = m
			} else if len(word) >= 3 {
				dc.date.Month = months[word[:3]]
			}
		}
	}
}

// fillFromISO fills a date that has no <year> from iso-8601-date.
func (dc *dateChoice) fillFromISO() {
	if dc.date.Year != 0 || dc.iso == "" {
		return
	}
	parts := strings.SplitN(dc.iso, "-", 3)
	vals := make([]int, len(parts))
	for i, s := range parts {
		n, err := strconv.Atoi(s)
		if err != nil {
			return
		}
		vals[i] = n
	}
	dc.date.Year = vals[0]
	if len(vals) > 1 && vals[1] >= 1 && vals[1] <= 12 {
		dc.date.Month = vals[1]
	}
	if len(vals) > 2 && vals[2] >= 1 && vals[2] <= 31 {
		dc.date.Day = vals[2]
	}
}
