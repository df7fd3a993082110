package jats

import (
	"regexp"
	"strings"
)

// blockElements start and end a block of text: a space separates them from
// their neighbours, since JATS writes <title>A.</title><p>B</p> without
// white space between blocks.
var blockElements = map[string]bool{
	"p": true, "title": true, "label": true, "caption": true, "sec": true,
	"list": true, "list-item": true, "def-list": true, "def-item": true,
	"term": true, "def": true, "table": true, "tr": true, "td": true, "th": true,
	"break": true, "disp-formula": true, "disp-quote": true, "statement": true,
	"attrib": true, "ref": true, "mixed-citation": true, "element-citation": true,
	"nlm-citation": true, "citation": true, "license-p": true, "kwd": true,
	"subject": true, "speech": true, "verse-line": true, "fn": true,
}

// What each collector leaves out, with its content.
var (
	// A figure caption is the figure's own text: eLife nests the captions
	// of its source-data files (supplementary-material) inside it.
	captionSkips = map[string]bool{"supplementary-material": true, "media": true}
	// Footnote markers in titles are not title text.
	titleSkips = map[string]bool{"xref": true, "fn": true}
	// eLife puts the abstract's DOI in an object-id.
	abstractSkips = map[string]bool{"object-id": true}
	// A reference's label ("1.", "[12]") is not part of its citation.
	refSkips = map[string]bool{"label": true}
	// The license URL is kept in License.URL.
	licenseSkips = map[string]bool{"license_ref": true}
	// A paragraph's text excludes floats anchored inside it.
	paraSkips = map[string]bool{"fig": true, "table-wrap": true, "supplementary-material": true, "fig-group": true, "boxed-text": true}
)

// sink collects the text of one element.
type sink struct {
	b     strings.Builder
	depth int             // depth of the element collected
	skip  int             // depth of the left-out element the parser is in, 0 if none
	skips map[string]bool // elements left out
	done  func(string)
	// citationSpacing separates every element inside a citation: references
	// run their parts together (<surname>Smith</surname><given-names>J</given-names>).
	citationSpacing bool
	inCitation      int
}

func (s *sink) open(name string, d int) {
	if s.skip != 0 || d <= s.depth {
		return
	}
	if s.skips[name] {
		s.skip = d
		return
	}
	if s.citationSpacing && (name == "element-citation" || name == "nlm-citation" || name == "mixed-citation" || name == "citation") && s.inCitation == 0 {
		s.inCitation = d
	}
	if blockElements[name] || (s.inCitation != 0 && d > s.inCitation) {
		s.b.WriteByte(' ')
	}
}

func (s *sink) close(name string, d int) {
	if s.skip == d {
		s.skip = 0
		return
	}
	if s.skip != 0 {
		return
	}
	if blockElements[name] || (s.inCitation != 0 && d > s.inCitation) {
		s.b.WriteByte(' ')
	}
	if s.inCitation == d {
		s.inCitation = 0
	}
}

func (s *sink) write(text string) {
	if s.skip == 0 {
		s.b.WriteString(text)
	}
}

// para collects one <p> as a list of segments, keeping the figure xrefs
// apart so that they can be rendered once all figures are known.
type para struct {
	depth    int
	skip     int
	segs     []segment
	cur      strings.Builder
	refDepth int      // depth of the open fig xref, 0 if none
	refRids  []string // its rids
	cites    bool     // the paragraph has a fig xref
}

type segment struct {
	text string
	rids []string // nil for plain text
}

func (pp *para) open(name string, d int) {
	if pp.skip != 0 || d <= pp.depth {
		return
	}
	if paraSkips[name] {
		pp.skip = d
		return
	}
	if blockElements[name] {
		pp.cur.WriteByte(' ')
	}
}

func (pp *para) close(name string, d int) {
	if pp.skip == d {
		pp.skip = 0
		return
	}
	if pp.skip != 0 {
		return
	}
	if pp.refDepth == d {
		pp.segs = append(pp.segs, segment{text: pp.cur.String(), rids: pp.refRids})
		pp.cur.Reset()
		pp.refDepth, pp.refRids = 0, nil
		return
	}
	if blockElements[name] {
		pp.cur.WriteByte(' ')
	}
}

func (pp *para) write(text string) {
	if pp.skip == 0 {
		pp.cur.WriteString(text)
	}
}

// openRef starts a figure xref at depth d; the parser calls it on the
// innermost paragraph only, after open.
func (pp *para) openRef(rids []string, d int) {
	if pp.skip != 0 || pp.refDepth != 0 || len(rids) == 0 {
		return
	}
	pp.flush()
	pp.refDepth, pp.refRids = d, rids
	pp.cites = true
}

func (pp *para) flush() {
	if pp.cur.Len() > 0 {
		pp.segs = append(pp.segs, segment{text: pp.cur.String()})
		pp.cur.Reset()
	}
}

func (pp *para) finish() {
	if pp.refDepth != 0 { // unreachable for well-formed XML
		pp.segs = append(pp.segs, segment{text: pp.cur.String(), rids: pp.refRids})
		pp.cur.Reset()
		pp.refDepth = 0
	}
	pp.flush()
}

// render writes the paragraph with its figure xrefs as tags, their rids
// passed through rewrite.
func (pp *para) render(rewrite func(string) string) string {
	var b strings.Builder
	for _, s := range pp.segs {
		if s.rids == nil {
			b.WriteString(s.text)
			continue
		}
		b.WriteString(`<xref ref-type="fig" rid="`)
		for i, rid := range s.rids {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(escapeAttr(rewrite(rid)))
		}
		b.WriteString(`">`)
		b.WriteString(s.text)
		b.WriteString(`</xref>`)
	}
	return collapse(b.String())
}

func escapeAttr(s string) string {
	return strings.NewReplacer(`&`, "&amp;", `"`, "&quot;", `<`, "&lt;").Replace(s)
}

// altFrame is an open <alternatives>: each child's text is kept apart and
// one is chosen at the end, so that a formula given as both TeX and MathML
// is not written twice.
type altFrame struct {
	depth    int
	children []altChild
}

type altChild struct {
	name string
	text strings.Builder
}

// choose prefers MathML, then TeX (its body, without the \documentclass
// preamble PMC wraps every formula in), then any other textual child.
func (a *altFrame) choose() string {
	for _, c := range a.children {
		if c.name == "math" {
			if s := strings.TrimSpace(c.text.String()); s != "" {
				return s
			}
		}
	}
	for _, c := range a.children {
		if c.name == "tex-math" {
			if s := texBody(c.text.String()); s != "" {
				return s
			}
		}
	}
	for _, c := range a.children {
		if s := strings.TrimSpace(c.text.String()); s != "" {
			return s
		}
	}
	return ""
}

// texBody returns the formula inside a PMC TeX document
// (\documentclass…\begin{document}$$x$$\end{document} gives x).
func texBody(s string) string {
	if i := strings.Index(s, `\begin{document}`); i >= 0 {
		s = s[i+len(`\begin{document}`):]
		if j := strings.Index(s, `\end{document}`); j >= 0 {
			s = s[:j]
		}
	}
	s = strings.TrimSpace(s)
	for _, delim := range []string{"$$", "$"} {
		if len(s) >= 2*len(delim) && strings.HasPrefix(s, delim) && strings.HasSuffix(s, delim) {
			s = strings.TrimSpace(s[len(delim) : len(s)-len(delim)])
			break
		}
	}
	return s
}

var (
	spaceBeforePunct = regexp.MustCompile(` +([,.;:)\]])`)
	spaceAfterOpen   = regexp.MustCompile(`([(\[]) +`)
)

// tidyCitation removes the spaces citation spacing put before punctuation
// and after opening brackets ("Smith J , 2001 ( 3 )" gives "Smith J, 2001 (3)").
func tidyCitation(s string) string {
	return spaceAfterOpen.ReplaceAllString(spaceBeforePunct.ReplaceAllString(s, "$1"), "$1")
}

// collapse replaces every run of white space (Unicode's, so non-breaking
// and thin spaces too) by one space and trims the ends.
func collapse(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
