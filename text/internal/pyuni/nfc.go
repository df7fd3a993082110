package pyuni

import (
	"slices"
	"sort"
	"unicode/utf8"
)

// Hangul syllable arithmetic (Unicode §3.12).
const (
	hangulSBase  = 0xAC00
	hangulLBase  = 0x1100
	hangulVBase  = 0x1161
	hangulTBase  = 0x11A7
	hangulLCount = 19
	hangulVCount = 21
	hangulTCount = 28
	hangulNCount = hangulVCount * hangulTCount
	hangulSCount = hangulLCount * hangulNCount
)

// NFC is unicodedata.normalize("NFC", s) with Python 3.11's Unicode 14.0
// data. It returns s itself when s is already in NFC, which is the case for
// almost every caption: the quick check rejects only strings holding a
// combining mark or another code point that NFC can change.
func NFC(s string) string {
	if IsNFC(s) {
		return s
	}
	buf := make([]rune, 0, len(s))
	for _, r := range s {
		buf = appendDecomposed(buf, r)
	}
	canonicalOrder(buf)
	buf = compose(buf)
	out := make([]byte, 0, len(s)+8)
	for _, r := range buf {
		out = utf8.AppendRune(out, r)
	}
	return string(out)
}

// IsNFC reports whether s certainly is in NFC: every code point has
// combining class 0 and NFC_Quick_Check=Yes. (A false answer only means the
// full algorithm must run.) Invalid UTF-8 counts as not NFC, so that NFC
// turns it into U+FFFD like every other transformation here.
func IsNFC(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0xCC { // every code point below U+0300 is safe
			if c >= utf8.RuneSelf {
				if c < 0xC2 || i+1 >= len(s) || s[i+1]&0xC0 != 0x80 {
					return false
				}
				i += 2
				continue
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || nfcUnsafeRune(r) {
			return false
		}
		i += n
	}
	return true
}

func nfcUnsafeRune(r rune) bool {
	i := sort.Search(len(nfcUnsafe), func(i int) bool { return nfcUnsafe[i][1] >= r })
	return i < len(nfcUnsafe) && nfcUnsafe[i][0] <= r
}

// CombiningClass is unicodedata.combining(r).
func CombiningClass(r rune) uint8 {
	if r < 0x300 {
		return 0
	}
	i := sort.Search(len(cccPairs), func(i int) bool { return rune(cccPairs[i]>>8) >= r })
	if i < len(cccPairs) && rune(cccPairs[i]>>8) == r {
		return uint8(cccPairs[i])
	}
	return 0
}

// appendDecomposed appends the full canonical decomposition of r.
func appendDecomposed(dst []rune, r rune) []rune {
	if s := r - hangulSBase; s >= 0 && s < hangulSCount {
		dst = append(dst, hangulLBase+s/hangulNCount, hangulVBase+(s%hangulNCount)/hangulTCount)
		if t := s % hangulTCount; t != 0 {
			dst = append(dst, hangulTBase+t)
		}
		return dst
	}
	i := sort.Search(len(decompTable), func(i int) bool { return decompTable[i][0] >= r })
	if i == len(decompTable) || decompTable[i][0] != r {
		return append(dst, r)
	}
	d := decompTable[i]
	dst = appendDecomposed(dst, d[1])
	if d[2] != 0 {
		dst = appendDecomposed(dst, d[2])
	}
	return dst
}

// canonicalOrder stably sorts every run of non-starters by combining class.
func canonicalOrder(rs []rune) {
	for i := 0; i < len(rs); {
		if CombiningClass(rs[i]) == 0 {
			i++
			continue
		}
		j := i + 1
		for j < len(rs) && CombiningClass(rs[j]) != 0 {
			j++
		}
		if j-i > 1 {
			// Runs are a few marks long in real text; a stable sort keeps
			// adversarial ones (thousands of marks) from going quadratic.
			slices.SortStableFunc(rs[i:j], func(a, b rune) int {
				return int(CombiningClass(a)) - int(CombiningClass(b))
			})
		}
		i = j
	}
}

// compose applies canonical composition in place and returns the result.
func compose(rs []rune) []rune {
	out := rs[:0]
	starter := -1 // index in out of the last starter, -1 before the first
	for _, c := range rs {
		cc := CombiningClass(c)
		if starter >= 0 {
			last := out[len(out)-1]
			lastCC := CombiningClass(last)
			// c is not blocked from the starter when nothing lies between
			// them, or when everything between has a lower, non-zero class
			// (canonical order makes the last one the highest).
			if len(out)-1 == starter || (lastCC != 0 && lastCC < cc) {
				if p, ok := composePair(out[starter], c); ok {
					out[starter] = p
					continue
				}
			}
		}
		if cc == 0 {
			starter = len(out)
		}
		out = append(out, c)
	}
	return out
}

// composePair returns the primary composite of a and b, if there is one.
func composePair(a, b rune) (rune, bool) {
	if l := a - hangulLBase; l >= 0 && l < hangulLCount {
		if v := b - hangulVBase; v >= 0 && v < hangulVCount {
			return hangulSBase + (l*hangulVCount+v)*hangulTCount, true
		}
		return 0, false
	}
	if s := a - hangulSBase; s >= 0 && s < hangulSCount && s%hangulTCount == 0 {
		if t := b - hangulTBase; t > 0 && t < hangulTCount {
			return a + t, true
		}
		return 0, false
	}
	i := sort.Search(len(compTable), func(i int) bool {
		return compTable[i][0] > a || compTable[i][0] == a && compTable[i][1] >= b
	})
	if i < len(compTable) && compTable[i][0] == a && compTable[i][1] == b {
		return compTable[i][2], true
	}
	return 0, false
}
