package wordpiece

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/text/internal/clean"
)

// writeVocab writes a vocab.txt of BERT's special tokens (ids 0-4) and
// extra, in a fresh folder, and returns the folder.
func writeVocab(t *testing.T, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	lines := append([]string{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}, extra...)
	if err := os.WriteFile(filepath.Join(dir, "vocab.txt"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newTok(t *testing.T, path string, contextLength int) *Tokenizer {
	t.Helper()
	tok, err := New(path, contextLength)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestGreedyLongestMatch: WordPiece takes the longest piece at each
// position and never backtracks, so a word another split would cover can
// still be [UNK].
func TestGreedyLongestMatch(t *testing.T) {
	// ids:                  5     6        7         8        9     10     11      12   13
	tok := newTok(t, writeVocab(t, "un", "unaff", "##able", "##aff", "ab", "a", "##bc", ",", "##a"), 16)
	cases := []struct {
		text string
		want []int32
	}{
		{"unaffable", []int32{6, 7}},      // unaff ##able, not un ##aff ##able
		{"UNAFFABLE", []int32{6, 7}},      // lowercased first
		{"unaff,able", []int32{6, 12, 1}}, // "able" cannot start a word
		{"abc", []int32{1}},               // ab, then no ##c: [UNK], though a ##bc exists
		{"a", []int32{10}},
		{"aaa", []int32{10, 13, 13}},
		{"", nil},
		{"[MASK]un", []int32{4, 5}},
	}
	for _, c := range cases {
		if got := tok.IDs(c.text); !slices.Equal(got, c.want) {
			t.Errorf("IDs(%q) = %v, want %v", c.text, got, c.want)
		}
	}
}

// TestMaxInputChars: a word of more than 100 code points, counted after
// normalisation, is one [UNK].
func TestMaxInputChars(t *testing.T) {
	tok := newTok(t, writeVocab(t, "a", "##a", "e", "##e"), 16)
	for _, c := range []struct {
		text string
		want int // ids, or 0 for one [UNK]
	}{
		{strings.Repeat("a", 100), 100},
		{strings.Repeat("a", 101), 0},
		{strings.Repeat("e\u0301", 100), 100}, // 200 code points before accent stripping
		{strings.Repeat("\u00e9", 101), 0},
	} {
		got := tok.IDs(c.text)
		if c.want == 0 && !slices.Equal(got, []int32{tok.v.unk}) || c.want > 0 && len(got) != c.want {
			t.Errorf("IDs(%d code points %q...) = %d ids %v", len([]rune(c.text)), c.text[:4], len(got), got[:min(len(got), 3)])
		}
	}
}

// TestTruncation: [CLS], the first ContextLength-2 ids, [SEP], [PAD]s.
func TestTruncation(t *testing.T) {
	tok := newTok(t, writeVocab(t, "a", "##b"), 8)
	for words, want := range map[int][]int32{
		0:  {2, 3, 0, 0, 0, 0, 0, 0},
		5:  {2, 5, 5, 5, 5, 5, 3, 0},
		6:  {2, 5, 5, 5, 5, 5, 5, 3},
		7:  {2, 5, 5, 5, 5, 5, 5, 3},
		50: {2, 5, 5, 5, 5, 5, 5, 3},
	} {
		text := strings.TrimSpace(strings.Repeat("a ", words))
		if got := tok.Encode(text); !slices.Equal(got, want) {
			t.Errorf("%d words: %v, want %v", words, got, want)
		}
	}
	// A word's pieces are cut where the context ends.
	if got := tok.Encode("a abbbbbbbbb"); !slices.Equal(got, []int32{2, 5, 5, 6, 6, 6, 6, 3}) {
		t.Errorf("pieces at the cut: %v", got)
	}
	if _, err := New(writeVocab(t), 1); err == nil {
		t.Error("context length 1 accepted")
	}
}

// TestNormalize checks the normaliser on its own, on behaviour of the fast
// tokenizer that the Python one does not share.
func TestNormalize(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Ångström CAFÉ", "angstrom cafe"},
		{"ΣΟΦΙΑΣ", "σοφιασ"}, // no final sigma: each code point is lowercased alone
		{"İstanbul", "istanbul"},
		{"a\u0000b\u200bc\u00add\ufffde", "abcde"},
		{"a\u00a0b\u3000c\td\u2028e", "a b c d e"},
		{"中文x\U0002b820y\U0002b920z", " 中  文 x\U0002b820y \U0002b920 z"}, // Extension E from U+2B920 only
		{"\uf900", " \u8c48 "},                                           // a compatibility ideograph: spaced, then NFD
		{"\U0001f970\u0378", "\U0001f970\u0378"},                         // newer than the library's tables, and unassigned: kept
		{"q\u0307\u0323", "q"},
	}
	for _, c := range cases {
		if got, _ := normalize(nil, nil, c.in); string(got) != c.want {
			t.Errorf("normalize(%+q) = %+q, want %+q", c.in, string(got), c.want)
		}
	}
}

// TestInvalidUTF8: invalid bytes read as U+FFFD, which BERT's cleaning
// drops.
func TestInvalidUTF8(t *testing.T) {
	tok := newTok(t, vocabPath, 16)
	if got, want := tok.IDs("lu\xffng \xed\xa0\x80"), tok.IDs("lung"); !slices.Equal(got, want) {
		t.Errorf("IDs with invalid bytes = %v, want %v", got, want)
	}
}

// TestVocabularyLines: lines end at "\n", "\r\n" or "\r" (Python's
// universal newlines), a repeated token keeps its last line, and bad files
// are refused with the file and line.
func TestVocabularyLines(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("crlf.txt", "[PAD]\r\n[UNK]\r[CLS]\n[SEP]\r\n[MASK]\nab\nab\n##c")
	tok := newTok(t, good, 8)
	if got := tok.IDs("ab abc"); !slices.Equal(got, []int32{6, 6, 7}) {
		t.Errorf("IDs = %v, want [6 6 7] (the last line of a repeated token)", got)
	}
	if tok.VocabSize() != 8 || tok.CLS() != 2 || tok.SEP() != 3 || tok.Pad() != 0 {
		t.Errorf("size %d, [CLS] %d, [SEP] %d, [PAD] %d", tok.VocabSize(), tok.CLS(), tok.SEP(), tok.Pad())
	}
	for _, c := range []struct{ name, content, want string }{
		{"empty.txt", "", "empty"},
		{"nomask.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n", "[MASK]"},
		{"latin1.txt", "[PAD]\n[UNK]\ncaf\xe9\n", "line 3"},
	} {
		p := write(c.name, c.content)
		_, err := New(p, 8)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want one naming the file and %q", c.name, err, c.want)
		}
	}
	if _, err := New(filepath.Join(dir, "missing.txt"), 8); err == nil {
		t.Error("a missing file was accepted")
	}
	if _, err := New("", 8); err == nil || !strings.Contains(err.Error(), "vocab.txt") {
		t.Errorf("no path: error %v", err)
	}
}

// TestTokenizerFolder: a Hugging Face tokenizer folder is accepted when
// its settings are BERT-uncased's and refused, naming the setting, when
// they are not.
func TestTokenizerFolder(t *testing.T) {
	good := `{"normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
		"pre_tokenizer": {"type": "BertPreTokenizer"},
		"added_tokens": [{"id": 0, "content": "[PAD]"}, {"id": 4, "content": "[MASK]"}],
		"model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
			"vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "lung": 5}}}`
	cases := []struct {
		name, config, tokenizerJSON, wantErr string
	}{
		{"plain", "", "", ""},
		{"BiomedBERT's config", `{"do_lower_case": true}`, "", ""},
		{"full config", `{"do_lower_case": true, "strip_accents": null, "cls_token": "[CLS]", "mask_token": {"content": "[MASK]", "lstrip": false},
			"added_tokens_decoder": {"0": {"content": "[PAD]", "special": true}}}`, good, ""},
		{"cased", `{"do_lower_case": false}`, "", "do_lower_case"},
		{"accents kept", `{"strip_accents": false}`, "", "strip_accents"},
		{"no CJK spacing", `{"tokenize_chinese_chars": false}`, "", "tokenize_chinese_chars"},
		{"other special token", `{"cls_token": "<s>"}`, "", "cls_token"},
		{"extra added token", `{"added_tokens_decoder": {"5": {"content": "<extra>"}}}`, "", "<extra>"},
		{"bad JSON", `{"do_lower_case": tru`, "", "tokenizer_config.json"},
		{"cased tokenizer.json", "", strings.Replace(good, `"lowercase": true`, `"lowercase": false`, 1), "normalizer"},
		{"other pre-tokenizer", "", strings.Replace(good, "BertPreTokenizer", "Whitespace", 1), "pre_tokenizer"},
		{"other limit", "", strings.Replace(good, `"max_input_chars_per_word": 100`, `"max_input_chars_per_word": 200`, 1), "max_input_chars_per_word"},
		{"other vocabulary", "", strings.Replace(good, `"lung": 5`, `"chest": 5`, 1), "different vocabularies"},
	}
	extra := []struct{ name, file, content, wantErr string }{
		{"special_tokens_map", "special_tokens_map.json", `{"unk_token": "[UNK]", "mask_token": {"content": "[MASK]"}}`, ""},
		{"renamed special token", "special_tokens_map.json", `{"sep_token": "</s>"}`, "sep_token"},
		{"added_tokens", "added_tokens.json", `{"[MASK]": 4}`, ""},
		{"extra added token", "added_tokens.json", `{"<new>": 6}`, "<new>"},
	}
	for _, e := range extra {
		cases = append(cases, struct{ name, config, tokenizerJSON, wantErr string }{e.name, "", "", e.wantErr})
	}
	for _, c := range cases {
		dir := writeVocab(t, "lung")
		if c.config != "" {
			if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if c.tokenizerJSON != "" {
			if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(c.tokenizerJSON), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range extra {
			if e.name == c.name {
				if err := os.WriteFile(filepath.Join(dir, e.file), []byte(e.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, path := range []string{dir, filepath.Join(dir, "vocab.txt")} {
			tok, err := New(path, 8)
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("%s (%s): %v", c.name, filepath.Base(path), err)
			case c.wantErr == "" && !slices.Equal(tok.IDs("Lung"), []int32{5}):
				t.Errorf("%s: IDs(Lung) = %v", c.name, tok.IDs("Lung"))
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("%s (%s): error %v, want one naming %q", c.name, filepath.Base(path), err, c.wantErr)
			}
		}
	}
}

// TestTokenizerJSONOnly: a folder with tokenizer.json and no vocab.txt
// takes its vocabulary from tokenizer.json.
func TestTokenizerJSONOnly(t *testing.T) {
	dir := t.TempDir()
	tj := `{"normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "lowercase": true},
		"pre_tokenizer": {"type": "BertPreTokenizer"},
		"model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
			"vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4, "lung": 5, "##s": 6}}}`
	if err := os.WriteFile(filepath.Join(dir, "tokenizer.json"), []byte(tj), 0o644); err != nil {
		t.Fatal(err)
	}
	tok := newTok(t, dir, 8)
	if got := tok.Encode("Lungs"); !slices.Equal(got, []int32{2, 5, 6, 3, 0, 0, 0, 0}) || tok.VocabSize() != 7 {
		t.Errorf("Encode(Lungs) = %v, vocab size %d", got, tok.VocabSize())
	}
	if _, err := New(filepath.Join(t.TempDir()), 8); err == nil || !strings.Contains(err.Error(), "vocab.txt") {
		t.Errorf("an empty folder: %v", err)
	}
}

// FuzzEncode: any bytes give ContextLength ids in the vocabulary: [CLS],
// the first ids of the cleaned text, [SEP], [PAD]s.
func FuzzEncode(f *testing.F) {
	tok, err := New(vocabPath, 12)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", " ", "Axial CT", "\xff\xfe", "[MASK][SEP]", "a[CLS", "&amp;lt;", "\u0130\u03a3",
		strings.Repeat("ab", 300), "e\u0301\u0323", "中文", "\U0001f970"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		body := tok.IDs(clean.Whitespace(s))
		body = body[:min(len(body), 10)]
		want := append(append([]int32{tok.CLS()}, body...), tok.SEP())
		for len(want) < 12 {
			want = append(want, tok.Pad())
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("Encode(%q) = %v, want %v", s, ids, want)
		}
		for _, id := range ids {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("Encode(%q): id %d out of range", s, id)
			}
		}
	})
}
