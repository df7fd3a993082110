package wordpiece

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// The special tokens of BERT's tokenizer. Hugging Face registers them as
// added tokens: they are matched in the raw text, case-sensitively, before
// any normalisation.
const (
	padToken  = "[PAD]"
	unkToken  = "[UNK]"
	clsToken  = "[CLS]"
	sepToken  = "[SEP]"
	maskToken = "[MASK]"
)

// vocabulary is a vocab.txt as Hugging Face reads it: one token per line,
// its id the line number (a repeated token keeps its last line).
type vocabulary struct {
	size int              // one more than the largest id
	ids  map[string]int32 // every token as written
	// word holds every token (the pieces that start a word), cont the "##"
	// tokens without their prefix (the pieces that continue one).
	word, cont         *trie
	pad, unk, cls, sep int32
	specials           []special
}

// special is an added token matched in the raw text.
type special struct {
	text string
	id   int32
}

// readVocabulary loads vocab.txt from path, a file or a Hugging Face
// tokenizer folder holding one. The folder's tokenizer_config.json and
// tokenizer.json, when present, must describe the uncased BERT tokenizer
// this package implements.
func readVocabulary(path string) (*vocabulary, error) {
	if path == "" {
		return nil, errors.New("no vocabulary given: pass a BERT vocab.txt or the Hugging Face tokenizer folder holding it")
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("BERT vocabulary: %w", err)
	}
	dir := filepath.Dir(path)
	if st.IsDir() {
		dir, path = path, filepath.Join(path, "vocab.txt")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("BERT vocabulary: %w", err)
	}
	v, err := parseVocabulary(data)
	if err != nil {
		return nil, fmt.Errorf("BERT vocabulary %s: %w", path, err)
	}
	if err := checkTokenizerConfig(filepath.Join(dir, "tokenizer_config.json")); err != nil {
		return nil, err
	}
	if err := checkTokenizerJSON(filepath.Join(dir, "tokenizer.json"), v); err != nil {
		return nil, err
	}
	return v, nil
}

// parseVocabulary reads the lines of a vocab.txt as Python's text mode
// does (universal newlines: "\n", "\r\n" and "\r" all end a line).
func parseVocabulary(data []byte) (*vocabulary, error) {
	v := &vocabulary{ids: map[string]int32{}}
	for line := 0; len(data) > 0; line++ {
		end, next := len(data), len(data)
		if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
			end, next = i, i+1
			if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
				next++
			}
		}
		tok := data[:end]
		data = data[next:]
		if !utf8.Valid(tok) {
			return nil, fmt.Errorf("line %d is not valid UTF-8", line+1)
		}
		v.ids[string(tok)] = int32(line)
		v.size = line + 1
	}
	if v.size == 0 {
		return nil, errors.New("the file is empty")
	}
	for _, sp := range []struct {
		text string
		id   *int32
	}{{padToken, &v.pad}, {unkToken, &v.unk}, {clsToken, &v.cls}, {sepToken, &v.sep}, {maskToken, nil}} {
		id, ok := v.ids[sp.text]
		if !ok {
			return nil, fmt.Errorf("no %s token: not a BERT vocabulary", sp.text)
		}
		if sp.id != nil {
			*sp.id = id
		}
		v.specials = append(v.specials, special{sp.text, id})
	}
	v.word, v.cont = prefixes(v.ids)
	return v, nil
}

// checkTokenizerConfig refuses a tokenizer_config.json whose settings this
// package does not implement (a cased vocabulary, say), which would
// otherwise give the wrong ids silently. A missing file is fine: BERT's
// defaults are the uncased ones.
func checkTokenizerConfig(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var cfg struct {
		DoLowerCase          *bool                     `json:"do_lower_case"`
		StripAccents         *bool                     `json:"strip_accents"`
		TokenizeChineseChars *bool                     `json:"tokenize_chinese_chars"`
		DoBasicTokenize      *bool                     `json:"do_basic_tokenize"`
		AddedTokens          map[string]addedTokenJSON `json:"added_tokens_decoder"`
		PadToken             json.RawMessage           `json:"pad_token"`
		UnkToken             json.RawMessage           `json:"unk_token"`
		ClsToken             json.RawMessage           `json:"cls_token"`
		SepToken             json.RawMessage           `json:"sep_token"`
		MaskToken            json.RawMessage           `json:"mask_token"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, b := range []struct {
		key       string
		value     *bool
		supported bool
	}{
		{"do_lower_case", cfg.DoLowerCase, true},
		{"strip_accents", cfg.StripAccents, true},
		{"tokenize_chinese_chars", cfg.TokenizeChineseChars, true},
		{"do_basic_tokenize", cfg.DoBasicTokenize, true},
	} {
		if b.value != nil && *b.value != b.supported {
			return fmt.Errorf("%s: %s is %v, but only the uncased BERT tokenizer (%s: %v) is implemented", path, b.key, *b.value, b.key, b.supported)
		}
	}
	for _, tok := range []struct {
		key, want string
		raw       json.RawMessage
	}{
		{"pad_token", padToken, cfg.PadToken}, {"unk_token", unkToken, cfg.UnkToken},
		{"cls_token", clsToken, cfg.ClsToken}, {"sep_token", sepToken, cfg.SepToken},
		{"mask_token", maskToken, cfg.MaskToken},
	} {
		if tok.raw == nil || string(tok.raw) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(tok.raw, &s) != nil {
			var a addedTokenJSON
			if err := json.Unmarshal(tok.raw, &a); err != nil {
				return fmt.Errorf("%s: %s: %w", path, tok.key, err)
			}
			s = a.Content
		}
		if s != tok.want {
			return fmt.Errorf("%s: %s is %q; only BERT's %s is implemented", path, tok.key, s, tok.want)
		}
	}
	for id, a := range cfg.AddedTokens {
		if err := a.check(); err != nil {
			return fmt.Errorf("%s: added token %s: %w", path, id, err)
		}
	}
	return nil
}

// addedTokenJSON is an added token as tokenizer files store it.
type addedTokenJSON struct {
	Content string `json:"content"`
}

// check accepts BERT's five special tokens and nothing else: another added
// token would split the text where this package does not.
func (a addedTokenJSON) check() error {
	switch a.Content {
	case padToken, unkToken, clsToken, sepToken, maskToken:
		return nil
	}
	return fmt.Errorf("%q is not one of BERT's special tokens, and extra added tokens are not implemented", a.Content)
}

// checkTokenizerJSON refuses a tokenizer.json (which Hugging Face prefers
// to vocab.txt when both exist) that describes another tokenizer than
// vocab.txt with BERT-uncased settings.
func checkTokenizerJSON(path string, v *vocabulary) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var tj struct {
		AddedTokens []addedTokenJSON `json:"added_tokens"`
		Normalizer  *struct {
			Type               string `json:"type"`
			CleanText          bool   `json:"clean_text"`
			HandleChineseChars bool   `json:"handle_chinese_chars"`
			StripAccents       *bool  `json:"strip_accents"`
			Lowercase          bool   `json:"lowercase"`
		} `json:"normalizer"`
		PreTokenizer *struct {
			Type string `json:"type"`
		} `json:"pre_tokenizer"`
		Model struct {
			Type                    string           `json:"type"`
			UnkToken                string           `json:"unk_token"`
			ContinuingSubwordPrefix string           `json:"continuing_subword_prefix"`
			MaxInputCharsPerWord    int              `json:"max_input_chars_per_word"`
			Vocab                   map[string]int32 `json:"vocab"`
		} `json:"model"`
	}
	if err := json.Unmarshal(data, &tj); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	n := tj.Normalizer
	switch {
	case n == nil || n.Type != "BertNormalizer" || !n.CleanText || !n.HandleChineseChars || !n.Lowercase || n.StripAccents != nil && !*n.StripAccents:
		return fmt.Errorf("%s: the normalizer is not BERT-uncased's (BertNormalizer with clean_text, handle_chinese_chars, lowercase and accent stripping)", path)
	case tj.PreTokenizer == nil || tj.PreTokenizer.Type != "BertPreTokenizer":
		return fmt.Errorf("%s: the pre_tokenizer is not BertPreTokenizer", path)
	case tj.Model.Type != "WordPiece" || tj.Model.UnkToken != unkToken || tj.Model.ContinuingSubwordPrefix != "##" || tj.Model.MaxInputCharsPerWord != maxInputChars:
		return fmt.Errorf("%s: the model is not WordPiece with unk_token %s, prefix ## and max_input_chars_per_word %d", path, unkToken, maxInputChars)
	}
	for _, a := range tj.AddedTokens {
		if err := a.check(); err != nil {
			return fmt.Errorf("%s: added token: %w", path, err)
		}
	}
	if len(tj.Model.Vocab) != len(v.ids) {
		return fmt.Errorf("%s holds %d tokens but vocab.txt %d: they are different vocabularies", path, len(tj.Model.Vocab), len(v.ids))
	}
	for tok, id := range tj.Model.Vocab {
		if got, ok := v.ids[tok]; !ok || got != id {
			return fmt.Errorf("%s gives %q id %d but vocab.txt does not: they are different vocabularies", path, tok, id)
		}
	}
	return nil
}
