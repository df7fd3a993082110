package wordpiece

import (
	"sort"
	"unicode/utf8"
)

// Character flags, as Hugging Face's BERT tokenizer sees each code point
// (tables.go, read out of the tokenizers library).
const (
	// flagDrop: BertNormalizer's clean_text removes it (NUL, U+FFFD, and
	// what the library counts as control: Cc, Cf, Co; unassigned code
	// points are kept).
	flagDrop = 1 << iota
	// flagSpace: clean_text turns it into a space, and BertPreTokenizer
	// splits on it.
	flagSpace
	// flagChinese: a CJK ideograph, which the normaliser surrounds with
	// spaces.
	flagChinese
	// flagPunct: BertPreTokenizer makes it a token of its own (ASCII
	// punctuation and symbols, Unicode P*).
	flagPunct
	// flagMark: a non-spacing mark, removed after NFD when accents are
	// stripped.
	flagMark
)

// decomposition is a code point's full canonical decomposition.
type decomposition struct {
	r rune
	d string
}

var asciiFlags = func() (t [utf8.RuneSelf]uint8) {
	for c := range utf8.RuneSelf {
		t[c] = searchFlags(rune(c))
	}
	return t
}()

// flagsOf returns the flags of r.
func flagsOf(r rune) uint8 {
	if r < utf8.RuneSelf {
		return asciiFlags[r]
	}
	return searchFlags(r)
}

func searchFlags(r rune) uint8 {
	// The first run starts at 0, so i >= 1.
	i := sort.Search(len(flagRuns), func(i int) bool { return rune(flagRuns[i]>>8) > r })
	return uint8(flagRuns[i-1])
}

// Hangul syllable arithmetic (Unicode §3.12).
const (
	hangulSBase  = 0xAC00
	hangulLBase  = 0x1100
	hangulVBase  = 0x1161
	hangulTBase  = 0x11A7
	hangulTCount = 28
	hangulNCount = 21 * hangulTCount
	hangulSCount = 19 * hangulNCount
)

// appendNFD appends the canonical decomposition of r.
func appendNFD(dst []rune, r rune) []rune {
	if r < 0xC0 {
		return append(dst, r)
	}
	if s := r - hangulSBase; s >= 0 && s < hangulSCount {
		dst = append(dst, hangulLBase+s/hangulNCount, hangulVBase+(s%hangulNCount)/hangulTCount)
		if t := s % hangulTCount; t != 0 {
			dst = append(dst, hangulTBase+t)
		}
		return dst
	}
	i := sort.Search(len(decompTable), func(i int) bool { return decompTable[i].r >= r })
	if i == len(decompTable) || decompTable[i].r != r {
		return append(dst, r)
	}
	for _, c := range decompTable[i].d {
		dst = append(dst, c)
	}
	return dst
}

// combiningClass is the canonical combining class NFD orders r by.
func combiningClass(r rune) uint8 {
	if r < 0x300 {
		return 0
	}
	i := sort.Search(len(cccPairs), func(i int) bool { return rune(cccPairs[i]>>8) >= r })
	if i < len(cccPairs) && rune(cccPairs[i]>>8) == r {
		return uint8(cccPairs[i])
	}
	return 0
}

// canonicalOrder stably sorts every run of code points with a non-zero
// combining class by class, which completes NFD.
func canonicalOrder(rs []rune) {
	for i := 0; i < len(rs); {
		ci := combiningClass(rs[i])
		if ci == 0 {
			i++
			continue
		}
		j := i + 1
		sorted := true
		for j < len(rs) {
			cj := combiningClass(rs[j])
			if cj == 0 {
				break
			}
			if cj < ci {
				sorted = false
			}
			ci = cj
			j++
		}
		if !sorted {
			// Insertion sort: runs are a few marks long in real text.
			for a := i + 1; a < j; a++ {
				r, c := rs[a], combiningClass(rs[a])
				b := a
				for b > i && combiningClass(rs[b-1]) > c {
					rs[b] = rs[b-1]
					b--
				}
				rs[b] = r
			}
		}
		i = j
	}
}

// appendLower appends the lowercase of r (one code point but for U+0130).
func appendLower(dst []rune, r rune) []rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return append(dst, r)
	}
	i := sort.Search(len(lowerPairs), func(i int) bool { return lowerPairs[i][0] >= r })
	if i < len(lowerPairs) && lowerPairs[i][0] == r {
		return append(dst, lowerPairs[i][1])
	}
	if s, ok := lowerMulti[r]; ok {
		for _, c := range s {
			dst = append(dst, c)
		}
		return dst
	}
	return append(dst, r)
}

// normalize is BertNormalizer with BERT-uncased settings, in its order:
// clean_text (drop controls, whitespace to ' '), spaces around CJK
// ideographs, NFD, strip non-spacing marks, lowercase. It appends the
// result to dst, using scratch, and returns both for reuse. Invalid UTF-8
// reads as U+FFFD, which clean_text drops.
func normalize(dst, scratch []rune, s string) (out, buf []rune) {
	nfd := scratch[:0]
	for _, r := range s {
		f := flagsOf(r)
		switch {
		case f&flagDrop != 0:
		case f&flagSpace != 0:
			nfd = append(nfd, ' ')
		case f&flagChinese != 0:
			nfd = append(nfd, ' ')
			nfd = appendNFD(nfd, r)
			nfd = append(nfd, ' ')
		default:
			nfd = appendNFD(nfd, r)
		}
	}
	canonicalOrder(nfd)
	for _, r := range nfd {
		if flagsOf(r)&flagMark == 0 {
			dst = appendLower(dst, r)
		}
	}
	return dst, nfd
}
