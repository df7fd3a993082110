#!/usr/bin/env python3
"""Writes text/wordpiece/testdata/expected.jsonl.gz: the ids Hugging Face's
BERT tokenizers give for the ROCO captions and for adversarial text, with the
vocabulary in text/wordpiece/testdata (BiomedBERT's, as BiomedCLIP uses it).

    refs.py CAPTIONS_DIR   (the folder holding test/radiology/captions.txt, ...)

Each record's "ids" are what OpenCLIP's HFTokenizer returns for BiomedCLIP
(context 256): its default clean="whitespace" (ftfy.fix_text, html.unescape
twice, strip, whitespace collapse), then the fast tokenizer called with
max_length=256, padding="max_length", truncation=True. OpenCLIP 2.32.0's
HFTokenizer calls batch_encode_plus, which transformers 5 removed, so that
call is repeated here with __call__ (the same encoding path); the trailing
[PAD]s are left out (the test checks the padding itself). Other fields:

  raw    the fast tokenizer on the text as given: no OpenCLIP cleaning, no
         [CLS]/[SEP], no truncation (BERT's own normalisation only);
  ids16  as ids with context length 16 (adversarial set only: truncation
         on every long text);
  slow   BertTokenizerLegacy (the pure-Python tokenizer), where it differs
         from the fast one: a record of where the two disagree, not a target.

The "codepoints" records cover every code point c (surrogates aside), in
blocks of 4,096: "sha256" is the first 16 hex digits of the SHA-256 of, for
each c in order, the raw ids of c, the raw ids of "x" + c + "y", and the
OpenCLIP ids of "x" + c + "y" without their [PAD]s, each as little-endian
int32s followed by -1.

Run it through gen.sh, which pins the libraries.
"""

import gzip
import hashlib
import html
import json
import os
import random
import struct
import sys
import unicodedata

import ftfy
import tokenizers
import transformers
from transformers import BertTokenizer
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.join(os.path.dirname(HERE), "testdata")
CONTEXT = 256
ROCO = ["test/radiology", "test/non-radiology", "validation/non-radiology"]


def openclip_clean(text):
    """open_clip.tokenizer._clean_whitespace (v2.32.0)."""
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text))
    text = text.strip()
    return " ".join(text.split()).strip()


def adversarial():
    """Hand-written traps: (name, text)."""
    long_word = "pneumonoultramicroscopicsilicovolcanoconiosis"
    cases = [
        ("empty", ""),
        ("spaces only", "   \t\n  "),
        ("plain caption", "Axial CT of the chest shows a 3.5 cm mass (arrow) in the right lower lobe."),
        ("upper case", "AXIAL T2-WEIGHTED MRI, FLAIR SEQUENCE"),
        ("accents", "Café naïve résumé São Paulo Ångström Øresund Łódź Dvořák façade coöperate"),
        ("combining accents", "Cafe\u0301 nai\u0308ve A\u030angstro\u0308m"),
        ("stacked marks", "a\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309 o\u0323\u0302 q\u0307\u0323"),
        ("marks out of order", "a\u0301\u0323 a\u0323\u0301 \u1d165\u1d16d\u0301 \u1d16d\u0301\u1d165"),
        ("Hangul tone marks", "\u302e\u302f \u1100\u302e\u302f"),
        ("Greek", "ΣΟΦΙΑΣ σοφίας Ὀδυσσεύς ΐ ΰ ς Σ"),
        ("Greek final sigma", "ΟΔΟΣ ΤΟΥ ΚΟΣΜΟΥ ΑΣ"),
        ("Turkish dotted I", "İstanbul İ ı DİYARBAKIR"),
        ("German sharp s", "STRASSE Straße ẞ"),
        ("ligatures and compatibility", "ﬁbrosis ﬂow ﬀ Ｆｕｌｌｗｉｄｔｈ ² ½ ℃ Ⅳ ①"),
        ("Cyrillic", "Рентгенограмма органов грудной клетки Ёё Йй"),
        ("Arabic", "الأشعة السينية للصدر ـ ًٌٍَُِّْ"),
        ("Hebrew", "צילום חזה בְּרֵאשִׁית"),
        ("Devanagari", "छाती का एक्स-रे क़ ड़ॅ"),
        ("Thai", "เอกซเรย์ทรวงอก"),
        ("CJK", "胸部X线片显示右下肺叶肿块"),
        ("CJK mixed", "CT検査で肺に結節影を認めた（矢印）。"),
        ("CJK extensions", "\u3400\u4dbf\u4e00\u9fff\U00020000\U0002a6df\U0002a700\U0002b73f\U0002b740\U0002b81f"),
        ("CJK extension E boundary", "x\U0002b820y x\U0002b91fy x\U0002b920y x\U0002ceafy"),
        ("CJK compatibility", "\uf900\ufa0e\ufaff \U0002f800\U0002fa1d"),
        ("kana", "ひらがな カタカナ ｶﾀｶﾅ"),
        ("Hangul", "흉부 엑스레이 사진 ᄀᄁ"),
        ("emoji", "😀 🫁 🩻 👍🏽 ❤️ 👨‍⚕️ 🇺🇸 🥰"),
        ("emoji glued", "lung🫁scan😀ok"),
        ("zero width", "a\u200bb c\u200cd e\u200df g\u2060h \ufeffi j\u00adk"),
        ("bidi controls", "a\u202ab\u202cc \u202ed\u202c \u061c e\u200ef"),
        ("control characters", "a\x00b\x01c\x07d\x1be\x7ff\x85g"),
        ("separators", "a\x1cb\x1dc\x1ed\x1fe"),
        ("line and paragraph separators", "a\u2028b\u2029c\x0bd\x0ce"),
        ("unicode spaces", "a\u00a0b\u1680c\u2000d\u2003e\u2009f\u200ag\u202fh\u205fi\u3000j\u180ek"),
        ("replacement character", "a\ufffdb \ufffd"),
        ("private use", "a\ue000b \U000f0000 \U0010fffd"),
        ("unassigned", "a\u0378b \U0001fbff \U000e0002 \U0003ffff"),
        ("newer than the tables", "\u08c7\u0b55 \U00011938 \U0001f972 \ua7cb\ua7cc"),
        ("punctuation", "a,b.c;d:e!f?g-h(i)j[k]l{m}n'o\"p`q~r@s#t$u%v^w&x*y_z+1=2|3\\4/5<6>7"),
        ("unicode punctuation", "«a» „b“ ‹c› ¡d! ¿e? f—g–h ‐i‑j ⁂ ※ ‰ § ¶ † ‡ • … ⸮ ⹃ ⹎ ⹏"),
        ("symbols", "± × ÷ ° µ μ Ω ℓ → ← ↔ ⇒ ∞ ≈ ≠ ≤ ≥ √ ∑ ∫ ™ © ® $ € £ ¥"),
        ("math alphanumerics", "𝕍 𝐀𝐁𝐂 𝑥𝑦𝑧 𝟎𝟏𝟐"),
        ("html entities", "&amp; &lt;b&gt;bold&lt;/b&gt; &#39;quoted&#39; &#x27;hex&#x27; &nbsp;x &amp;amp;lt; &copy; &unknown;"),
        ("mojibake", "donâ€™t cafÃ© Ã©tude â€œquotedâ€\x9d"),
        ("special tokens", "[CLS] a [SEP] b [PAD] c [MASK] d [UNK]"),
        ("special tokens glued", "a[MASK]b[SEP][SEP]c"),
        ("special tokens lower case", "[mask] [cls] [Sep]"),
        ("special tokens broken", "[MASK [ MASK] [[MASK]] [MASK]]"),
        ("word pieces", "unhappiness hyperechogenicity immunohistochemistry adenocarcinomatous"),
        ("unknown piece", "lungqzxvb chest"),
        ("digits", "1234567890 3.14159 1,000,000 10^-6 2x2 T1W1"),
        ("long word 100", "a" * 100),
        ("long word 101", "a" * 101),
        ("long word after stripping", "e\u0301" * 60 + " " + "e\u0301" * 101),
        ("long word of pieces", long_word * 2),
        ("long word 2200", "x" * 2200),
        ("long accented word", "é" * 100 + " " + "é" * 101),
        ("long CJK run", "胸" * 300),
        ("longer than context", " ".join(["word"] * 300)),
        ("longer than context, pieces at the cut", " ".join([long_word] * 40)),
        ("long caption", " ".join(["Axial CT of the chest shows a 3.5 cm mass (arrow) in the right lower lobe."] * 30)),
        ("many punctuation", "!?" * 200),
        ("tabs and newlines", "line one\nline two\r\nline\tthree\r"),
        ("leading and trailing space", "   padded caption   "),
    ]
    return cases


# Pools the fuzz strings draw code points from; each names what it probes.
POOLS = [
    [chr(c) for c in range(0x20, 0x7F)],                       # printable ASCII
    [chr(c) for c in range(0x00, 0x20)] + ["\x7f"],            # C0 controls
    [chr(c) for c in range(0x80, 0x250)],                      # C1, Latin-1, Latin Extended
    [chr(c) for c in range(0x300, 0x370)],                     # combining diacritics
    [chr(c) for c in range(0x370, 0x530)],                     # Greek, Cyrillic
    [chr(c) for c in range(0x590, 0x700)],                     # Hebrew, Arabic
    [chr(c) for c in range(0x900, 0xE80)],                     # Indic scripts, Thai, Lao
    [chr(c) for c in range(0x1000, 0x1200)],                   # Myanmar, Georgian, Hangul Jamo
    [chr(c) for c in range(0x1AB0, 0x1B00)] + [chr(c) for c in range(0x1DC0, 0x1E00)],  # newer combining marks
    [chr(c) for c in range(0x1E00, 0x2000)],                   # Latin/Greek extended (precomposed)
    [chr(c) for c in range(0x2000, 0x2070)],                   # spaces, format, general punctuation
    [chr(c) for c in range(0x2070, 0x2C00)],                   # symbols, arrows, math, boxes
    [chr(c) for c in range(0x2C00, 0x2E80)],                   # Glagolitic, Coptic, supplemental punctuation
    [chr(c) for c in range(0x2E80, 0x3100)],                   # CJK radicals, symbols, kana
    [chr(c) for c in range(0x3400, 0x3410)] + [chr(c) for c in range(0x4E00, 0x4E80)],  # CJK ideographs
    [chr(c) for c in range(0xA640, 0xA800)],                   # Cyrillic ext, Latin ext-D (new case pairs)
    [chr(c) for c in range(0xAC00, 0xAC80)],                   # Hangul syllables
    [chr(c) for c in range(0xD7B0, 0xD800)] + [chr(c) for c in range(0xE000, 0xE010)],  # Jamo ext B, private use
    [chr(c) for c in range(0xF900, 0xFB50)],                   # CJK compatibility, presentation forms
    [chr(c) for c in range(0xFE00, 0x10000)],                  # variation selectors, half/fullwidth, specials
    [chr(c) for c in range(0x11000, 0x11A00)],                 # Brahmic scripts of the SMP (newer marks, punctuation)
    [chr(c) for c in range(0x1D100, 0x1D250)],                 # musical symbols (marks with classes)
    [chr(c) for c in range(0x1D400, 0x1D800)],                 # mathematical alphanumerics
    [chr(c) for c in range(0x1F000, 0x1FB00)],                 # emoji and pictographs
    [chr(c) for c in range(0x20000, 0x20010)] + [chr(c) for c in range(0x2B810, 0x2B930)] + [chr(c) for c in range(0x2F800, 0x2F810)],
    [chr(c) for c in range(0xE0000, 0xE0080)] + [chr(c) for c in range(0xE0100, 0xE0110)],  # tags, VS supplement
    [chr(0x10000 * p + c) for p in (3, 4, 14, 15, 16) for c in (0, 1, 0xFFFD)],  # unassigned and private planes
    [" ", " ", "  ", "\t", "\n"],
    ["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "[", "]", "&amp;", "&lt;", "&#233;", "â€™", "Ã©"],
]


def fuzz(n, seed=20261204):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        pools = rng.sample(POOLS, rng.randint(1, 4))
        k = rng.randint(1, 40)
        out.append(("fuzz %d" % i, "".join(rng.choice(rng.choice(pools)) for _ in range(k))))
    return out


def roco(captions_dir):
    out = []
    for split in ROCO:
        path = os.path.join(captions_dir, split, "captions.txt")
        with open(path, encoding="utf-8", newline="") as f:
            for line in f.read().split("\n"):
                if not line:
                    continue
                key, text = line.split("\t", 1)
                out.append((split, key, text))
    return out


def codepoint_blocks(fast, block=4096):
    out = []
    for start in range(0, 0x110000, block):
        cps = [cp for cp in range(start, start + block) if not 0xD800 <= cp <= 0xDFFF]
        if not cps:
            continue
        alone = [chr(cp) for cp in cps]
        framed = ["x" + chr(cp) + "y" for cp in cps]
        raw1 = fast(alone, add_special_tokens=False)["input_ids"]
        raw2 = fast(framed, add_special_tokens=False)["input_ids"]
        enc = fast([openclip_clean(t) for t in framed])["input_ids"]
        h = hashlib.sha256()
        for seqs in zip(raw1, raw2, enc):
            for ids in seqs:
                h.update(struct.pack("<%di" % (len(ids) + 1), *ids, -1))
        out.append(("%06x" % start, h.hexdigest()[:16]))
    return out


def trim(ids, pad):
    while ids and ids[-1] == pad:
        ids = ids[:-1]
    return ids


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    captions_dir = sys.argv[1]
    fast = BertTokenizer.from_pretrained(TESTDATA)
    slow = BertTokenizerLegacy.from_pretrained(TESTDATA)
    assert fast.is_fast and not slow.is_fast
    pad = fast.pad_token_id

    def openclip(tok, texts, context):
        cleaned = [openclip_clean(t) for t in texts]
        enc = tok(cleaned, max_length=context, padding="max_length", truncation=True)["input_ids"]
        for ids in enc:
            assert len(ids) == context
        return [trim(ids, pad) for ids in enc]

    with open(os.path.join(TESTDATA, "vocab.txt"), "rb") as f:
        vocab_sha = hashlib.sha256(f.read()).hexdigest()
    records = []
    stats = {}

    def add(set_name, keys, texts, with_text, raw_too, short_too):
        ids = openclip(fast, texts, CONTEXT)
        slow_ids = openclip(slow, texts, CONTEXT)
        differ = 0
        for i, key in enumerate(keys):
            rec = {"set": set_name, "key": key}
            if with_text:
                rec["text"] = texts[i]
            rec["ids"] = ids[i]
            if slow_ids[i] != ids[i]:
                rec["slow"] = slow_ids[i]
                differ += 1
            records.append(rec)
        first = len(records) - len(keys)
        if raw_too:
            raw = fast(texts, add_special_tokens=False)["input_ids"]
            for j, r in enumerate(raw):
                records[first + j]["raw"] = r
        if short_too:
            for j, r in enumerate(openclip(fast, texts, 16)):
                records[first + j]["ids16"] = r
        stats[set_name] = {"texts": len(keys), "slow_differs": differ}

    caps = roco(captions_dir)
    for split in ROCO:
        rows = [(k, t) for s, k, t in caps if s == split]
        add("roco/" + split, [k for k, _ in rows], [t for _, t in rows], False, False, False)
    adv = adversarial()
    add("adversarial", [n for n, _ in adv], [t for _, t in adv], True, True, True)
    fz = fuzz(3000)
    add("fuzz", [n for n, _ in fz], [t for _, t in fz], True, True, False)

    blocks = codepoint_blocks(fast)
    for key, digest in blocks:
        records.append({"set": "codepoints", "key": key, "sha256": digest})
    stats["codepoints"] = {"blocks": len(blocks)}

    meta = {
        "generator": "text/wordpiece/gen/refs.py",
        "python": sys.version.split()[0],
        "unicodedata": unicodedata.unidata_version,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "ftfy": ftfy.__version__,
        "vocab_sha256": vocab_sha,
        "context_length": CONTEXT,
        "pad_id": pad,
        "sets": stats,
    }
    out = os.path.join(TESTDATA, "expected.jsonl.gz")
    with open(out, "wb") as raw_f:
        # mtime=0: the same inputs give the same bytes.
        with gzip.GzipFile(fileobj=raw_f, mode="wb", compresslevel=9, mtime=0) as f:
            f.write((json.dumps({"meta": meta}, ensure_ascii=False) + "\n").encode("utf-8"))
            for rec in records:
                f.write((json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"))
    print(json.dumps(meta, indent=1))
    print("wrote", os.path.relpath(out, os.path.dirname(os.path.dirname(os.path.dirname(HERE)))), len(records), "records")


if __name__ == "__main__":
    main()
