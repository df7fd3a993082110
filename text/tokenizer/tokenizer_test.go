package tokenizer

import (
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/text/wordpiece"
)

// bertVocab is BiomedBERT's vocabulary, committed with package wordpiece.
const bertVocab = "../wordpiece/testdata/vocab.txt"

// TestNewBERTWordPiece: the configuration name gives package wordpiece's
// tokenizer, batch form included.
func TestNewBERTWordPiece(t *testing.T) {
	tok, err := New(NameBERTWordPiece, 256, bertVocab)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := wordpiece.New(bertVocab, 256)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ContextLength() != 256 || tok.VocabSize() != 30522 {
		t.Errorf("context %d, vocab size %d", tok.ContextLength(), tok.VocabSize())
	}
	texts := []string{"Axial CT of the chest", "", "Café [MASK] 中文"}
	batch := EncodeBatch(tok, texts)
	for i, s := range texts {
		if want := direct.Encode(s); !slices.Equal(tok.Encode(s), want) || !slices.Equal(batch[i*256:(i+1)*256], want) {
			t.Errorf("%q: ids differ from wordpiece.New's", s)
		}
	}
	if got := tok.Encode("Axial CT")[:5]; !slices.Equal(got, []int32{2, 9438, 3369, 3, 0}) {
		t.Errorf("Encode(Axial CT) starts %v", got)
	}
}

func TestNewErrors(t *testing.T) {
	_, err := New("bpe", 77, "")
	if err == nil {
		t.Fatal("unknown name accepted")
	}
	for _, name := range Names() {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not list %q", err, name)
		}
	}
	if _, err := New(NameBERTWordPiece, 256, ""); err == nil || !strings.Contains(err.Error(), "vocab.txt") {
		t.Errorf("bert-wordpiece without a vocabulary: %v", err)
	}
	if _, err := New(NameBERTWordPiece, 1, bertVocab); err == nil {
		t.Error("context length 1 accepted")
	}
}
