package pyuni

import (
	"testing"
	"unicode/utf8"
)

// Expected values are Python 3.11's.
func TestLower(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Axial CT", "axial ct"},
		{"already lower", "already lower"},
		{"\u0130stanbul", "i\u0307stanbul"}, // İ → i + combining dot
		{"ΣΟΦΙΑΣ ΟΔΟΣ", "σοφιας οδος"},      // final sigma at word ends
		{"Σ", "σ"},                           // nothing cased before it
		{"AΣB", "aσb"},                       // cased after it
		{"AΣ'", "aς'"},                       // apostrophe is case-ignorable
		{"AΣ'B", "aσ'b"},                     // ...and skipped on both sides
		{"STRASSE \u1e9e", "strasse \u00df"}, // ẞ → ß
		{"\u212a", "k"},                      // Kelvin sign
		{"\u2160", "\u2170"},                 // Roman numeral one
		{"bad\xffbyte", "bad\ufffdbyte"},     // invalid UTF-8 → U+FFFD
	}
	for _, c := range cases {
		if got := Lower(c.in); got != c.want {
			t.Errorf("Lower(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCollapseSpace(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"a b", "a b"},
		{"  a \t\n b  ", "a b"},
		{"a\u00a0b\u2009c\u3000d", "a b c d"},
		{"a\x1cb\x1fc", "a b c"}, // Python counts U+001C..U+001F as whitespace
		{"a\u200bb\u180ec\u2060d", "a\u200bb\u180ec\u2060d"}, // these are not
		{"a\u0085b\u2028c", "a b c"},
	}
	for _, c := range cases {
		if got := CollapseSpace(c.in); got != c.want {
			t.Errorf("CollapseSpace(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNFC(t *testing.T) {
	cases := []struct{ in, want string }{
		{"cafe\u0301", "caf\u00e9"},
		{"caf\u00e9", "caf\u00e9"},
		{"\u212b", "\u00c5"},              // singleton decomposition
		{"a\u0301\u0328", "\u0105\u0301"}, // reordered: ogonek (202) before acute (230)
		{"\u1100\u1161\u11a8", "\uac01"},  // Hangul L V T
		{"\uac00\u11a8", "\uac01"},        // LV + T
		{"\u0915\u093c", "\u0915\u093c"},  // excluded composition stays decomposed
		{"\u0958", "\u0915\u093c"},        // ...and its composite decomposes
		{"\u0344", "\u0308\u0301"},        // non-starter decomposition
		{"e\u0301\u0301", "\u00e9\u0301"}, // second acute is blocked
	}
	for _, c := range cases {
		if got := NFC(c.in); got != c.want {
			t.Errorf("NFC(%q) = %+q, want %+q", c.in, got, c.want)
		}
	}
}

// IsNFC's shortcut trusts that nothing below U+0300 can change under NFC.
func TestBelowU0300IsNFCStable(t *testing.T) {
	for r := rune(0); r < 0x300; r++ {
		if nfcUnsafeRune(r) || CombiningClass(r) != 0 {
			t.Fatalf("U+%04X is not NFC-stable", r)
		}
	}
}

func TestFlags(t *testing.T) {
	cases := []struct {
		r    rune
		want uint8
	}{
		{'a', FlagLetter | FlagWord | FlagCased},
		{'7', FlagNumber | FlagWord | FlagDecimal},
		{'-', FlagOther},
		{' ', FlagSpace},
		{'\'', FlagOther | FlagCaseIgnorable},
		{'\u0345', FlagCaseIgnorable}, // neither letter nor non-letter under IGNORECASE
		{'\u0663', FlagNumber | FlagWord | FlagDecimal},
		{'\u00b2', FlagNumber | FlagWord}, // superscript two: \p{N}, not \d
		{0x1c, FlagSpace | FlagOther},     // isspace, but not the regex module's \s
		{0x10FFFF + 1, 0},
	}
	for _, c := range cases {
		if got := Flags(c.r); got != c.want {
			t.Errorf("Flags(%U) = %08b, want %08b", c.r, got, c.want)
		}
	}
}

func TestTablesSorted(t *testing.T) {
	for i := 1; i < len(flagRuns); i++ {
		if flagRuns[i]>>8 <= flagRuns[i-1]>>8 {
			t.Fatalf("flagRuns not sorted at %d", i)
		}
	}
	for i := 1; i < len(lowerPairs); i++ {
		if lowerPairs[i][0] <= lowerPairs[i-1][0] {
			t.Fatalf("lowerPairs not sorted at %d", i)
		}
	}
	for i := 1; i < len(compTable); i++ {
		a, b := compTable[i-1], compTable[i]
		if b[0] < a[0] || b[0] == a[0] && b[1] <= a[1] {
			t.Fatalf("compTable not sorted at %d", i)
		}
	}
	if !utf8.ValidString(NFC("\xff")) {
		t.Error("NFC kept invalid UTF-8")
	}
}
