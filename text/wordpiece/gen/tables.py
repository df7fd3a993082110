#!/usr/bin/env python3
"""Writes text/wordpiece/tables.go: the character classes of Hugging Face's
BERT tokenizer, read out of the `tokenizers` library itself.

BertTokenizerFast (what OpenCLIP's HFTokenizer loads) runs in Rust, and its
idea of a character mixes three Unicode versions: the `unicode_categories`
crate (control, punctuation, non-spacing marks; an old Unicode), the
`unicode-normalization-alignments` crate (NFD) and the Rust standard library
(whitespace, lowercasing; a recent Unicode). Neither Go's unicode package nor
Python's unicodedata agrees with that mix, so every table is obtained by
asking the library about each code point:

  flags       BertNormalizer's clean_text (drop, or turn into a space), its
              Chinese-character spacing, its accent stripping (which drops
              non-spacing marks after NFD; the StripAccents normalizer drops
              every combining mark and is not what BERT uses), and
              BertPreTokenizer's punctuation;
  decomp      NFD of each code point (Hangul syllables are algorithmic);
  ccc         the canonical combining classes that NFD reorders by: Python's
              unicodedata.combining values, kept only where the library
              reorders the code point at all (a mark newer than its tables has
              class 0 there);
  lower       Lowercase of each code point.

Run it through gen.sh (which pins the library); then gofmt the output.
"""

import os
import sys
import unicodedata

import tokenizers
from tokenizers import normalizers, pre_tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]

FLAG_DROP, FLAG_SPACE, FLAG_CHINESE, FLAG_PUNCT, FLAG_MARK = 1, 2, 4, 8, 16

clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
chinese = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False, lowercase=False)
strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
nfd = normalizers.NFD()
lower = normalizers.Lowercase()
pre = pre_tokenizers.BertPreTokenizer()


def flags(cp):
    ch = chr(cp)
    f = 0
    c = clean.normalize_str(ch)
    if c == "":
        f |= FLAG_DROP
    elif c == " ":
        f |= FLAG_SPACE
    else:
        assert c == ch, (hex(cp), c)
    h = chinese.normalize_str(ch)
    if h == " " + ch + " ":
        f |= FLAG_CHINESE
    else:
        assert h == ch, hex(cp)
    parts = [p for p, _ in pre.pre_tokenize_str("a" + ch + "a")]
    if parts == ["a", ch, "a"]:
        f |= FLAG_PUNCT
    elif parts == ["a", "a"]:
        # The pre-tokenizer's whitespace must be clean_text's for every code
        # point clean_text keeps: the tables hold one flag for both.
        assert f & (FLAG_SPACE | FLAG_DROP), hex(cp)
    else:
        assert parts == ["a" + ch + "a"], (hex(cp), parts)
        assert not f & FLAG_SPACE, hex(cp)
    # Only code points NFD leaves alone reach the mark filter; the flag of
    # one that NFD changes is never read, and left clear.
    if nfd.normalize_str(ch) == ch:
        s = strip.normalize_str(ch)
        if s == "":
            f |= FLAG_MARK
        else:
            assert s == ch, hex(cp)
    return f


def hangul(cp):
    s = cp - 0xAC00
    out = chr(0x1100 + s // 588) + chr(0x1161 + (s % 588) // 28)
    if s % 28:
        out += chr(0x11A7 + s % 28)
    return out


def go_str(s):
    out = ['"']
    for ch in s:
        cp = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= cp < 0x7F:
            out.append(ch)
        elif cp < 0x10000:
            out.append("\\u%04x" % cp)
        else:
            out.append("\\U%08x" % cp)
    out.append('"')
    return "".join(out)


def wrap(items, per_line=8):
    return "\n".join("\t" + ", ".join(items[i : i + per_line]) + "," for i in range(0, len(items), per_line))


def main():
    runs, prev = [], None
    for cp in range(0x110000):
        f = FLAG_DROP if 0xD800 <= cp <= 0xDFFF else flags(cp)
        if f != prev:
            runs.append((cp, f))
            prev = f

    decomp, ccc, lows, lower_multi = [], [], [], []
    zeroed = 0
    for cp in ALL:
        ch = chr(cp)
        d = nfd.normalize_str(ch)
        if 0xAC00 <= cp <= 0xD7A3:
            assert d == hangul(cp), hex(cp)
        elif d != ch:
            decomp.append((cp, d))
        else:
            # Does NFD move ch after a class-1 mark, or a class-240 mark after ch?
            moved = nfd.normalize_str(ch + "\u0334") == "\u0334" + ch or nfd.normalize_str("\u0345" + ch) == ch + "\u0345"
            py = unicodedata.combining(ch)
            if moved:
                assert py, hex(cp)
                ccc.append((cp, py))
            elif py:
                zeroed += 1
        lo = lower.normalize_str(ch)
        if lo != ch:
            if len(lo) == 1:
                lows.append((cp, ord(lo)))
            else:
                lower_multi.append((cp, lo))
    for cp, d in decomp:  # decompositions are full: nothing in them decomposes further
        assert all(nfd.normalize_str(c) == c for c in d), hex(cp)

    header = ("// Code generated by text/wordpiece/gen/tables.py from tokenizers %s "
              "(combining classes from Python %s, Unicode %s); DO NOT EDIT.\n\n") % (
        tokenizers.__version__, sys.version.split()[0], unicodedata.unidata_version)
    out = [header, "package wordpiece\n\n"]
    out.append("// TokenizersVersion is the Hugging Face tokenizers release these tables were read from.\n")
    out.append('const TokenizersVersion = "%s"\n\n' % tokenizers.__version__)
    out.append("// flagRuns holds start<<8 | flags: every code point from start up to the next\n")
    out.append("// run's start has these flags (see the flag constants).\n")
    out.append("var flagRuns = [...]uint32{\n" + wrap(["0x%x" % (cp << 8 | f) for cp, f in runs]) + "\n}\n\n")
    out.append("// decompTable holds each code point's full canonical decomposition, sorted\n")
    out.append("// (Hangul syllables are algorithmic).\n")
    out.append("var decompTable = [...]decomposition{\n" + wrap(["{0x%x, %s}" % (cp, go_str(d)) for cp, d in decomp], 4) + "\n}\n\n")
    out.append("// cccPairs holds code point<<8 | canonical combining class for every code point\n")
    out.append("// NFD reorders, sorted (%d marks that Python knows but the library does not are left out).\n" % zeroed)
    out.append("var cccPairs = [...]uint32{\n" + wrap(["0x%x" % (cp << 8 | c) for cp, c in ccc]) + "\n}\n\n")
    out.append("// lowerPairs maps a code point to its one-code-point lowercase, sorted.\n")
    out.append("var lowerPairs = [...][2]rune{\n" + wrap(["{0x%x, 0x%x}" % p for p in lows], 6) + "\n}\n\n")
    out.append("// lowerMulti holds the code points whose lowercase is longer than one code point.\n")
    out.append("var lowerMulti = map[rune]string{\n" + wrap(["0x%x: %s" % (cp, go_str(s)) for cp, s in lower_multi], 4) + "\n}\n")
    path = os.path.join(ROOT, "tables.go")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(out))
    print("wrote %s: %d flag runs, %d decompositions, %d combining classes (%d left out), %d+%d lowercase" % (
        os.path.relpath(path), len(runs), len(decomp), len(ccc), zeroed, len(lows), len(lower_multi)))


if __name__ == "__main__":
    main()
