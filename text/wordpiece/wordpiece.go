// Package wordpiece is BERT's uncased WordPiece tokenizer, giving the ids
// of Hugging Face's BertTokenizerFast (the tokenizer of BiomedCLIP's
// PubMedBERT/BiomedBERT text tower) as OpenCLIP's HFTokenizer calls it.
//
// Encode follows HFTokenizer (open_clip v2.32.0, clean="whitespace"):
//  1. OpenCLIP's cleaning: ftfy.fix_text, html.unescape twice, whitespace
//     collapsed to single spaces;
//  2. the special tokens [PAD] [UNK] [CLS] [SEP] [MASK] are split out of
//     the raw text, case-sensitively, and map to their ids;
//  3. BertNormalizer: control characters removed, whitespace made ' ',
//     spaces around CJK ideographs, NFD with non-spacing marks removed
//     (accents stripped), lowercase, code point by code point;
//  4. BertPreTokenizer: split on whitespace, each punctuation character a
//     word of its own;
//  5. WordPiece: greedy longest match first, continuation pieces prefixed
//     "##"; a word with no segmentation, or longer than 100 characters,
//     becomes [UNK];
//  6. [CLS] ids [SEP], the ids truncated to the context length less two,
//     padded with [PAD].
//
// Character classes come from the tokenizers library itself (tables.go,
// see gen/tables.py), because its Rust code mixes Unicode versions: an old
// one for control, punctuation and mark categories (so characters newer
// than its tables are kept, and become [UNK]), a recent one for
// whitespace and lowercasing.
//
// The pure-Python BertTokenizer (BertTokenizerLegacy in transformers 5)
// differs from the fast one that OpenCLIP loads, and this package follows
// the fast one: Python's unicodedata decides the character classes (it
// removes unassigned code points, for one), Greek capital sigma lowercases
// to final sigma at the end of a word, and CJK Extension E starts at
// U+2B820 rather than U+2B920. None of this changes a ROCO caption.
//
//	tok, err := wordpiece.New("vocab.txt", 256)
//	ids := tok.Encode("Axial CT of the chest") // [2 9438 3369 1927 1920 8475 3 0 0 ...]
package wordpiece

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/bmca/bmca/text/internal/batch"
	"github.com/bmca/bmca/text/internal/clean"
)

// maxInputChars is WordPiece's max_input_chars_per_word: a longer word
// (counted in code points after normalisation) is [UNK].
const maxInputChars = 100

// Tokenizer is BERT's uncased WordPiece tokenizer over one vocabulary. It
// is safe for concurrent use.
type Tokenizer struct {
	contextLength int
	v             *vocabulary
}

// New loads the vocabulary at vocabPath (a BERT vocab.txt, or a Hugging
// Face tokenizer folder holding one) and returns a tokenizer that produces
// contextLength ids per text (BiomedCLIP: 256).
func New(vocabPath string, contextLength int) (*Tokenizer, error) {
	if contextLength < 2 {
		return nil, fmt.Errorf("wordpiece: context length %d is too short (need at least 2 for [CLS] and [SEP])", contextLength)
	}
	v, err := readVocabulary(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("wordpiece: %w", err)
	}
	return &Tokenizer{contextLength: contextLength, v: v}, nil
}

// ContextLength is the number of ids Encode returns.
func (t *Tokenizer) ContextLength() int { return t.contextLength }

// VocabSize is one more than the largest id (the vocabulary's line count).
func (t *Tokenizer) VocabSize() int { return t.v.size }

// CLS returns the id of [CLS], the first id of every encoding.
func (t *Tokenizer) CLS() int32 { return t.v.cls }

// SEP returns the id of [SEP], which ends every encoding.
func (t *Tokenizer) SEP() int32 { return t.v.sep }

// Pad returns the id of [PAD], which fills an encoding after [SEP].
func (t *Tokenizer) Pad() int32 { return t.v.pad }

// Encode returns ContextLength ids: [CLS], the ids of the cleaned text cut
// to ContextLength-2, [SEP], then [PAD]s.
func (t *Tokenizer) Encode(text string) []int32 {
	out := make([]int32, t.contextLength)
	t.EncodeTo(out, text)
	return out
}

// EncodeTo writes Encode(text) into dst, which must hold ContextLength ids.
func (t *Tokenizer) EncodeTo(dst []int32, text string) {
	dst = dst[:t.contextLength]
	// appendIDs stays within its limit, so the body is written in place.
	body := t.appendIDs(dst[1:1], clean.Whitespace(text), t.contextLength-2)
	dst[0] = t.v.cls
	n := 1 + len(body)
	dst[n] = t.v.sep
	for i := n + 1; i < len(dst); i++ {
		dst[i] = t.v.pad
	}
}

// EncodeBatch encodes texts into one row-major [len(texts), ContextLength]
// slice, spreading the work over GOMAXPROCS goroutines.
func (t *Tokenizer) EncodeBatch(texts []string) []int32 {
	out := make([]int32, len(texts)*t.contextLength)
	batch.Rows(out, len(texts), t.contextLength, func(dst []int32, i int) { t.EncodeTo(dst, texts[i]) })
	return out
}

// IDs returns the ids Hugging Face's tokenizer gives text with
// add_special_tokens=False: BERT's own normalisation only (no OpenCLIP
// cleaning), no [CLS] or [SEP], no truncation.
func (t *Tokenizer) IDs(text string) []int32 {
	return t.appendIDs(nil, text, int(^uint(0)>>1))
}

// appendIDs appends the ids of text to dst, never holding more than limit
// ids (the truncation keeps the first ones).
func (t *Tokenizer) appendIDs(dst []int32, text string, limit int) []int32 {
	for len(dst) < limit {
		i, sp := t.nextSpecial(text)
		dst = t.appendSegment(dst, text[:i], limit)
		if sp == nil || len(dst) >= limit {
			break
		}
		dst = append(dst, sp.id)
		text = text[i+len(sp.text):]
	}
	return dst
}

// nextSpecial finds the leftmost special token in s (the longest, should
// two start there), or returns len(s), nil.
func (t *Tokenizer) nextSpecial(s string) (int, *special) {
	for off := 0; ; {
		i := strings.IndexByte(s[off:], '[')
		if i < 0 {
			return len(s), nil
		}
		off += i
		var best *special
		for k := range t.v.specials {
			sp := &t.v.specials[k]
			if strings.HasPrefix(s[off:], sp.text) && (best == nil || len(sp.text) > len(best.text)) {
				best = sp
			}
		}
		if best != nil {
			return off, best
		}
		off++
	}
}

// appendSegment appends the ids of a text without special tokens.
func (t *Tokenizer) appendSegment(dst []int32, s string, limit int) []int32 {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return t.appendUnicode(dst, s, limit)
		}
	}
	return t.appendASCII(dst, s, limit)
}

// appendASCII is appendSegment for ASCII text, where normalising is
// dropping control characters and lowercasing, byte by byte.
func (t *Tokenizer) appendASCII(dst []int32, s string, limit int) []int32 {
	var buf [64]byte
	word := buf[:0]
	for i := 0; i < len(s) && len(dst) < limit; i++ {
		c := s[i]
		f := asciiFlags[c]
		switch {
		case f&flagDrop != 0:
		case f&flagSpace != 0:
			dst = t.appendWord(dst, word, len(word), limit)
			word = word[:0]
		case f&flagPunct != 0:
			dst = t.appendWord(dst, word, len(word), limit)
			word = append(word[:0], c)
			dst = t.appendWord(dst, word, 1, limit)
			word = word[:0]
		default:
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			word = append(word, c)
		}
	}
	return t.appendWord(dst, word, len(word), limit)
}

// chunkBytes is how much text appendUnicode normalises at a time (it cuts
// after a space, where no word or NFD reordering spans the cut), so that a
// long text's work stops soon after its ids fill the context.
const chunkBytes = 1024

// appendUnicode is appendSegment for any text: normalise, then split.
func (t *Tokenizer) appendUnicode(dst []int32, s string, limit int) []int32 {
	for len(s) > 0 && len(dst) < limit {
		cut := len(s)
		if cut > chunkBytes {
			if i := strings.IndexByte(s[chunkBytes:], ' '); i >= 0 {
				cut = chunkBytes + i + 1
			}
		}
		dst = t.appendNormalized(dst, s[:cut], limit)
		s = s[cut:]
	}
	return dst
}

// appendNormalized normalises s and appends the ids of its words.
func (t *Tokenizer) appendNormalized(dst []int32, s string, limit int) []int32 {
	// Stack buffers serve captions; longer texts grow them on the heap.
	var normBuf, scratch [256]rune
	var wordBuf [64]byte
	norm, _ := normalize(normBuf[:0], scratch[:0], s)
	word := wordBuf[:0]
	n := 0 // code points in word
	for _, r := range norm {
		if len(dst) >= limit {
			return dst
		}
		f := flagsOf(r)
		switch {
		case f&flagSpace != 0:
			dst = t.appendWord(dst, word, n, limit)
			word, n = word[:0], 0
		case f&flagPunct != 0:
			dst = t.appendWord(dst, word, n, limit)
			word = utf8.AppendRune(word[:0], r)
			dst = t.appendWord(dst, word, 1, limit)
			word, n = word[:0], 0
		default:
			word = utf8.AppendRune(word, r)
			n++
		}
	}
	return t.appendWord(dst, word, n, limit)
}

// appendWord appends the WordPiece ids of one normalised word of n code
// points: the longest vocabulary entry that starts it, then the longest
// "##" entry at each following position; [UNK] for the whole word when a
// position has none, or when the word is too long.
func (t *Tokenizer) appendWord(dst []int32, word []byte, n, limit int) []int32 {
	if len(word) == 0 {
		return dst
	}
	start := len(dst)
	if n <= maxInputChars {
		for pos, pieces := 0, t.v.word; ; pieces = t.v.cont {
			id, size := pieces.longest(word[pos:])
			if size == 0 {
				break // no piece here: the word is [UNK]
			}
			if len(dst) < limit {
				dst = append(dst, id)
			}
			if pos += size; pos == len(word) {
				return dst
			}
		}
	}
	dst = dst[:start]
	if start < limit {
		dst = append(dst, t.v.unk)
	}
	return dst
}
