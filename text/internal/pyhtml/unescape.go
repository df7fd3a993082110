// Package pyhtml is Python's html.unescape, which OpenCLIP applies twice to
// every caption, and the HTML5 entity table that goes with it (Python's
// html.entities.html5, which ftfy also decodes from).
//
// Go's html.UnescapeString differs from Python's in ways that change
// tokens: it reads entity names only over [A-Za-z0-9], it keeps the control
// and noncharacter code points that Python deletes ("&#1;" → ""), and its
// table is not exported for ftfy's needs.
//
//	pyhtml.Unescape("&amp;lt;b&amp;gt;") // "&lt;b&gt;"
package pyhtml

import (
	"strings"
	"unicode/utf8"
)

// Lookup returns the text of the HTML5 entity called name, which includes
// the final ';' where there is one ("amp;", or the legacy "amp").
func Lookup(name string) (string, bool) {
	v, ok := html5[name]
	return v, ok
}

// Unescape is Python 3.11's html.unescape: every numeric and named character
// reference in s is replaced by the text it stands for, following HTML5's
// rules (including names without ';' and the longest-prefix match).
func Unescape(s string) string {
	amp := strings.IndexByte(s, '&')
	if amp < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for amp >= 0 {
		b.WriteString(s[:amp])
		s = s[amp:]
		repl, n := charref(s)
		if n == 0 {
			b.WriteByte('&')
			s = s[1:]
		} else {
			b.WriteString(repl)
			s = s[n:]
		}
		amp = strings.IndexByte(s, '&')
	}
	b.WriteString(s)
	return b.String()
}

// charref decodes the reference at the start of s (which starts with '&'),
// mirroring Python's
//
//	&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
//
// It returns the replacement and the number of bytes consumed, or n == 0
// when no reference starts here.
func charref(s string) (string, int) {
	if len(s) < 2 {
		return "", 0
	}
	if s[1] == '#' {
		if len(s) > 2 && isDigit(s[2]) {
			end := 2
			for end < len(s) && isDigit(s[end]) {
				end++
			}
			num := parseNum(s[2:end], 10)
			if end < len(s) && s[end] == ';' {
				end++
			}
			return numeric(num), end
		}
		if len(s) > 3 && (s[2] == 'x' || s[2] == 'X') && isHex(s[3]) {
			end := 3
			for end < len(s) && isHex(s[end]) {
				end++
			}
			num := parseNum(s[3:end], 16)
			if end < len(s) && s[end] == ';' {
				end++
			}
			return numeric(num), end
		}
		return "", 0 // '#' cannot start a name
	}
	// A name: up to 32 code points outside the excluded set.
	end := 1
	for count := 0; count < 32 && end < len(s); count++ {
		r, n := utf8.DecodeRuneInString(s[end:])
		if r == '\t' || r == '\n' || r == '\f' || r == ' ' || r == '<' || r == '&' || r == '#' || r == ';' {
			break
		}
		end += n
	}
	if end == 1 {
		return "", 0
	}
	if end < len(s) && s[end] == ';' {
		end++
	}
	name := s[1:end]
	if v, ok := html5[name]; ok {
		return v, end
	}
	// The longest prefix of at least two code points that is an entity;
	// entity names are ASCII, so only the ASCII head of name can match.
	head := 0
	for head < len(name) && name[head] < utf8.RuneSelf {
		head++
	}
	for x := min(head, utf8.RuneCountInString(name)-1); x >= 2; x-- {
		if v, ok := html5[name[:x]]; ok {
			return v + name[x:], end
		}
	}
	return "&" + name, end
}

// numeric is Python's handling of a numeric reference to num (-1: larger
// than any code point).
func numeric(num int) string {
	if v, ok := invalidCharrefs[num]; ok {
		return v
	}
	if num < 0 || num > utf8.MaxRune || 0xD800 <= num && num <= 0xDFFF {
		return "\uFFFD"
	}
	if invalidCodepoints[num] {
		return ""
	}
	return string(rune(num))
}

// parseNum parses digits in base, returning -1 once the value passes
// U+10FFFF (Python's ints do not overflow; any such value means U+FFFD).
func parseNum(digits string, base int) int {
	n := 0
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		var d int
		switch {
		case '0' <= c && c <= '9':
			d = int(c - '0')
		case 'a' <= c && c <= 'f':
			d = int(c-'a') + 10
		default:
			d = int(c-'A') + 10
		}
		n = n*base + d
		if n > utf8.MaxRune {
			return -1
		}
	}
	return n
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
