// Package ftfy is a Go port of ftfy 6.3.1's fix_text with its default
// configuration, the first step of OpenCLIP's caption cleaning. A
// tokenizer that skips it gives different ids for about one caption in
// fifteen (curly quotes, mojibake, C1 controls, ligatures, fullwidth forms).
//
//	ftfy.FixText("donâ€™t") // "don't"
//	ftfy.FixText("ﬁbrosis")  // "fibrosis"
//
// Every default fixer is implemented, in ftfy's order, and repeated until
// the text stops changing: unescape_html (disabled from the first line
// holding '<' on), fix_encoding (the badness heuristic; the latin-1,
// sloppy-windows-125x, iso-8859-2, macroman and cp437 re-decodings;
// restore_byte_a0, replace_lossy_sequences, decode_inconsistent_utf8,
// utf-8-variants), fix_c1_controls, fix_latin_ligatures,
// fix_character_width, uncurl_quotes, fix_line_breaks, fix_surrogates (a
// no-op: Go strings hold no surrogate code points), remove_terminal_escapes,
// remove_control_chars and NFC normalisation. Character data comes from the
// reference Python (see text/internal/gen).
//
// Deliberate differences, beyond what any real text reaches: the "repeat
// until nothing changes" loops stop after maxRounds rounds and the
// mojibake fixer has a work budget proportional to the text (Python would
// loop forever on a cycle), and invalid UTF-8 in the input is read as
// U+FFFD per bad byte (a Python str cannot hold it).
package ftfy

import (
	"strings"
	"unicode/utf8"

	"github.com/bmca/bmca/text/internal/pyhtml"
	"github.com/bmca/bmca/text/internal/pyuni"
)

const (
	// maxDecodeLength is ftfy's max_decode_length: segments are cut after
	// this many code points even without a line break.
	maxDecodeLength = 1_000_000
	// maxRounds bounds every "repeat until nothing changes" loop.
	maxRounds = 32
)

// FixText is ftfy.fix_text(text) with the default TextFixerConfig.
func FixText(text string) string {
	if isPlainASCII(text) {
		return text
	}
	if !utf8.ValidString(text) {
		text = validUTF8(text)
	}
	unescape := true // unescape_html="auto"
	var out strings.Builder
	for pos := 0; pos < len(text); {
		end := strings.IndexByte(text[pos:], '\n') + 1
		if end == 0 {
			end = len(text) - pos
		}
		end = pos + capCodePoints(text[pos:pos+end], maxDecodeLength)
		segment := text[pos:end]
		// "auto": a literal '<' means this is HTML, whose entities must
		// stay; ftfy keeps the setting off for the rest of the text.
		if unescape && strings.IndexByte(segment, '<') >= 0 {
			unescape = false
		}
		fixed := fixSegment(segment, unescape)
		if pos == 0 && end == len(text) {
			return fixed
		}
		out.WriteString(fixed)
		pos = end
	}
	return out.String()
}

// isPlainASCII reports whether no fixer can change text: it is printable
// ASCII plus the controls ftfy keeps as they are (tab, LF, FF; CR is out
// because fix_line_breaks turns it into LF), with no '&' that could start
// an entity.
func isPlainASCII(text string) bool {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= 0x7F || c == '&' || c < 0x20 && c != '\t' && c != '\n' && c != '\f' {
			return false
		}
	}
	return true
}

// validUTF8 replaces every byte that is not part of valid UTF-8 by U+FFFD.
func validUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// capCodePoints returns the byte length of the first max code points of s.
func capCodePoints(s string, max int) int {
	if len(s) <= max {
		return len(s)
	}
	n := 0
	for i := range s {
		if n == max {
			return i
		}
		n++
	}
	return len(s)
}

// fixSegment is ftfy's fix_and_explain on one segment: every fixer in
// order, repeated until a whole round changes nothing.
func fixSegment(text string, unescape bool) string {
	for range maxRounds {
		orig := text
		if unescape {
			text = unescapeHTML(text)
		}
		text = fixEncoding(text)
		text = fixC1Controls(text)
		text = translate(text, ligatures, isLigatureCandidate)
		text = translate(text, widthMap, isWidthCandidate)
		text = uncurlQuotes(text)
		text = fixLineBreaks(text)
		text = removeTerminalEscapes(text)
		text = removeControlChars(text)
		text = pyuni.NFC(text)
		if text == orig {
			break
		}
	}
	return text
}

// unescapeHTML is ftfy's fixes.unescape_html: only references of the form
// &#?[0-9A-Za-z]{1,24}; are decoded, named ones from the HTML5 table (or
// upper-cased names of common ones), numeric ones only when Python's
// html.unescape consumes them whole.
func unescapeHTML(text string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(text); {
		amp := strings.IndexByte(text[i:], '&')
		if amp < 0 {
			break
		}
		i += amp
		end, repl, ok := entityAt(text, i)
		if !ok {
			i++
			continue
		}
		b.WriteString(text[last:i])
		b.WriteString(repl)
		last, i = end, end
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

// entityAt decodes the reference starting with the '&' at text[i], if it
// is one ftfy decodes; end is the byte after its ';'.
func entityAt(text string, i int) (end int, repl string, ok bool) {
	j := i + 1
	if j < len(text) && text[j] == '#' {
		j++
	}
	k := j
	for k < len(text) && k-j <= 24 && isASCIIAlnum(text[k]) {
		k++
	}
	if k == j || k-j > 24 || k >= len(text) || text[k] != ';' {
		return 0, "", false
	}
	ref := text[i : k+1]
	if v, ok := pyhtml.Lookup(ref[1:]); ok {
		return k + 1, v, true
	}
	if v, ok := upperEntities[ref[1:]]; ok {
		return k + 1, v, true
	}
	if strings.HasPrefix(ref, "&#") {
		// Only when html.unescape consumes the whole reference.
		if v := pyhtml.Unescape(ref); strings.IndexByte(v, ';') < 0 {
			return k + 1, v, true
		}
	}
	return 0, "", false
}

func isASCIIAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// fixC1Controls is ftfy's fixes.fix_c1_controls: C1 controls read as the
// windows-1252 characters of the same byte (sloppily: the five undefined
// bytes stay as they are).
func fixC1Controls(text string) string {
	if !hasC1(text) {
		return text
	}
	var b strings.Builder
	b.Grow(len(text) + 8)
	for _, r := range text {
		if 0x80 <= r && r <= 0x9F {
			r = charmapDecode[sloppy1252][r]
		}
		b.WriteRune(r)
	}
	return b.String()
}

// hasC1 reports whether text holds a code point in U+0080..U+009F
// (UTF-8 C2 80..C2 9F).
func hasC1(text string) bool {
	for i := 0; i+1 < len(text); i++ {
		if text[i] == 0xC2 && text[i+1] >= 0x80 && text[i+1] <= 0x9F {
			return true
		}
	}
	return false
}

func isLigatureCandidate(r rune) bool {
	return 0x132 <= r && r <= 0x1F3 || 0xFB00 <= r && r <= 0xFB06
}

func isWidthCandidate(r rune) bool {
	return r == 0x3000 || 0xFF01 <= r && r <= 0xFFEF
}

// translate is Python's str.translate with a table whose keys all satisfy
// candidate (a cheap filter that lets most texts through untouched).
func translate(text string, table map[rune]string, candidate func(rune) bool) string {
	found := false
	for i := 0; i < len(text) && !found; i++ {
		// Every key is in U+0132..U+01F3 (lead bytes C4..C7), U+3000 (E3)
		// or U+FB00..U+FFEF (EF): other bytes need no decoding.
		if c := text[i]; 0xC4 <= c && c <= 0xC7 || c == 0xE3 || c == 0xEF {
			r, _ := utf8.DecodeRuneInString(text[i:])
			if candidate(r) {
				_, found = table[r]
			}
		}
	}
	if !found {
		return text
	}
	var b strings.Builder
	b.Grow(len(text) + 8)
	for _, r := range text {
		if v, ok := table[r]; ok {
			b.WriteString(v)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// uncurlQuotes is ftfy's fixes.uncurl_quotes: U+02BC and U+2018..U+201B
// become ', U+201C..U+201F become ".
func uncurlQuotes(text string) string {
	if !strings.ContainsRune(text, 0x2BC) && !containsRange(text, 0x2018, 0x201F) {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	for _, r := range text {
		switch {
		case r == 0x2BC || 0x2018 <= r && r <= 0x201B:
			b.WriteByte('\'')
		case 0x201C <= r && r <= 0x201F:
			b.WriteByte('"')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// containsRange reports whether text holds a code point in lo..hi, both in
// U+2000..U+2FFF (three-byte UTF-8 starting E2 80..E2 BF).
func containsRange(text string, lo, hi rune) bool {
	for i := 0; i+2 < len(text); i++ {
		if text[i] == 0xE2 {
			r, _ := utf8.DecodeRuneInString(text[i:])
			if lo <= r && r <= hi {
				return true
			}
		}
	}
	return false
}

// fixLineBreaks is ftfy's fixes.fix_line_breaks: CRLF, CR, U+2028, U+2029
// and U+0085 all become LF.
func fixLineBreaks(text string) string {
	if strings.IndexByte(text, '\r') < 0 && !containsRange(text, 0x2028, 0x2029) && !strings.Contains(text, "\u0085") {
		return text
	}
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	text = strings.ReplaceAll(text, "\u2028", "\n")
	text = strings.ReplaceAll(text, "\u2029", "\n")
	return strings.ReplaceAll(text, "\u0085", "\n")
}

// removeTerminalEscapes is ftfy's fixes.remove_terminal_escapes: it deletes
// ESC [ (decimal digits or ';')* letter, where a decimal digit is any
// Unicode Nd, as Python's \d is.
func removeTerminalEscapes(text string) string {
	if strings.IndexByte(text, 0x1B) < 0 {
		return text
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(text); i++ {
		if text[i] != 0x1B || i+1 >= len(text) || text[i+1] != '[' {
			continue
		}
		j := i + 2
		for j < len(text) {
			r, n := utf8.DecodeRuneInString(text[j:])
			if r != ';' && pyuni.Flags(r)&pyuni.FlagDecimal == 0 {
				break
			}
			j += n
		}
		if j < len(text) && isASCIILetter(text[j]) {
			b.WriteString(text[last:i])
			last = j + 1
			i = j
		}
	}
	if last == 0 {
		return text
	}
	b.WriteString(text[last:])
	return b.String()
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// removeControlChars is ftfy's fixes.remove_control_chars.
func removeControlChars(text string) string {
	found := false
	for _, r := range text {
		if isControl(r) {
			found = true
			break
		}
	}
	if !found {
		return text
	}
	var b strings.Builder
	b.Grow(len(text))
	for _, r := range text {
		if !isControl(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isControl(r rune) bool {
	if r < 0x20 {
		return r != '\t' && r != '\n' && r != '\f' && r != '\r'
	}
	return r == 0x7F || r >= 0x206A && controlChars[r]
}
