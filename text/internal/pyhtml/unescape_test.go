package pyhtml

import "testing"

// Expected values are Python 3.11's html.unescape.
func TestUnescape(t *testing.T) {
	cases := []struct{ in, want string }{
		{"&amp;", "&"},
		{"&amp", "&"},            // legacy name without ';'
		{"&ampfoo;", "&foo;"},    // longest legacy prefix
		{"&amp-x", "&-x"},        // names run past [A-Za-z0-9] in Python
		{"&notit;", "\u00acit;"}, // &not + "it;"
		{"&notin;", "\u2209"},    // the whole name wins
		{"&#39;", "'"},           //
		{"&#x27", "'"},           // no ';'
		{"&#0;", "\ufffd"},       //
		{"&#1;", ""},             // invalid code points vanish
		{"&#128;", "\u20ac"},     // windows-1252 remap
		{"&#x81;", "\u0081"},     // undefined in windows-1252: itself
		{"&#xD800;", "\ufffd"},   // surrogate
		{"&#1114112;", "\ufffd"}, // past U+10FFFF
		{"&#99999999999999999999;", "\ufffd"},
		{"&#13;", "\r"},
		{"&#xfdd0;", ""},
		{"&#x;", "&#x;"},
		{"&#;", "&#;"},
		{"& ", "& "},
		{"&;", "&;"},
		{"&Eacute;", "\u00c9"},
		{"&eacute", "\u00e9"},
		{"&abcdefghijklmnopqrstuvwxyz0123456789;", "&abcdefghijklmnopqrstuvwxyz0123456789;"},
		{"&amp;lt;b&amp;gt;", "&lt;b&gt;"}, // one level per call
		{"a&b", "a&b"},
		{"&\u00e9;", "&\u00e9;"},
		{"&lt\u00e9", "<\u00e9"},
		{"no entities", "no entities"},
	}
	for _, c := range cases {
		if got := Unescape(c.in); got != c.want {
			t.Errorf("Unescape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLookup(t *testing.T) {
	if v, ok := Lookup("amp;"); !ok || v != "&" {
		t.Errorf(`Lookup("amp;") = %q, %v`, v, ok)
	}
	if _, ok := Lookup("nosuchentity;"); ok {
		t.Error("Lookup found an entity that does not exist")
	}
	if n := len(html5); n != 2231 {
		t.Errorf("html5 has %d entities, Python 3.11 has 2231", n)
	}
}
