// Package clean is OpenCLIP's caption cleaning (open_clip/tokenizer.py,
// v2.32.0), shared by every tokenizer that must give OpenCLIP's ids: the
// CLIP BPE tokenizer uses Lower (clean="lower"), the BERT WordPiece tokenizer
// Whitespace (HFTokenizer's default clean="whitespace").
//
//	clean.Whitespace(" it&amp;s  ok ") // "it&s ok"
package clean

import (
	"github.com/bmca/bmca/text/ftfy"
	"github.com/bmca/bmca/text/internal/pyhtml"
	"github.com/bmca/bmca/text/internal/pyuni"
)

// Basic is basic_clean without its final strip (the callers' whitespace
// collapse strips): ftfy.fix_text, then html.unescape twice.
func Basic(text string) string {
	if PlainASCII(text) {
		return text
	}
	return pyhtml.Unescape(pyhtml.Unescape(ftfy.FixText(text)))
}

// Whitespace is _clean_whitespace: basic_clean, then Python's
// " ".join(text.split()).
func Whitespace(text string) string {
	return pyuni.CollapseSpace(Basic(text))
}

// Lower is _clean_lower: Whitespace, then Python's str.lower().
func Lower(text string) string {
	return pyuni.Lower(Whitespace(text))
}

// PlainASCII reports whether neither ftfy nor html.unescape can change
// text: printable ASCII and the whitespace ftfy keeps, no '&'. (CR is left
// out: ftfy turns it into LF, which changes nothing for the tokens but
// keeps Basic exact.) Callers use it to skip Basic on most captions.
func PlainASCII(text string) bool {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c >= 0x7F || c == '&' || c < 0x20 && c != '\t' && c != '\n' && c != '\f' {
			return false
		}
	}
	return true
}
