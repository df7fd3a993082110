package tokenizer

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/bmca/bmca/text/internal/batch"
	"github.com/bmca/bmca/text/internal/clean"
	"github.com/bmca/bmca/text/internal/pyuni"
)

// CLIP is OpenCLIP's SimpleTokenizer (clean="lower", no reduction mask):
// the byte-level BPE of OpenAI's CLIP over bpe_simple_vocab_16e6.txt.gz. It
// gives OpenCLIP's ids exactly, including its text cleaning (ftfy.fix_text,
// html.unescape twice, whitespace collapse, Python's lower()).
//
// A CLIP is safe for concurrent use; its word cache is shared.
//
//	tok, err := tokenizer.NewCLIP("bpe_simple_vocab_16e6.txt.gz", 77)
//	ids := tok.Encode("Axial CT of the chest") // [49406 ... 49407 0 0 ...]
type CLIP struct {
	contextLength int
	vocabSize     int
	sot, eot      int32
	model         *bpeModel
	cache         *bpeCache
	symbols       []string      // id → vocabulary string, for Decode
	symbolByte    map[rune]byte // bytes_to_unicode inverted, for Decode
}

// NewCLIP loads the vocabulary at vocabPath and returns a tokenizer that
// produces contextLength ids per text. vocabPath is OpenCLIP's
// bpe_simple_vocab_16e6.txt.gz, or a Hugging Face tokenizer folder holding
// vocab.json and merges.txt (or the path of that vocab.json).
func NewCLIP(vocabPath string, contextLength int) (*CLIP, error) {
	if contextLength < 2 {
		return nil, fmt.Errorf("tokenizer %s: context length %d is too short (need at least 2 for SOT and EOT)", NameCLIPBPE, contextLength)
	}
	v, err := loadVocabulary(vocabPath)
	if err != nil {
		return nil, err
	}
	m, err := newBPEModel(v)
	if err != nil {
		return nil, err
	}
	t := &CLIP{
		contextLength: contextLength, vocabSize: v.size, sot: v.sot, eot: v.eot,
		model: m, cache: newBPECache(),
		symbols: make([]string, v.size), symbolByte: make(map[rune]byte, 256),
	}
	for s, id := range v.encoder {
		t.symbols[id] = s
	}
	for b, s := range byteSymbols() {
		r, _ := utf8.DecodeRuneInString(s)
		t.symbolByte[r] = byte(b)
	}
	return t, nil
}

// ContextLength implements Tokenizer.
func (t *CLIP) ContextLength() int { return t.contextLength }

// VocabSize implements Tokenizer (49,408 for CLIP's vocabulary).
func (t *CLIP) VocabSize() int { return t.vocabSize }

// SOT returns the <start_of_text> id (49406).
func (t *CLIP) SOT() int32 { return t.sot }

// EOT returns the <end_of_text> id (49407).
func (t *CLIP) EOT() int32 { return t.eot }

// Encode implements Tokenizer: [SOT] + BPE(clean(text)) + [EOT], cut to
// ContextLength with EOT forced into the last slot, then zero padding.
func (t *CLIP) Encode(text string) []int32 {
	out := make([]int32, t.contextLength)
	t.EncodeTo(out, text)
	return out
}

// EncodeTo writes Encode(text) into dst, which must hold ContextLength ids.
func (t *CLIP) EncodeTo(dst []int32, text string) {
	dst = dst[:t.contextLength]
	body := t.appendIDs(dst[1:1], text, t.contextLength-2)
	dst[0] = t.sot
	n := 1 + len(body)
	dst[n] = t.eot
	clear(dst[n+1:])
}

// EncodeBatch encodes texts into one row-major [len(texts), ContextLength]
// slice, spreading the work over GOMAXPROCS goroutines.
func (t *CLIP) EncodeBatch(texts []string) []int32 {
	out := make([]int32, len(texts)*t.contextLength)
	batch.Rows(out, len(texts), t.contextLength, func(dst []int32, i int) { t.EncodeTo(dst, texts[i]) })
	return out
}

// Tokens returns SimpleTokenizer.encode(text): the BPE ids of the cleaned
// text, without SOT, EOT, truncation or padding.
func (t *CLIP) Tokens(text string) []int32 {
	return t.appendIDs(nil, text, -1)
}

// appendIDs appends the ids of text to dst, stopping once dst holds limit
// ids (limit < 0: no limit). Only the first ContextLength-2 ids of a text
// reach the output, and stopping there bounds the work on long texts.
func (t *CLIP) appendIDs(dst []int32, text string, limit int) []int32 {
	if limit < 0 {
		limit = int(^uint(0) >> 1)
	}
	// Plain ASCII text (most captions) needs no ftfy, no unescaping and no
	// whitespace collapse (tokens never span whitespace): it is split as it
	// is by a byte loop, and each word lower-cased on its own.
	if clean.PlainASCII(text) {
		return t.appendPlain(dst, text, limit)
	}
	s := clean.Lower(text)
	for i := 0; i < len(s) && len(dst) < limit; {
		start, end := nextPretoken(s, i)
		if start == end {
			break
		}
		i = end
		dst = appendLimited(dst, t.wordIDs(nil, s[start:end]), limit)
	}
	return dst
}

// appendPlain is the split of clean.PlainASCII text, whose classes are simple:
// letters, digits, whitespace and everything else.
func (t *CLIP) appendPlain(dst []int32, s string, limit int) []int32 {
	var lower [cacheMaxWordLen]byte
	for i := 0; i < len(s) && len(dst) < limit; {
		start := i
		c := s[i]
		switch asciiClass[c] {
		case classLetter:
			i++
			for i < len(s) && asciiClass[s[i]] == classLetter {
				i++
			}
		case classDigit:
			i++
		case classOther:
			n := 0
			if c == '<' {
				n = max(literalPrefix(s[i:], sotText), literalPrefix(s[i:], eotText))
			} else if c == '\'' {
				for _, suffix := range contractions {
					if n = literalPrefix(s[i+1:], suffix); n > 0 {
						n++
						break
					}
				}
			}
			if n > 0 {
				i += n
				break
			}
			i++
			for i < len(s) && asciiClass[s[i]] == classOther {
				i++
			}
		default: // whitespace
			i++
			continue
		}
		word := s[start:i]
		var ids []int32
		switch {
		case !hasUpper(word):
			ids = t.wordIDs(nil, word)
		case len(word) <= len(lower):
			b := lower[:len(word)]
			for k := range b {
				b[k] = toLowerASCII(word[k])
			}
			ids = t.wordIDs(b, "")
		default:
			ids = t.wordIDs(nil, strings.ToLower(word)) // ASCII: Go and Python agree
		}
		dst = appendLimited(dst, ids, limit)
	}
	return dst
}

// appendLimited appends ids to dst without going past limit ids.
func appendLimited(dst, ids []int32, limit int) []int32 {
	if len(dst)+len(ids) > limit {
		ids = ids[:limit-len(dst)]
	}
	return append(dst, ids...)
}

// ASCII character classes of the split pattern (from pyuni.Flags).
const (
	classSpace = iota
	classLetter
	classDigit
	classOther
)

var asciiClass = func() (t [256]uint8) {
	for c := range 128 {
		switch f := pyuni.Flags(rune(c)); {
		case f&pyuni.FlagLetter != 0:
			t[c] = classLetter
		case f&pyuni.FlagNumber != 0:
			t[c] = classDigit
		case f&pyuni.FlagOther != 0:
			t[c] = classOther
		}
	}
	return t
}()

// wordIDs returns the ids of one pre-token, given as bytes (when non-nil)
// or as a string, from the cache or by BPE.
func (t *CLIP) wordIDs(b []byte, word string) []int32 {
	var ids []int32
	var ok bool
	if b != nil {
		ids, ok = t.cache.get(b)
	} else {
		ids, ok = t.cache.getString(word)
	}
	if ok {
		return ids
	}
	if b != nil {
		word = string(b)
	}
	switch word {
	case sotText:
		ids = []int32{t.sot}
	case eotText:
		ids = []int32{t.eot}
	default:
		ids = t.model.appendWord(nil, word)
	}
	t.cache.put(word, ids)
	return ids
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

func toLowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// Clean is OpenCLIP's text cleaning for SimpleTokenizer (clean="lower"):
// ftfy.fix_text, html.unescape twice, strip, " ".join(text.split()),
// lower().
func Clean(text string) string {
	return clean.Lower(text)
}

// Decode is SimpleTokenizer.decode: the ids' strings joined, byte symbols
// turned back into bytes, invalid UTF-8 replaced by U+FFFD and every "</w>"
// turned into a space. Ids outside the vocabulary are skipped. It serves
// debugging and display; nothing on the data path uses it.
func (t *CLIP) Decode(ids []int32) string {
	var raw []byte
	for _, id := range ids {
		if id < 0 || int(id) >= len(t.symbols) {
			continue
		}
		for _, r := range t.symbols[id] {
			if b, ok := t.symbolByte[r]; ok {
				raw = append(raw, b)
			}
		}
	}
	return strings.ReplaceAll(strings.ToValidUTF8(string(raw), "\uFFFD"), "</w>", " ")
}
