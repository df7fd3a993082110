package ftfy

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// Indexes into charmapNames / charmapDecode.
const (
	latin1     = 0
	sloppy1252 = 1
	macRoman   = 8
)

// charmapEncode[i] maps each character that charmapNames[i] can produce
// from a byte >= 0x80 (or, for the sloppy codecs, U+FFFD from 0x1A) back
// to that byte. Built once from charmapDecode and never written again.
var charmapEncode = func() (t [len(charmapNames)]map[rune]byte) {
	for i := range charmapNames {
		t[i] = make(map[rune]byte, 129)
		for b := 0x80; b < 0x100; b++ {
			t[i][charmapDecode[i][b]] = byte(b)
		}
		t[i][charmapDecode[i][0x1A]] = 0x1A
	}
	return t
}()

func isSloppy(enc int) bool { return strings.HasPrefix(charmapNames[enc], "sloppy") }

// encodeCharmap is Python's text.encode(charmapNames[enc]) after
// chardata.possible_encoding said yes; ok is false when some character has
// no byte in that encoding.
func encodeCharmap(text string, enc int) (out []byte, ok bool) {
	table := charmapEncode[enc]
	out = make([]byte, 0, len(text))
	for _, r := range text {
		if r < 0x80 && r != 0x1A {
			out = append(out, byte(r))
			continue
		}
		b, found := table[r]
		if !found {
			return nil, false
		}
		out = append(out, b)
	}
	return out, true
}

// encodingBudget bounds the work of one fix_encoding call with all its
// nested calls (decode_inconsistent_utf8 fixes each suspicious substring
// with a full fix_encoding of its own). Real text needs a few steps per
// substring; the bound only matters for input that would make ftfy cycle,
// where Python never returns.
type encodingBudget struct{ steps int }

// fixEncoding is ftfy.fix_encoding: one-step fixes repeated until the text
// stops changing.
func fixEncoding(text string) string {
	b := &encodingBudget{steps: 64 + 8*len(text)}
	return b.fixEncoding(text)
}

func (b *encodingBudget) fixEncoding(text string) string {
	for range maxRounds {
		if b.steps <= 0 {
			break
		}
		b.steps--
		fixed := b.fixEncodingStep(text)
		if fixed == text {
			break
		}
		text = fixed
	}
	return text
}

// fixEncodingStep is ftfy's _fix_encoding_one_step_and_explain.
func (b *encodingBudget) fixEncodingStep(text string) string {
	if text == "" || isASCII(text) || !isBad(text) {
		return text
	}
	latin1Possible := false
	for enc := range charmapNames {
		encoded, ok := encodeCharmap(text, enc)
		if !ok {
			continue
		}
		if enc == latin1 {
			latin1Possible = true
		}
		if enc != macRoman && hasAlteredUTF8(encoded) {
			encoded = restoreByteA0(encoded)
		}
		if isSloppy(enc) {
			encoded = replaceLossySequences(encoded)
		}
		var fixed string
		if bytes.IndexByte(encoded, 0xED) >= 0 || bytes.IndexByte(encoded, 0xC0) >= 0 {
			fixed, ok = decodeUTF8Variants(encoded)
		} else {
			fixed, ok = string(encoded), utf8.Valid(encoded)
		}
		if ok {
			return fixed
		}
	}
	if hasUTF8Mojibake(text) {
		if fixed := b.decodeInconsistentUTF8(text); fixed != text {
			return fixed
		}
	}
	if latin1Possible {
		// latin-1 bytes read as strict windows-1252 (ftfy never lists
		// plain windows-1252 among the possible encodings, so it tries).
		if fixed, ok := latin1AsWindows1252(text); ok && fixed != text {
			return fixed
		}
	}
	if hasC1(text) {
		return fixC1Controls(text)
	}
	return text
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// latin1AsWindows1252 is text.encode("latin-1").decode("windows-1252") for
// text whose code points are all below U+0100.
func latin1AsWindows1252(text string) (string, bool) {
	var b strings.Builder
	b.Grow(len(text))
	for _, r := range text {
		if 0x80 <= r && r <= 0x9F {
			r = windows1252C1[r-0x80]
			if r < 0 {
				return "", false
			}
		}
		b.WriteRune(r)
	}
	return b.String(), true
}

// alteredAt matches chardata.ALTERED_UTF8_RE at b[i:], returning the match
// length (0: none). The pattern finds UTF-8 sequences in which an A0 byte
// became a space.
func alteredAt(b []byte, i int) int {
	n := len(b)
	get := func(k int) int {
		if i+k < n {
			return int(b[i+k])
		}
		return -1
	}
	c0, c1, c2, c3 := get(0), get(1), get(2), get(3)
	cont := func(c int) bool { return 0x80 <= c && c <= 0xBF }
	// [\x80-\x84\x86-\x9f\xa1-\xbf]: continuation bytes other than 85 and A0.
	cont2 := func(c int) bool { return cont(c) && c != 0x85 && c != 0xA0 }
	switch {
	case (c0 == 0xC2 || c0 == 0xC3 || c0 == 0xC5 || c0 == 0xCE || c0 == 0xD0 || c0 == 0xD9) && c1 == ' ':
		return 2
	case (c0 == 0xE2 || c0 == 0xE3) && c1 == ' ' && cont2(c2):
		return 3
	case 0xE0 <= c0 && c0 <= 0xE3 && cont2(c1) && c2 == ' ':
		return 3
	case c0 == 0xF0 && c1 == ' ' && cont(c2) && cont(c3):
		return 4
	case c0 == 0xF0 && cont(c1) && c2 == ' ' && cont(c3):
		return 4
	case c0 == 0xF0 && cont(c1) && cont(c2) && c3 == ' ':
		return 4
	}
	return 0
}

func hasAlteredUTF8(b []byte) bool {
	for i := range b {
		if alteredAt(b, i) > 0 {
			return true
		}
	}
	return false
}

// restoreByteA0 is ftfy's fixes.restore_byte_a0: first "Ã " as a word of
// its own becomes "à " (C3 A0 20), then every ALTERED_UTF8_RE match gets its
// spaces turned back into A0.
func restoreByteA0(b []byte) []byte {
	var step []byte
	for i := 0; i < len(b); i++ {
		if b[i] == 0xC3 && i+1 < len(b) && b[i+1] == ' ' && !aGraveException(b[i+2:]) {
			step = append(step, 0xC3, 0xA0, ' ')
			i++
			continue
		}
		step = append(step, b[i])
	}
	out := make([]byte, 0, len(step))
	for i := 0; i < len(step); {
		if n := alteredAt(step, i); n > 0 {
			for _, c := range step[i : i+n] {
				if c == ' ' {
					c = 0xA0
				}
				out = append(out, c)
			}
			i += n
			continue
		}
		out = append(out, step[i])
		i++
	}
	return out
}

// aGraveException is the lookahead (?! |quele|quela|quilo|s ) of
// A_GRAVE_WORD_RE: Portuguese "às", "àquele"... and a double space.
func aGraveException(rest []byte) bool {
	for _, w := range []string{" ", "quele", "quela", "quilo", "s "} {
		if bytes.HasPrefix(rest, []byte(w)) {
			return true
		}
	}
	return false
}

// lossyAt matches chardata.LOSSY_UTF8_RE at b[i:] (match length, 0: none):
// UTF-8 sequences with a byte lost to 1A (a U+FFFD in the sloppy codecs)
// or, once per sequence, to '?'.
func lossyAt(b []byte, i int) int {
	n := len(b)
	get := func(k int) int {
		if i+k < n {
			return int(b[i+k])
		}
		return -1
	}
	c0, c1, c2, c3, c4, c5 := get(0), get(1), get(2), get(3), get(4), get(5)
	in := func(c, lo, hi int) bool { return lo <= c && c <= hi }
	sub := func(c int) bool { return c == 0x1A }
	subQ := func(c int) bool { return c == 0x1A || c == '?' }
	subC := func(c int) bool { return c == 0x1A || in(c, 0x80, 0xBF) }
	subQC := func(c int) bool { return c == 0x1A || c == '?' || in(c, 0x80, 0xBF) }
	switch {
	case in(c0, 0xC2, 0xDF) && sub(c1):
		return 2
	case in(c0, 0xC2, 0xC3) && c1 == '?':
		return 2
	case c0 == 0xED && in(c1, 0xA0, 0xAF) && subQ(c2) && c3 == 0xED && in(c4, 0xB0, 0xBF) && subQC(c5):
		return 6
	case c0 == 0xED && in(c1, 0xA0, 0xAF) && subQC(c2) && c3 == 0xED && in(c4, 0xB0, 0xBF) && subQ(c5):
		return 6
	case in(c0, 0xE0, 0xEF) && subQ(c1) && subC(c2):
		return 3
	case in(c0, 0xE0, 0xEF) && subC(c1) && subQ(c2):
		return 3
	case in(c0, 0xF0, 0xF4) && subQ(c1) && subC(c2) && subC(c3):
		return 4
	case in(c0, 0xF0, 0xF4) && subC(c1) && subQ(c2) && subC(c3):
		return 4
	case in(c0, 0xF0, 0xF4) && subC(c1) && subC(c2) && subQ(c3):
		return 4
	case sub(c0):
		return 1
	}
	return 0
}

// replaceLossySequences is ftfy's fixes.replace_lossy_sequences: each
// LOSSY_UTF8_RE match becomes the UTF-8 of U+FFFD.
func replaceLossySequences(b []byte) []byte {
	found := false
	for i := range b {
		if lossyAt(b, i) > 0 {
			found = true
			break
		}
	}
	if !found {
		return b
	}
	out := make([]byte, 0, len(b)+8)
	for i := 0; i < len(b); {
		if n := lossyAt(b, i); n > 0 {
			out = append(out, "\uFFFD"...)
			i += n
			continue
		}
		out = append(out, b[i])
		i++
	}
	return out
}

// decodeUTF8Variants is ftfy's "utf-8-variants" codec: UTF-8 that also
// accepts CESU-8 surrogate pairs and Java's C0 80 for U+0000. ok is false
// where Python raises UnicodeDecodeError.
func decodeUTF8Variants(b []byte) (string, bool) {
	out := make([]byte, 0, len(b))
	n := len(b)
	// atEnd is Python's `$` at position k: the end, or before a final "\n".
	atEnd := func(k int) bool { return k == n || k == n-1 && b[k] == '\n' }
	for i := 0; i < n; {
		switch c := b[i]; {
		case c == 0xC0:
			// NULL_EXPR \xc0(\x80|$): with a byte after it, U+0000.
			if i+1 < n && (b[i+1] == 0x80 || atEnd(i+1)) {
				out = append(out, 0)
				i += 2
				continue
			}
			return "", false
		case c == 0xED && (i+1 < n && 0xA0 <= b[i+1] && b[i+1] <= 0xBF || atEnd(i+1)):
			// A surrogate: only a whole CESU-8 pair decodes.
			if n-i < 6 {
				return "", false
			}
			last := b[i+5]
			if 0xA0 <= b[i+1] && b[i+1] <= 0xAF && 0x80 <= b[i+2] && b[i+2] <= 0xBF && b[i+3] == 0xED &&
				0xB0 <= b[i+4] && b[i+4] <= 0xBF && (0x80 <= last && last <= 0xBF || atEnd(i+5)) {
				cp := rune(b[i+1]&0x0F)<<16 + rune(b[i+2]&0x3F)<<10 + rune(b[i+4]&0x0F)<<6 + rune(last&0x3F) + 0x10000
				out = utf8.AppendRune(out, cp)
				i += 6
				continue
			}
			return "", false
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return "", false
			}
			out = append(out, b[i:i+size]...)
			i += size
		}
	}
	return string(out), true
}

// detectorAt matches chardata.UTF8_DETECTOR_RE at position i of the code
// points rs (with their categories ms): a run of characters that look like
// UTF-8 lead and continuation bytes read in a single-byte encoding, not
// preceded by a strict continuation character. It returns the end of the
// match, or i when there is none.
func detectorAt(ms []uint32, i int) int {
	if i > 0 && ms[i-1]&catUtf8ContinuationStrict != 0 {
		return i
	}
	n := len(ms)
	cont := func(k, count int) bool {
		if k+count > n {
			return false
		}
		for _, m := range ms[k : k+count] {
			if m&catUtf8Continuation == 0 {
				return false
			}
		}
		return true
	}
	j := i
	for j < n {
		m := ms[j]
		switch {
		case m&catUtf8FirstOf2 != 0 && cont(j+1, 1):
			j += 2
		case m&catUtf8FirstOf3 != 0 && cont(j+1, 2):
			j += 3
		case m&catUtf8FirstOf4 != 0 && cont(j+1, 3):
			j += 4
		default:
			return j
		}
	}
	return j
}

func hasUTF8Mojibake(text string) bool {
	_, ms := decodeCategories(text, nil, nil)
	for i := range ms {
		if detectorAt(ms, i) > i {
			return true
		}
	}
	return false
}

// decodeInconsistentUTF8 is ftfy's fixes.decode_inconsistent_utf8: every
// detector match that is shorter than the text and looks bad on its own is
// fixed on its own.
func (budget *encodingBudget) decodeInconsistentUTF8(text string) string {
	rs, ms := decodeCategories(text, nil, nil)
	var b strings.Builder
	last := 0
	for i := 0; i < len(rs); {
		end := detectorAt(ms, i)
		if end == i {
			i++
			continue
		}
		if end-i < len(rs) {
			sub := string(rs[i:end])
			if isBad(sub) {
				b.WriteString(string(rs[last:i]))
				b.WriteString(budget.fixEncoding(sub))
				last = end
			}
		}
		i = end
	}
	if last == 0 {
		return text
	}
	b.WriteString(string(rs[last:]))
	return b.String()
}
