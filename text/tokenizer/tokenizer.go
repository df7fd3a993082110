// Package tokenizer turns captions and prompts into fixed-length id sequences
// for the CLIP text tower.
//
// Every implementation follows OpenCLIP's convention: [SOT] + ids + [EOT],
// truncated to the context length with EOT forced into the last slot, then
// padding. For CLIP's tokenizers EOT is the largest id of the vocabulary and
// the padding 0, because OpenCLIP's own text tower pools at the argmax id;
// BERT's are [CLS] … [SEP] [PAD] …, for Hugging Face text towers, which
// pool [CLS] or average.
//
// CLIP (configs: "clip-bpe") is OpenCLIP's SimpleTokenizer, id for id; it
// needs OpenCLIP's vocabulary file, which bmca does not ship (see
// CLIPVocabSource). ByteLevel ("byte-level") needs none and serves the demo.
// "bert-wordpiece" is BERT's uncased WordPiece as OpenCLIP's HFTokenizer
// runs it (BiomedCLIP's tokenizer; see package wordpiece), over a vocab.txt.
//
//	tok, err := tokenizer.New(tokenizer.NameCLIPBPE, 77, "bpe_simple_vocab_16e6.txt.gz")
//	ids := tok.Encode("an H&E stained slide") // len 77
package tokenizer

import (
	"fmt"

	"github.com/bmca/bmca/text/wordpiece"
)

// Tokenizer encodes text into exactly ContextLength ids.
type Tokenizer interface {
	// Encode returns ContextLength() ids: SOT, the text's ids, EOT, then padding.
	Encode(text string) []int32
	// ContextLength is the fixed output length.
	ContextLength() int
	// VocabSize is one more than the largest id Encode can return.
	VocabSize() int
}

// BatchEncoder is a Tokenizer that encodes many texts at once faster than
// one by one (CLIP spreads them over goroutines).
type BatchEncoder interface {
	Tokenizer
	// EncodeBatch returns the row-major [len(texts), ContextLength] ids.
	EncodeBatch(texts []string) []int32
}

// EncodeBatch encodes texts into one row-major [len(texts), ContextLength] slice.
func EncodeBatch(tok Tokenizer, texts []string) []int32 {
	if b, ok := tok.(BatchEncoder); ok {
		return b.EncodeBatch(texts)
	}
	n := tok.ContextLength()
	out := make([]int32, 0, len(texts)*n)
	for _, t := range texts {
		out = append(out, tok.Encode(t)...)
	}
	return out
}

// pack wraps body in SOT/EOT, truncates and pads to contextLength, as OpenCLIP does.
func pack(body []int32, sot, eot int32, contextLength int) []int32 {
	out := make([]int32, contextLength)
	out[0] = sot
	n := copy(out[1:], body)
	if 1+n < contextLength {
		out[1+n] = eot
	} else {
		out[contextLength-1] = eot
	}
	return out
}

// Names of the tokenizers a configuration can choose.
const (
	NameByteLevel     = "byte-level"
	NameCLIPBPE       = "clip-bpe"
	NameBERTWordPiece = "bert-wordpiece"
)

// Names lists every name New accepts.
func Names() []string { return []string{NameByteLevel, NameCLIPBPE, NameBERTWordPiece} }

// New returns the tokenizer a configuration names. vocabPath is unused for
// byte-level, OpenCLIP's BPE vocabulary for clip-bpe, and a BERT vocab.txt
// (or the Hugging Face tokenizer folder holding it) for bert-wordpiece.
func New(name string, contextLength int, vocabPath string) (Tokenizer, error) {
	if contextLength < 2 {
		return nil, fmt.Errorf("tokenizer: context length %d is too short (need at least 2 for SOT and EOT)", contextLength)
	}
	switch name {
	case NameByteLevel:
		return NewByteLevel(contextLength), nil
	case NameCLIPBPE:
		return NewCLIP(vocabPath, contextLength)
	case NameBERTWordPiece:
		return wordpiece.New(vocabPath, contextLength)
	default:
		return nil, fmt.Errorf("tokenizer: unknown name %q (allowed: %q)", name, Names())
	}
}
