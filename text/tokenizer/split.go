package tokenizer

import (
	"strings"
	"unicode/utf8"

	"github.com/bmca/bmca/text/internal/pyuni"
)

// nextPretoken finds the next match of OpenCLIP's split pattern
//
//	<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//
// (the `regex` module, IGNORECASE) in the cleaned, lower-cased text s at or
// after byte i, as regex.findall does: alternatives are tried in order at
// each position, and a position where none matches is skipped. It returns
// the match's bounds, or start == len(s) when there is none.
//
// Character classes come from the reference Python (pyuni.Flags). Under
// IGNORECASE 'ſ' (U+017F) also matches the 's' of the literal
// alternatives; nothing else that survives lower-casing does.
func nextPretoken(s string, i int) (start, end int) {
	for i < len(s) {
		c := s[i]
		switch c {
		case '<':
			if n := literalPrefix(s[i:], sotText); n > 0 {
				return i, i + n
			}
			if n := literalPrefix(s[i:], eotText); n > 0 {
				return i, i + n
			}
		case '\'':
			for _, suffix := range contractions {
				if n := literalPrefix(s[i+1:], suffix); n > 0 {
					return i, i + 1 + n
				}
			}
		}
		f, size := flagsAt(s, i)
		switch {
		case f&pyuni.FlagLetter != 0:
			return i, runOf(s, i+size, pyuni.FlagLetter)
		case f&pyuni.FlagNumber != 0:
			return i, i + size // one number character: "123" is three tokens
		case f&pyuni.FlagOther != 0:
			return i, runOf(s, i+size, pyuni.FlagOther)
		}
		i += size // whitespace (or U+0345, which no class takes)
	}
	return len(s), len(s)
}

// contractions are the pattern's contraction alternatives after the
// apostrophe, in the pattern's order.
var contractions = [...]string{"s", "t", "re", "ve", "m", "ll", "d"}

// literalPrefix returns the length of the prefix of s that matches the
// lower-case ASCII lit case-insensitively as the regex module does: ASCII
// letters of either case (the fast path splits text it has not lower-cased)
// and 'ſ' for 's'. It returns 0 when there is none.
func literalPrefix(s, lit string) int {
	j := 0
	for k := 0; k < len(lit); k++ {
		switch {
		case j < len(s) && s[j]|0x20 == lit[k] && isASCIILetter(lit[k]) || j < len(s) && s[j] == lit[k]:
			j++
		case lit[k] == 's' && strings.HasPrefix(s[j:], "ſ"):
			j += len("ſ")
		default:
			return 0
		}
	}
	return j
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// flagsAt returns the character flags and UTF-8 length of the code point
// at s[i]; invalid UTF-8 (which cleaning has already replaced) reads as
// U+FFFD.
func flagsAt(s string, i int) (uint8, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return pyuni.Flags(rune(c)), 1
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	return pyuni.Flags(r), size
}

// runOf returns the end of the run of characters having flag that starts at i.
func runOf(s string, i int, flag uint8) int {
	for i < len(s) {
		f, size := flagsAt(s, i)
		if f&flag == 0 {
			break
		}
		i += size
	}
	return i
}
