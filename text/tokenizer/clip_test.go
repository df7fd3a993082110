package tokenizer

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/testshared"
)

const vocabRel = "data/tokenizer/bpe_simple_vocab_16e6.txt.gz"

func loadCLIP(t testing.TB) *CLIP {
	t.Helper()
	tok, err := NewCLIP(testshared.Path(t, vocabRel), 77)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// reference is one line of ../shared/reference/tokenizer/public.jsonl:
// open_clip.tokenize(text) from OpenCLIP v2.32.0 with ftfy 6.3.1.
type reference struct {
	Text string  `json:"text"`
	IDs  []int32 `json:"ids"`
}

func loadReferences(t testing.TB) []reference {
	t.Helper()
	f, err := os.Open(testshared.Path(t, "reference/tokenizer/public.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var refs []reference
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var r reference
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("public.jsonl line %d: %v", line, err)
		}
		refs = append(refs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return refs
}

// TestPublicReferences: every id of every line, captions and traps alike.
func TestPublicReferences(t *testing.T) {
	tok := loadCLIP(t)
	refs := loadReferences(t)
	if len(refs) != 691 {
		t.Fatalf("public.jsonl has %d lines, want 691", len(refs))
	}
	match := 0
	for i, r := range refs {
		got := tok.Encode(r.Text)
		if slices.Equal(got, r.IDs) {
			match++
			continue
		}
		if i-match < 10 { // the first few differences only
			t.Errorf("line %d %+q:\n got %v\nwant %v", i+1, r.Text, trim(got), trim(r.IDs))
		}
	}
	t.Logf("%d/%d public reference lines match", match, len(refs))
	if match != len(refs) {
		t.Errorf("%d/%d public reference lines match", match, len(refs))
	}
	// The batch path must agree with the single-text path.
	texts := make([]string, len(refs))
	for i, r := range refs {
		texts[i] = r.Text
	}
	batch := EncodeBatch(tok, texts)
	for i, r := range refs {
		if !slices.Equal(batch[i*77:(i+1)*77], r.IDs) {
			t.Fatalf("EncodeBatch line %d differs from the reference", i+1)
		}
	}
}

func trim(ids []int32) []int32 {
	for len(ids) > 0 && ids[len(ids)-1] == 0 {
		ids = ids[:len(ids)-1]
	}
	return ids
}

// TestHuggingFaceFiles: vocab.json + merges.txt written from the same
// vocabulary give the same ids.
func TestHuggingFaceFiles(t *testing.T) {
	dir := t.TempDir()
	writeHFFiles(t, testshared.Path(t, vocabRel), dir)
	hf, err := New(NameCLIPBPE, 77, dir)
	if err != nil {
		t.Fatal(err)
	}
	if hf.VocabSize() != 49408 {
		t.Errorf("VocabSize %d, want 49408", hf.VocabSize())
	}
	viaJSON, err := NewCLIP(filepath.Join(dir, "vocab.json"), 77)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range loadReferences(t) {
		if got := hf.Encode(r.Text); !slices.Equal(got, r.IDs) {
			t.Fatalf("HF files, line %d %+q:\n got %v\nwant %v", i+1, r.Text, trim(got), trim(r.IDs))
		}
		if i%50 == 0 && !slices.Equal(viaJSON.Encode(r.Text), r.IDs) {
			t.Fatalf("vocab.json path, line %d differs", i+1)
		}
	}
}

// writeHFFiles writes the vocabulary as Hugging Face stores CLIP's:
// vocab.json with <|startoftext|>/<|endoftext|>, merges.txt with a header.
func writeHFFiles(t *testing.T, gzPath, dir string) {
	t.Helper()
	v, err := loadOpenCLIP(gzPath)
	if err != nil {
		t.Fatal(err)
	}
	vocab := map[string]int32{}
	for s, id := range v.encoder {
		switch s {
		case sotText:
			s = hfSOTText
		case eotText:
			s = hfEOTText
		}
		vocab[s] = id
	}
	data, err := json.Marshal(vocab)
	if err != nil {
		t.Fatal(err)
	}
	var merges strings.Builder
	merges.WriteString("#version: 0.2\n")
	for _, m := range v.merges {
		fmt.Fprintf(&merges, "%s %s\n", m[0], m[1])
	}
	if err := os.WriteFile(filepath.Join(dir, "vocab.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "merges.txt"), []byte(merges.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A missing vocabulary must say where the file comes from and which it is.
func TestMissingVocabulary(t *testing.T) {
	for _, path := range []string{"", filepath.Join(t.TempDir(), "bpe_simple_vocab_16e6.txt.gz")} {
		_, err := New(NameCLIPBPE, 77, path)
		if err == nil {
			t.Fatalf("New(%q) succeeded", path)
		}
		for _, want := range []string{"src/open_clip/bpe_simple_vocab_16e6.txt.gz", CLIPVocabSHA256} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("New(%q) error %q does not mention %q", path, err, want)
			}
		}
	}
}

func TestBadVocabulary(t *testing.T) {
	dir := t.TempDir()
	notGzip := filepath.Join(dir, "vocab.txt.gz")
	if err := os.WriteFile(notGzip, []byte("plain text"), 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short.txt.gz")
	f, err := os.Create(short)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	fmt.Fprint(gz, "#version: 0.2\ni n\nt h\n")
	gz.Close()
	f.Close()
	for _, p := range []string{notGzip, short} {
		if _, err := NewCLIP(p, 77); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("NewCLIP(%s): error %v should name the file", p, err)
		}
	}
	if _, err := NewCLIP(notGzip, 1); err == nil {
		t.Error("context length 1 accepted")
	}
}

// TestSplit checks the pre-tokenizer on its own, on cleaned text.
func TestSplit(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"axial ct", []string{"axial", "ct"}},
		{"123 mm", []string{"1", "2", "3", "mm"}},
		{"don't they're we've i'm you'll he'd it's", []string{"don", "'t", "they", "'re", "we", "'ve", "i", "'m", "you", "'ll", "he", "'d", "it", "'s"}},
		{"rock 'n' roll ''' '", []string{"rock", "'", "n", "'", "roll", "'''", "'"}},
		{"x-ray/ct", []string{"x", "-", "ray", "/", "ct"}},
		{"<start_of_text>a<end_of_text>", []string{"<start_of_text>", "a", "<end_of_text>"}},
		{"(<end_of_text>", []string{"(<", "end", "_", "of", "_", "text", ">"}},
		{"<ſtart_of_text> it'ſ", []string{"<ſtart_of_text>", "it", "'ſ"}},
		{"i\u0307stanbul", []string{"i", "\u0307", "stanbul"}},
		{"a\u0345b", []string{"a", "b"}}, // U+0345 is in no class
		{"\u091b\u093e\u0924\u0940", []string{"\u091b", "\u093e", "\u0924", "\u0940"}},
		{"\u0663\u0664", []string{"\u0663", "\u0664"}},
		{"", nil},
	}
	for _, c := range cases {
		var got []string
		for i := 0; ; {
			s, e := nextPretoken(c.in, i)
			if s == e {
				break
			}
			got = append(got, c.in[s:e])
			i = e
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("split %q = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestClean(t *testing.T) {
	// Expected values are OpenCLIP's _clean_lower.
	cases := []struct{ in, want string }{
		{" Axial CT  of\tthe CHEST. ", "axial ct of the chest."},
		{"\u0130stanbul \u0130", "i\u0307stanbul i\u0307"},
		{"\u03a3\u039f\u03a6\u0399\u0391\u03a3 \u039f\u0394\u039f\u03a3", "\u03c3\u03bf\u03c6\u03b9\u03b1\u03c2 \u03bf\u03b4\u03bf\u03c2"},
		{"it&amp;amp;s", "it&s"},
		{"&lt;b&gt;bold&lt;/b&gt;", "<b>bold</b>"},
		{"a\u00a0b\u2009c\u200bd", "a b c\u200bd"},
		{"file\u001cgroup", "filegroup"},
		{"  ", ""},
		{"STRASSE \u1e9e", "strasse \u00df"},
	}
	for _, c := range cases {
		if got := Clean(c.in); got != c.want {
			t.Errorf("Clean(%+q) = %+q, want %+q", c.in, got, c.want)
		}
	}
}

// TestTruncation: 74, 75 and 76 words give 76, 77 and 78 ids before
// truncation; the last always ends with EOT.
func TestTruncation(t *testing.T) {
	tok := loadCLIP(t)
	a := tok.Encode("a")[1] // the id of "a</w>"
	for words, wantLen := range map[int]int{74: 76, 75: 77, 76: 77, 500: 77} {
		ids := trim(tok.Encode(strings.TrimSpace(strings.Repeat("a ", words))))
		if len(ids) != wantLen || ids[0] != tok.SOT() || ids[len(ids)-1] != tok.EOT() || ids[len(ids)-2] != a {
			t.Errorf("%d words: %d ids %v", words, len(ids), ids)
		}
	}
	if got := len(tok.Tokens(strings.Repeat("a ", 500))); got != 500 {
		t.Errorf("Tokens of 500 words: %d ids", got)
	}
}

// TestHeapMatchesRounds: the O(n log n) merge order used for long words
// gives SimpleTokenizer's round-by-round result.
func TestHeapMatchesRounds(t *testing.T) {
	tok := loadCLIP(t)
	m := tok.model
	if !m.heapSafe {
		t.Fatal("CLIP's merges should allow the heap algorithm")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabets := []string{"abcdefghijklmnopqrstuvwxyz", "aeiou", "ab", "ée", "xyz0"}
	for range 300 {
		alpha := []rune(alphabets[rng.IntN(len(alphabets))])
		var b strings.Builder
		for range 2 + rng.IntN(400) {
			b.WriteRune(alpha[rng.IntN(len(alpha))])
		}
		word := b.String()
		syms := func() []int32 {
			s := make([]int32, len(word))
			for i := range len(word) - 1 {
				s[i] = m.byteID[word[i]]
			}
			s[len(word)-1] = m.byteEndID[word[len(word)-1]]
			return s
		}
		rounds := slices.Clone(m.mergeRounds(syms()))
		heaped := m.mergeHeap(syms())
		if !slices.Equal(rounds, heaped) {
			t.Fatalf("word %q: rounds %v, heap %v", word, rounds, heaped)
		}
	}
}

// TestConcurrentEncode runs Encode from many goroutines on a cold cache
// (go test -race checks the cache's locking).
func TestConcurrentEncode(t *testing.T) {
	tok := loadCLIP(t)
	refs := loadReferences(t)
	done := make(chan error)
	for w := range 4 {
		go func() {
			for i := range refs {
				r := refs[(i*7+w*13)%len(refs)]
				if !slices.Equal(tok.Encode(r.Text), r.IDs) {
					done <- fmt.Errorf("goroutine %d: %+q differs", w, r.Text)
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestDecode(t *testing.T) {
	tok := loadCLIP(t)
	got := tok.Decode(tok.Encode("Axial CT of the chest, 12 mm."))
	if !strings.HasPrefix(got, "<start_of_text>axial ct of the chest , 1 2 mm . <end_of_text>") {
		t.Errorf("Decode = %q", got)
	}
}

// FuzzEncode: arbitrary bytes never panic, and the output is always
// ContextLength ids starting with SOT and holding EOT.
func FuzzEncode(f *testing.F) {
	tok := loadCLIP(f)
	for _, s := range []string{"", " ", "Axial CT", "\xff\xfe", "don\u00e2\u20ac\u2122t", "<end_of_text>", "&amp;lt;",
		"\x1b[31m", "\u0130\u03a3", strings.Repeat("ab", 300), "\xed\xa0\xbd\xed\xb8\x80", "a\u0345b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		if len(ids) != 77 || ids[0] != tok.SOT() || !slices.Contains(ids, tok.EOT()) {
			t.Fatalf("Encode(%q) = %v", s, ids)
		}
		for _, id := range ids {
			if id < 0 || int(id) >= tok.VocabSize() {
				t.Fatalf("Encode(%q): id %d out of range", s, id)
			}
		}
	})
}

// A warm cache encodes plain ASCII captions into a caller's buffer without
// allocating.
func TestEncodeToAllocs(t *testing.T) {
	tok := loadCLIP(t)
	text := " Axial CT of the CHEST shows a 3.5 cm mass (arrow) in the right lower lobe; don't miss it."
	dst := make([]int32, 77)
	tok.EncodeTo(dst, text)
	if n := testing.AllocsPerRun(100, func() { tok.EncodeTo(dst, text) }); n != 0 {
		t.Errorf("EncodeTo allocates %v times per caption", n)
	}
}
