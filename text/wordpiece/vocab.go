package wordpiece

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
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

// readVocabulary loads a vocabulary from path: a vocab.txt, or a Hugging
// Face tokenizer folder holding vocab.txt or, failing that, tokenizer.json.
// The folder's other tokenizer files, when present, must describe the
// uncased BERT tokenizer this package implements.
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
	tj, err := readTokenizerJSON(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	var v *vocabulary
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if v, err = parseVocabulary(data); err != nil {
			return nil, fmt.Errorf("BERT vocabulary %s: %w", path, err)
		}
		if tj != nil && !maps.Equal(tj.Model.Vocab, v.ids) {
			return nil, fmt.Errorf("%s and %s hold different vocabularies", filepath.Join(dir, "tokenizer.json"), path)
		}
	case errors.Is(err, fs.ErrNotExist) && st.IsDir() && tj != nil:
		if v, err = newVocabulary(tj.Model.Vocab); err != nil {
			return nil, fmt.Errorf("BERT vocabulary %s: %w", filepath.Join(dir, "tokenizer.json"), err)
		}
	default:
		return nil, fmt.Errorf("BERT vocabulary: %w", err)
	}
	if err := checkTokenizerConfig(filepath.Join(dir, "tokenizer_config.json")); err != nil {
		return nil, err
	}
	if err := checkSpecialTokensMap(filepath.Join(dir, "special_tokens_map.json")); err != nil {
		return nil, err
	}
	if err := checkAddedTokens(filepath.Join(dir, "added_tokens.json")); err != nil {
		return nil, err
	}
	return v, nil
}

// parseVocabulary reads the lines of a vocab.txt as Python's text mode
// does (universal newlines: "\n", "\r\n" and "\r" all end a line).
func parseVocabulary(data []byte) (*vocabulary, error) {
	ids := map[string]int32{}
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
		ids[string(tok)] = int32(line)
	}
	if len(ids) == 0 {
		return nil, errors.New("the file is empty")
	}
	return newVocabulary(ids)
}

// newVocabulary indexes a token → id map, which must hold BERT's special
// tokens.
func newVocabulary(ids map[string]int32) (*vocabulary, error) {
	v := &vocabulary{ids: ids}
	for _, id := range ids {
		if id < 0 {
			return nil, fmt.Errorf("negative id %d", id)
		}
		v.size = max(v.size, int(id)+1)
	}
	for _, sp := range []struct {
		text string
		id   *int32
	}{{padToken, &v.pad}, {unkToken, &v.unk}, {clsToken, &v.cls}, {sepToken, &v.sep}, {maskToken, nil}} {
		id, ok := ids[sp.text]
		if !ok {
			return nil, fmt.Errorf("no %s token: not a BERT vocabulary", sp.text)
		}
		if sp.id != nil {
			*sp.id = id
		}
		v.specials = append(v.specials, special{sp.text, id})
	}
	v.word, v.cont = prefixes(ids)
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
	if err := checkSpecialTokens(path, map[string]json.RawMessage{
		"pad_token": cfg.PadToken, "unk_token": cfg.UnkToken, "cls_token": cfg.ClsToken,
		"sep_token": cfg.SepToken, "mask_token": cfg.MaskToken,
	}); err != nil {
		return err
	}
	for id, a := range cfg.AddedTokens {
		if err := a.check(); err != nil {
			return fmt.Errorf("%s: added token %s: %w", path, id, err)
		}
	}
	return nil
}

// specialDefault returns the one value implemented for a special-token key
// of the tokenizer files.
func specialDefault(key string) (string, bool) {
	switch key {
	case "pad_token":
		return padToken, true
	case "unk_token":
		return unkToken, true
	case "cls_token":
		return clsToken, true
	case "sep_token":
		return sepToken, true
	case "mask_token":
		return maskToken, true
	}
	return "", false
}

// checkSpecialTokens checks special-token settings (a string, or an added
// token object) against BERT's; keys other than the five are ignored.
func checkSpecialTokens(path string, tokens map[string]json.RawMessage) error {
	for key, raw := range tokens {
		want, ok := specialDefault(key)
		if !ok || raw == nil || string(raw) == "null" {
			continue
		}
		var s string
		if json.Unmarshal(raw, &s) != nil {
			var a addedTokenJSON
			if err := json.Unmarshal(raw, &a); err != nil {
				return fmt.Errorf("%s: %s: %w", path, key, err)
			}
			s = a.Content
		}
		if s != want {
			return fmt.Errorf("%s: %s is %q; only BERT's %s is implemented", path, key, s, want)
		}
	}
	return nil
}

// checkSpecialTokensMap checks special_tokens_map.json, when present.
func checkSpecialTokensMap(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var tokens map[string]json.RawMessage
	if err := json.Unmarshal(data, &tokens); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return checkSpecialTokens(path, tokens)
}

// checkAddedTokens checks the legacy added_tokens.json (token → id), when
// present.
func checkAddedTokens(path string) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var tokens map[string]int32
	if err := json.Unmarshal(data, &tokens); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for tok := range tokens {
		if err := (addedTokenJSON{Content: tok}).check(); err != nil {
			return fmt.Errorf("%s: %w", path, err)
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

// tokenizerJSON is what this package reads of a tokenizer.json.
type tokenizerJSON struct {
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

// readTokenizerJSON reads a tokenizer.json (which Hugging Face prefers to
// vocab.txt when both exist), or returns nil when there is none, and
// refuses one that is not BERT-uncased's.
func readTokenizerJSON(path string) (*tokenizerJSON, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var tj tokenizerJSON
	if err := json.Unmarshal(data, &tj); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	n := tj.Normalizer
	switch {
	case n == nil || n.Type != "BertNormalizer" || !n.CleanText || !n.HandleChineseChars || !n.Lowercase || n.StripAccents != nil && !*n.StripAccents:
		return nil, fmt.Errorf("%s: the normalizer is not BERT-uncased's (BertNormalizer with clean_text, handle_chinese_chars, lowercase and accent stripping)", path)
	case tj.PreTokenizer == nil || tj.PreTokenizer.Type != "BertPreTokenizer":
		return nil, fmt.Errorf("%s: the pre_tokenizer is not BertPreTokenizer", path)
	case tj.Model.Type != "WordPiece" || tj.Model.UnkToken != unkToken || tj.Model.ContinuingSubwordPrefix != "##" || tj.Model.MaxInputCharsPerWord != maxInputChars:
		return nil, fmt.Errorf("%s: the model is not WordPiece with unk_token %s, prefix ## and max_input_chars_per_word %d", path, unkToken, maxInputChars)
	}
	for _, a := range tj.AddedTokens {
		if err := a.check(); err != nil {
			return nil, fmt.Errorf("%s: added token: %w", path, err)
		}
	}
	return &tj, nil
}
