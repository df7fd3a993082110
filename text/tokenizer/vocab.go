package tokenizer

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// The vocabulary OpenCLIP's SimpleTokenizer reads. bmca never ships it:
// configs name a path, and a missing file is reported with these facts.
const (
	// CLIPVocabFile is the file's name in OpenCLIP (and in openai/CLIP).
	CLIPVocabFile = "bpe_simple_vocab_16e6.txt.gz"
	// CLIPVocabSource says where to get it.
	CLIPVocabSource = "OpenCLIP ships it as src/open_clip/bpe_simple_vocab_16e6.txt.gz (github.com/mlfoundations/open_clip; also clip/bpe_simple_vocab_16e6.txt.gz in github.com/openai/CLIP)"
	// CLIPVocabSHA256 is the SHA-256 of that file (1,356,917 bytes).
	CLIPVocabSHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"

	// clipMerges is how many merge lines SimpleTokenizer keeps:
	// merges[1:49152-256-2+1], after the "#version" header.
	clipMerges = 49152 - 256 - 2
	// clipVocabSize is 256 byte symbols, the same with "</w>", the merges
	// and <start_of_text>, <end_of_text>.
	clipVocabSize = 2*256 + clipMerges + 2
)

// Special token strings. OpenCLIP's vocabulary calls them <start_of_text>
// and <end_of_text>; Hugging Face's vocab.json for the same vocabulary
// calls them <|startoftext|> and <|endoftext|>.
const (
	sotText   = "<start_of_text>"
	eotText   = "<end_of_text>"
	hfSOTText = "<|startoftext|>"
	hfEOTText = "<|endoftext|>"
)

// vocabulary is what the BPE needs from a vocabulary file: every token
// string's id (the byte symbols, merge results and specials) and the
// ordered merges.
type vocabulary struct {
	encoder  map[string]int32
	merges   [][2]string
	sot, eot int32
	size     int
	source   string // for error messages
}

// loadVocabulary reads an OpenCLIP bpe_simple_vocab_16e6.txt.gz, or a
// Hugging Face tokenizer folder (vocab.json and merges.txt), or the path of
// its vocab.json (merges.txt beside it).
func loadVocabulary(path string) (*vocabulary, error) {
	if path == "" {
		return nil, fmt.Errorf("tokenizer %s: no vocabulary path given; %s (sha256 %s)", NameCLIPBPE, CLIPVocabSource, CLIPVocabSHA256)
	}
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("tokenizer %s: vocabulary %s not found: %s (sha256 %s), or give a folder with Hugging Face's vocab.json and merges.txt: %w",
				NameCLIPBPE, path, CLIPVocabSource, CLIPVocabSHA256, err)
		}
		return nil, fmt.Errorf("tokenizer %s: vocabulary %s: %w", NameCLIPBPE, path, err)
	}
	if info.IsDir() {
		return loadHF(filepath.Join(path, "vocab.json"), filepath.Join(path, "merges.txt"))
	}
	if strings.HasSuffix(path, ".json") {
		return loadHF(path, filepath.Join(filepath.Dir(path), "merges.txt"))
	}
	return loadOpenCLIP(path)
}

// loadOpenCLIP builds the vocabulary exactly as SimpleTokenizer.__init__
// does from the gzip'd merges file.
func loadOpenCLIP(path string) (*vocabulary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %w", NameCLIPBPE, err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: %s is not a gzip file (expected OpenCLIP's %s, sha256 %s): %w", NameCLIPBPE, path, CLIPVocabFile, CLIPVocabSHA256, err)
	}
	defer gz.Close()
	merges, err := readMerges(gz, path, clipMerges)
	if err != nil {
		return nil, err
	}
	if len(merges) < clipMerges {
		return nil, fmt.Errorf("tokenizer %s: %s has %d merge lines, SimpleTokenizer needs %d (is it %s, sha256 %s?)", NameCLIPBPE, path, len(merges), clipMerges, CLIPVocabFile, CLIPVocabSHA256)
	}
	symbols := byteSymbols()
	list := make([]string, 0, clipVocabSize)
	for _, b := range symbolOrder() {
		list = append(list, symbols[b])
	}
	for _, b := range symbolOrder() {
		list = append(list, symbols[b]+"</w>")
	}
	for _, m := range merges {
		list = append(list, m[0]+m[1])
	}
	list = append(list, sotText, eotText)
	// dict(zip(vocab, range(len(vocab)))): a repeated string keeps its last id.
	encoder := make(map[string]int32, len(list))
	for i, s := range list {
		encoder[s] = int32(i)
	}
	return &vocabulary{encoder: encoder, merges: merges, sot: encoder[sotText], eot: encoder[eotText], size: len(list), source: path}, nil
}

// readMerges reads up to limit merge lines (limit < 0: all, as for
// Hugging Face's merges.txt) after the header line.
func readMerges(r io.Reader, name string, limit int) ([][2]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var merges [][2]string
	line := 0
	for sc.Scan() && (limit < 0 || len(merges) < limit) {
		line++
		// The "#version: 0.2" header: OpenCLIP drops the first line unread;
		// merges.txt files are only trusted to have it when it says so.
		if line == 1 && (limit >= 0 || strings.HasPrefix(sc.Text(), "#")) {
			continue
		}
		text := sc.Text()
		fields := strings.Fields(text)
		if len(fields) == 0 && limit < 0 {
			continue // a trailing empty line in merges.txt
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("tokenizer %s: %s line %d: want two symbols, got %q", NameCLIPBPE, name, line, text)
		}
		merges = append(merges, [2]string{fields[0], fields[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer %s: reading %s: %w", NameCLIPBPE, name, err)
	}
	return merges, nil
}

// loadHF reads Hugging Face's vocab.json (token → id) and merges.txt.
func loadHF(vocabPath, mergesPath string) (*vocabulary, error) {
	data, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: Hugging Face vocabulary: %w (or use OpenCLIP's %s, sha256 %s)", NameCLIPBPE, err, CLIPVocabFile, CLIPVocabSHA256)
	}
	var raw map[string]int64
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("tokenizer %s: %s: %w", NameCLIPBPE, vocabPath, err)
	}
	encoder := make(map[string]int32, len(raw))
	size := 0
	for s, id := range raw {
		if id < 0 || id >= 1<<31-1 {
			return nil, fmt.Errorf("tokenizer %s: %s: id %d of %q out of range", NameCLIPBPE, vocabPath, id, s)
		}
		encoder[s] = int32(id)
		size = max(size, int(id)+1)
	}
	f, err := os.Open(mergesPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer %s: Hugging Face merges (next to %s): %w", NameCLIPBPE, vocabPath, err)
	}
	defer f.Close()
	merges, err := readMerges(f, mergesPath, -1)
	if err != nil {
		return nil, err
	}
	v := &vocabulary{encoder: encoder, merges: merges, size: size, source: vocabPath}
	var ok bool
	if v.sot, ok = lookupAny(encoder, sotText, hfSOTText); !ok {
		return nil, fmt.Errorf("tokenizer %s: %s has neither %s nor %s", NameCLIPBPE, vocabPath, hfSOTText, sotText)
	}
	if v.eot, ok = lookupAny(encoder, eotText, hfEOTText); !ok {
		return nil, fmt.Errorf("tokenizer %s: %s has neither %s nor %s", NameCLIPBPE, vocabPath, hfEOTText, eotText)
	}
	// OpenCLIP's literal special strings map to these ids whatever the file calls them.
	encoder[sotText], encoder[eotText] = v.sot, v.eot
	return v, nil
}

func lookupAny(m map[string]int32, keys ...string) (int32, bool) {
	for _, k := range keys {
		if id, ok := m[k]; ok {
			return id, true
		}
	}
	return 0, false
}

// symbolOrder is the byte order of bytes_to_unicode(): the printable
// Latin-1 bytes first, then the rest in increasing order. A byte's position
// here is its id.
func symbolOrder() []byte {
	order := make([]byte, 0, 256)
	for b := 0; b < 256; b++ {
		if printableByte(byte(b)) {
			order = append(order, byte(b))
		}
	}
	for b := 0; b < 256; b++ {
		if !printableByte(byte(b)) {
			order = append(order, byte(b))
		}
	}
	return order
}

// printableByte: '!'..'~', '¡'..'¬', '®'..'ÿ' stand for themselves.
func printableByte(b byte) bool {
	return '!' <= b && b <= '~' || 0xA1 <= b && b <= 0xAC || 0xAE <= b
}

// byteSymbols is bytes_to_unicode(): the character each byte is written
// as in the vocabulary; the others get U+0100 onwards, in byte order.
func byteSymbols() [256]string {
	var out [256]string
	n := 0
	for b := 0; b < 256; b++ {
		if printableByte(byte(b)) {
			out[b] = string(rune(b))
		} else {
			out[b] = string(rune(256 + n))
			n++
		}
	}
	return out
}
