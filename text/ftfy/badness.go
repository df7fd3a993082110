package ftfy

import (
	"sort"
	"unicode/utf8"

	"github.com/bmca/bmca/text/internal/pyuni"
)

// catBadness is every category the badness heuristic looks at. Each of its
// patterns needs at least one character of one of them, so a text without
// any is never bad.
const catBadness = catCommon | catC1 | catBad | catLaw | catCurrency | catStartPunctuation |
	catEndPunctuation | catNumeric | catKaomoji | catUpperAccented | catLowerAccented |
	catUpperCommon | catLowerCommon | catBox

// Category unions used by several patterns.
const (
	catSP  = catStartPunctuation
	catEP  = catEndPunctuation
	catCur = catCurrency
	catNum = catNumeric
	catUA  = catUpperAccented
	catLA  = catLowerAccented
)

// lowCategories caches category bits below U+2600, which holds every
// categorised code point but four; filled once, never written again.
var lowCategories = func() *[0x2600]uint32 {
	t := new([0x2600]uint32)
	for _, p := range categoryPairs {
		if p[0] < 0x2600 {
			t[p[0]] = p[1]
		}
	}
	return t
}()

// categories returns the ftfy category bits of r.
func categories(r rune) uint32 {
	if uint32(r) < 0x2600 {
		return lowCategories[r]
	}
	if r < 0xF8FF {
		return 0
	}
	return searchCategories(r)
}

func searchCategories(r rune) uint32 {
	i := sort.Search(len(categoryPairs), func(i int) bool { return rune(categoryPairs[i][0]) >= r })
	if i < len(categoryPairs) && rune(categoryPairs[i][0]) == r {
		return categoryPairs[i][1]
	}
	return 0
}

// decodeCategories appends the code points of s and their category bits.
func decodeCategories(s string, rs []rune, ms []uint32) ([]rune, []uint32) {
	for _, r := range s {
		rs = append(rs, r)
		ms = append(ms, categories(r))
	}
	return rs, ms
}

// isBad is ftfy's badness.is_bad: whether BADNESS_RE matches anywhere in s.
func isBad(s string) bool {
	candidate := false
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		if categories(r)&catBadness != 0 {
			candidate = true
			break
		}
	}
	if !candidate {
		return false
	}
	var rbuf [256]rune
	var mbuf [256]uint32
	rs, ms := decodeCategories(s, rbuf[:0], mbuf[:0])
	return isBadRunes(rs, ms)
}

// isBadRunes tries every alternative of BADNESS_RE at every position; the
// comments number them in the order of ftfy 6.3.1's badness.py.
func isBadRunes(rs []rune, ms []uint32) bool {
	n := len(rs)
	at := func(i int) (rune, uint32) {
		if i < n {
			return rs[i], ms[i]
		}
		return -1, 0
	}
	for i := range n {
		r0, m0 := rs[i], ms[i]
		r1, m1 := at(i + 1)
		r2, m2 := at(i + 2)
		// Every alternative has a categorised character among its first
		// three, so most positions of a mostly-ASCII text are skipped here.
		if (m0|m1|m2)&catBadness == 0 {
			continue
		}
		asciiLetter0 := 'a' <= r0 && r0 <= 'z' || 'A' <= r0 && r0 <= 'Z'
		lower0 := 'a' <= r0 && r0 <= 'z'
		switch {
		// [c1]
		case m0&catC1 != 0:
			return true
		// [bad la ua box sp ep cur num law] [bad]
		case m0&(catBad|catLA|catUA|catBox|catSP|catEP|catCur|catNum|catLaw) != 0 && m1&catBad != 0:
			return true
		// [a-zA-Z] [lower_common upper_common] [bad]
		case asciiLetter0 && m1&(catLowerCommon|catUpperCommon) != 0 && m2&catBad != 0:
			return true
		// [bad] [la ua box sp ep cur num law]
		case m0&catBad != 0 && m1&(catLA|catUA|catBox|catSP|catEP|catCur|catNum|catLaw) != 0:
			return true
		// [la lower_common box ep cur num] [ua]
		case m0&(catLA|catLowerCommon|catBox|catEP|catCur|catNum) != 0 && m1&catUA != 0:
			return true
		// [box ep cur num] [la]
		case m0&(catBox|catEP|catCur|catNum) != 0 && m1&catLA != 0:
			return true
		// [la box ep] [cur]
		case m0&(catLA|catBox|catEP) != 0 && m1&catCur != 0:
			return true
		// \s [ua] [cur]
		case pyuni.IsSpace(r0) && m1&catUA != 0 && m2&catCur != 0:
			return true
		// [ua box] [num law]
		case m0&(catUA|catBox) != 0 && m1&(catNum|catLaw) != 0:
			return true
		// [la ua box cur ep] [sp] [num]
		case m0&(catLA|catUA|catBox|catCur|catEP) != 0 && m1&catSP != 0 && m2&catNum != 0:
			return true
		// [la ua cur num box law] [ep] [sp]
		case m0&(catLA|catUA|catCur|catNum|catBox|catLaw) != 0 && m1&catEP != 0 && m2&catSP != 0:
			return true
		// [cur num box] [sp]
		case m0&(catCur|catNum|catBox) != 0 && m1&catSP != 0:
			return true
		// [a-z] [ua] [sp cur]
		case lower0 && m1&catUA != 0 && m2&(catSP|catCur) != 0:
			return true
		// [box] [kaomoji]
		case m0&catBox != 0 && m1&catKaomoji != 0:
			return true
		// [la ua cur num sp ep law] [box]
		case m0&(catLA|catUA|catCur|catNum|catSP|catEP|catLaw) != 0 && m1&catBox != 0:
			return true
		// [box] [ep]
		case m0&catBox != 0 && m1&catEP != 0:
			return true
		// [la ua] [sp ep] \w
		case m0&(catLA|catUA) != 0 && m1&(catSP|catEP) != 0 && r2 >= 0 && pyuni.Flags(r2)&pyuni.FlagWord != 0:
			return true
		// [Œœ][^A-Za-z]
		case (r0 == 'Œ' || r0 == 'œ') && r1 >= 0 && !('a' <= r1 && r1 <= 'z' || 'A' <= r1 && r1 <= 'Z'):
			return true
		// [ua]°
		case m0&catUA != 0 && r1 == '°':
			return true
		// [ÂÃÎÐ][€œŠš¢£Ÿž\xa0\xad®©°·»{sp}{ep}–—´]
		case isOneOf(r0, "ÂÃÎÐ") && (isOneOf(r1, "€œŠš¢£Ÿž\u00a0\u00ad®©°·»–—´") || m1&(catSP|catEP) != 0):
			return true
		// × [²³]
		case r0 == '×' && (r1 == '²' || r1 == '³'):
			return true
		// [ØÙ] [common cur bad num sp ŸŠ®°µ»] [ØÙ] [same]
		case isOneOf(r0, "ØÙ") && arabicMojibake(r1, m1) && isOneOf(r2, "ØÙ") && i+3 < n && arabicMojibake(rs[i+3], ms[i+3]):
			return true
		// à[²µ¹¼½¾]
		case r0 == 'à' && isOneOf(r1, "²µ¹¼½¾"):
			return true
		// √[±∂†≠®™´≤≥¥µø]
		case r0 == '√' && isOneOf(r1, "±∂†≠®™´≤≥¥µø"):
			return true
		// ≈[°¢]
		case r0 == '≈' && (r1 == '°' || r1 == '¢'):
			return true
		// ‚Ä[ìîïòôúùû†°¢π]
		case r0 == '‚' && r1 == 'Ä' && isOneOf(r2, "ìîïòôúùû†°¢π"):
			return true
		// ‚[âó][àä°ê]
		case r0 == '‚' && (r1 == 'â' || r1 == 'ó') && isOneOf(r2, "àä°ê"):
			return true
		// вЂ
		case r0 == 'в' && r1 == 'Ђ':
			return true
		// [ВГРС][c1 bad sp ep cur °µ][ВГРС]
		case isOneOf(r0, "ВГРС") && (m1&(catC1|catBad|catSP|catEP|catCur) != 0 || r1 == '°' || r1 == 'µ') && isOneOf(r2, "ВГРС"):
			return true
		// ГўВЂВ.[A-Za-z ]
		case r0 == 'Г' && r1 == 'ў' && r2 == 'В' && i+6 < n && rs[i+3] == 'Ђ' && rs[i+4] == 'В' && rs[i+5] != '\n' &&
			(rs[i+6] == ' ' || 'a' <= rs[i+6] && rs[i+6] <= 'z' || 'A' <= rs[i+6] && rs[i+6] <= 'Z'):
			return true
		// Ã[\xa0¡]
		case r0 == 'Ã' && (r1 == 0xA0 || r1 == '¡'):
			return true
		// [a-z]\s?[ÃÂ][ ]
		case lower0 && (pyuni.IsSpace(r1) && isOneOf(r2, "ÃÂ") && i+3 < n && rs[i+3] == ' ' ||
			isOneOf(r1, "ÃÂ") && r2 == ' '):
			return true
		// ^[ÃÂ][ ]
		case i == 0 && isOneOf(r0, "ÃÂ") && r1 == ' ':
			return true
		// [a-z.,?!{ep}] Â [ {sp}{ep}]
		case (lower0 || isOneOf(r0, ".,?!") || m0&catEP != 0) && r1 == 'Â' && (r2 == ' ' || m2&(catSP|catEP) != 0):
			return true
		// β€[™\xa0Ά\xad®°]
		case r0 == 'β' && r1 == '€' && isOneOf(r2, "™\u00a0Ά\u00ad®°"):
			return true
		// [ΒΓΞΟ][c1 bad sp ep cur °][ΒΓΞΟ]
		case isOneOf(r0, "ΒΓΞΟ") && (m1&(catC1|catBad|catSP|catEP|catCur) != 0 || r1 == '°') && isOneOf(r2, "ΒΓΞΟ"):
			return true
		// ā€
		case r0 == 'ā' && r1 == '€':
			return true
		}
	}
	return false
}

// arabicMojibake is the class [{common}{currency}{bad}{numeric}{start_punctuation}ŸŠ®°µ»].
func arabicMojibake(r rune, m uint32) bool {
	return m&(catCommon|catCur|catBad|catNum|catSP) != 0 || isOneOf(r, "ŸŠ®°µ»")
}

// isOneOf reports whether r is one of the code points of set.
func isOneOf(r rune, set string) bool {
	if r < 0 {
		return false
	}
	for _, c := range set {
		if c == r {
			return true
		}
	}
	return false
}
