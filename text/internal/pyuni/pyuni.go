// Package pyuni gives Go code Python 3.11's notion of characters, where the
// CLIP tokenizer depends on it: str.lower (full lowercasing, final sigma),
// str.isspace and str.split, unicodedata.normalize("NFC"), the character
// classes of the `regex` module that OpenCLIP's split pattern uses, and
// those of the `re` module that ftfy uses (\s, \w, \d).
//
// Go's unicode package differs from Python in version (Unicode 15.0 in Go
// 1.26, 14.0 in Python 3.11) and in definitions (Python counts U+001C..U+001F
// as whitespace; regex's IGNORECASE classes treat U+0345 as neither letter
// nor non-letter), and the tokenizer must match OpenCLIP id for id, so every
// table here is read out of the reference Python by
// text/internal/gen/gen_tables.py.
//
//	pyuni.Lower("ΣΟΦΙΑΣ İ") // "σοφιας i̇"
//	pyuni.NFC("cafe\u0301") // "café"
package pyuni

import (
	"sort"
	"unicode/utf8"
)

// Character flags, as Python 3.11 with regex 2022.10.31 sees each code point.
const (
	// FlagLetter: matched by the regex module's [\p{L}] under IGNORECASE.
	FlagLetter uint8 = 1 << 0
	// FlagNumber: matched by [\p{N}] under IGNORECASE.
	FlagNumber uint8 = 1 << 1
	// FlagOther: matched by [^\s\p{L}\p{N}] under IGNORECASE.
	FlagOther uint8 = 1 << 2
	// FlagSpace: str.isspace(), which is also the re module's \s.
	FlagSpace uint8 = 1 << 3
	// FlagWord: the re module's \w (str.isalnum() or '_').
	FlagWord uint8 = 1 << 4
	// FlagCased: Unicode Cased and not Case_Ignorable, as str.lower's final
	// sigma rule tests them.
	FlagCased uint8 = 1 << 5
	// FlagCaseIgnorable: Unicode Case_Ignorable.
	FlagCaseIgnorable uint8 = 1 << 6
	// FlagDecimal: the re module's \d (str.isdecimal()).
	FlagDecimal uint8 = 1 << 7
)

// bmpFlags caches Flags for the Basic Multilingual Plane, where nearly all
// text lives; it is filled once from flagRuns and never written again.
var bmpFlags = func() *[0x10000]uint8 {
	t := new([0x10000]uint8)
	for i, run := range flagRuns {
		end := rune(0x10000)
		if i+1 < len(flagRuns) {
			end = min(end, rune(flagRuns[i+1]>>8))
		}
		for r := rune(run >> 8); r < end; r++ {
			t[r] = uint8(run)
		}
	}
	return t
}()

// Flags returns the character flags of r. Invalid runes (surrogates, values
// past U+10FFFF) have none.
func Flags(r rune) uint8 {
	if uint32(r) < 0x10000 {
		return bmpFlags[r]
	}
	return searchFlags(r)
}

func searchFlags(r rune) uint8 {
	if r < 0 || r > utf8.MaxRune {
		return 0
	}
	// The last run starting at or before r.
	i := sort.Search(len(flagRuns), func(i int) bool { return rune(flagRuns[i]>>8) > r }) - 1
	if i < 0 {
		return 0
	}
	return uint8(flagRuns[i])
}

// IsSpace reports whether Python's str.isspace() is true for r.
func IsSpace(r rune) bool {
	return Flags(r)&FlagSpace != 0
}

// CollapseSpace is Python's " ".join(s.split()): it drops leading and
// trailing whitespace and replaces every inner run of it by one space.
// It returns s itself, or a substring of it, when it can.
func CollapseSpace(s string) string {
	// Trim first: captions often carry a leading space and nothing else.
	for len(s) > 0 {
		n := spaceLen(s, 0)
		if n == 0 {
			break
		}
		s = s[n:]
	}
	for len(s) > 0 {
		n := lastSpaceLen(s)
		if n == 0 {
			break
		}
		s = s[:len(s)-n]
	}
	if isCollapsed(s) {
		return s
	}
	b := make([]byte, 0, len(s))
	copied := 0 // s[:copied] is in b
	for i := 0; i < len(s); {
		n := spaceLen(s, i)
		if n == 0 {
			i++
			continue
		}
		// A run of whitespace from i: replace it by one space.
		b = append(b, s[copied:i]...)
		j := i + n
		for j < len(s) {
			m := spaceLen(s, j)
			if m == 0 {
				break
			}
			j += m
		}
		b = append(b, ' ')
		copied, i = j, j
	}
	b = append(b, s[copied:]...)
	return string(b)
}

// spaceLen returns the UTF-8 length of the code point at s[i] when it is
// Python whitespace, else 0. Only ASCII and the lead bytes C2, E1, E2 and E3
// can start whitespace, so other bytes (continuation bytes included) are
// rejected without decoding.
func spaceLen(s string, i int) int {
	c := s[i]
	if c < utf8.RuneSelf {
		if asciiSpace[c] {
			return 1
		}
		return 0
	}
	if c != 0xC2 && (c < 0xE1 || c > 0xE3) {
		return 0
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	if IsSpace(r) {
		return n
	}
	return 0
}

// lastSpaceLen is spaceLen for the last code point of s.
func lastSpaceLen(s string) int {
	if c := s[len(s)-1]; c < utf8.RuneSelf {
		if asciiSpace[c] {
			return 1
		}
		return 0
	}
	r, n := utf8.DecodeLastRuneInString(s)
	if IsSpace(r) {
		return n
	}
	return 0
}

var asciiSpace = func() (t [128]bool) {
	for c := range rune(128) {
		t[c] = IsSpace(c)
	}
	return t
}()

// isCollapsed reports whether s has whitespace only as single ASCII
// spaces between other characters (s is already trimmed).
func isCollapsed(s string) bool {
	prevSpace := false
	for i := 0; i < len(s); i++ {
		n := spaceLen(s, i)
		if n == 0 {
			prevSpace = false
			continue
		}
		if s[i] != ' ' || prevSpace {
			return false
		}
		prevSpace = true
	}
	return true
}

// Lower is Python's str.lower(): full Unicode lowercasing, with U+0130
// becoming "i̇" and capital sigma becoming final sigma ς where Python's
// Final_Sigma context says so. Invalid UTF-8 bytes become U+FFFD, as they
// would on the way into a Python string.
func Lower(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		if 'A' <= c && c <= 'Z' {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	return string(AppendLower(make([]byte, 0, len(s)+8), s))
}

// AppendLower appends Python's s.lower() to dst.
func AppendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0x3A3:
			if finalSigma(s, i, size) {
				r = 0x3C2
			} else {
				r = 0x3C3
			}
			dst = utf8.AppendRune(dst, r)
		default:
			if m, ok := lowerMulti[r]; ok {
				dst = append(dst, m...)
			} else {
				dst = utf8.AppendRune(dst, lowerRune(r))
			}
		}
		i += size
	}
	return dst
}

// lowerRune is the one-code-point lowercase of r (r itself when unmapped).
func lowerRune(r rune) rune {
	i := sort.Search(len(lowerPairs), func(i int) bool { return lowerPairs[i][0] >= r })
	if i < len(lowerPairs) && lowerPairs[i][0] == r {
		return lowerPairs[i][1]
	}
	return r
}

// finalSigma reports whether the capital sigma at s[i:i+size] is in the
// Final_Sigma context, as CPython decides it: a cased letter before it
// (skipping case-ignorable characters) and none after it.
func finalSigma(s string, i, size int) bool {
	before := false
	for j := i; j > 0; {
		r, n := utf8.DecodeLastRuneInString(s[:j])
		j -= n
		f := Flags(r)
		if f&FlagCaseIgnorable != 0 {
			continue
		}
		before = f&FlagCased != 0
		break
	}
	if !before {
		return false
	}
	for j := i + size; j < len(s); {
		r, n := utf8.DecodeRuneInString(s[j:])
		j += n
		f := Flags(r)
		if f&FlagCaseIgnorable != 0 {
			continue
		}
		return f&FlagCased == 0
	}
	return true
}
