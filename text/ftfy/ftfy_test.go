package ftfy

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Expected values are ftfy 6.3.1's fix_text under Python 3.11.
var fixTextCases = []struct{ in, want string }{
	{"Axial CT of the chest.", "Axial CT of the chest."},
	{"don\u00e2\u20ac\u2122t", "don't"},
	{"\u00c3\u00a9t\u00c3\u00a9 caf\u00c3\u00a9", "\u00e9t\u00e9 caf\u00e9"},
	{"The Mona Lisa doesn\u00c3\u0192\u00c2\u00a2\u00c3\u00a2\u00e2\u20ac\u0161\u00c2\u00ac\u00c3\u00a2\u00e2\u20ac\u017e\u00c2\u00a2t have eyebrows.", "The Mona Lisa doesn't have eyebrows."},
	{"line\u2028separator and\u0085next line", "line\nseparator and\u2026next line"},
	{"\ufb01brosis", "fibrosis"},
	{"\uff23\uff34 scan \uff11\uff12\uff13", "CT scan 123"},
	{"chest\u3000X-ray", "chest X-ray"},
	{"patient\u2019s \u201cquoted\u201d", "patient's \"quoted\""},
	{"\u001b[31mred\u001b[0m text", "red text"},
	{"null\u0000byte and bell\u0007", "nullbyte and bell"},
	{"vertical\u000btab", "verticaltab"},
	{"\ufeffBOM", "BOM"},
	{"cafe\u0301", "caf\u00e9"},
	{"H&amp;E", "H&E"},
	{"<b>H&amp;E</b>", "<b>H&amp;E</b>"},
	{"P&EACUTE;REZ", "P\u00c9REZ"},
	{"BUNDESSTRA&SZLIG;E", "BUNDESSTRASSE"},
	{"&ntilde; &Ntilde; &NTILDE; &nTILDE;", "\u00f1 \u00d1 \u00d1 &nTILDE;"},
	{"a&#39;b", "a'b"},
	{"voil\u00c3\u00a0 le travail", "voil\u00e0 le travail"},
	{"voil\u00c3 le travail", "voil\u00e0 le travail"},
	{"s\u00c3\u00b3", "s\u00f3"},
	{"\u00e2\u20ac\u0153 like this \u00e2\u20ac\ufffd", "\" like this \ufffd"},
	{"it\u2019s 5 \u03bcm \u00b1 2 \u00b0C", "it's 5 \u03bcm \u00b1 2 \u00b0C"},
	{"a\r\nb\rc", "a\nb\nc"},
	{"x &am\u0000p; y", "x & y"}, // the second round sees the entity
	{"A\u0092B", "A'B"},
	{"\u0130stanbul", "\u0130stanbul"},
	{"\u00c3\u0192\u00c2\u00a9", "\u00e9"},
	{"\u00c3  la mode", "\u00e0 la mode"},
	{"\u2764\ufe0f", "\u2764\ufe0f"},
	{"first line <\nsecond &amp;", "first line <\nsecond &amp;"}, // '<' turns entities off from there on
}

func TestFixText(t *testing.T) {
	for _, c := range fixTextCases {
		if got := FixText(c.in); got != c.want {
			t.Errorf("FixText(%+q)\n got %+q\nwant %+q", c.in, got, c.want)
		}
	}
}

func TestIsBad(t *testing.T) {
	bad := []string{"\u00c3\u00a9", "don\u00e2\u20ac\u2122t", "\u0080", "\u00c3 ", "\u00e2\u20ac\u0153"}
	good := []string{"", "plain", "caf\u00e9", "5 \u03bcm \u00b1 2 \u00b0C", "\u00c5ngstr\u00f6m", "na\u00efve"}
	for _, s := range bad {
		if !isBad(s) {
			t.Errorf("isBad(%+q) = false", s)
		}
	}
	for _, s := range good {
		if isBad(s) {
			t.Errorf("isBad(%+q) = true", s)
		}
	}
}

func TestDecodeUTF8Variants(t *testing.T) {
	cases := []struct {
		in   string
		want string
		ok   bool
	}{
		{"plain \u00e9", "plain \u00e9", true},
		{"nul \xc0\x80!", "nul \x00!", true},
		{"\xed\xa0\xbd\xed\xb8\x80", "\U0001f600", true}, // CESU-8 pair
		{"\xed\xa0\xbd", "", false},                      // lone surrogate
		{"\xc0", "", false},
		{"\xff", "", false},
	}
	for _, c := range cases {
		got, ok := decodeUTF8Variants([]byte(c.in))
		if ok != c.ok || ok && got != c.want {
			t.Errorf("decodeUTF8Variants(%q) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// Long texts are fixed in segments of at most a million code points.
func TestSegments(t *testing.T) {
	long := strings.Repeat("\u00c3\u00a9", maxDecodeLength/2+10)
	got := FixText(long)
	if !utf8.ValidString(got) || !strings.HasPrefix(got, "\u00e9\u00e9") {
		t.Fatalf("long mojibake not fixed: %q...", got[:20])
	}
}

func FuzzFixText(f *testing.F) {
	for _, c := range fixTextCases {
		f.Add(c.in)
	}
	f.Add("\xed\xa0\xbd\xed\xb8\x80 \xc0\x80 \xff\xfe \x1a \ufffd?")
	f.Fuzz(func(t *testing.T, s string) {
		got := FixText(s)
		if !utf8.ValidString(got) {
			t.Fatalf("FixText(%q) = %q: invalid UTF-8", s, got)
		}
	})
}

// The fast paths assume where the table keys lie.
func TestTableRanges(t *testing.T) {
	for _, p := range categoryPairs {
		if r := rune(p[0]); r >= 0x2600 && r < 0xF8FF {
			t.Errorf("categorised U+%04X falls in the gap categories() skips", r)
		}
	}
	for r := range ligatures {
		if !isLigatureCandidate(r) || utf8.RuneLen(r) != 2 && r < 0xFB00 {
			t.Errorf("ligature U+%04X outside the prefilter", r)
		}
	}
	for r := range widthMap {
		if !isWidthCandidate(r) {
			t.Errorf("width form U+%04X outside the prefilter", r)
		}
	}
	for _, p := range categoryPairs {
		if got := categories(rune(p[0])); got != p[1] {
			t.Errorf("categories(U+%04X) = %x, want %x", p[0], got, p[1])
		}
	}
}
