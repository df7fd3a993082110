package wordpiece

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unicode"

	"github.com/bmca/bmca/internal/testshared"
	"github.com/bmca/bmca/text/internal/clean"
)

// The vocabulary and the expected ids, both committed (testdata/README.md
// says where they come from; gen/gen.sh regenerates the ids).
const (
	vocabPath    = "testdata/vocab.txt"
	expectedPath = "testdata/expected.jsonl.gz"
	refContext   = 256
)

// record is one line of expected.jsonl.gz (see gen/refs.py).
type record struct {
	Set   string  `json:"set"`
	Key   string  `json:"key"`
	Text  *string `json:"text"`
	IDs   []int32 `json:"ids"`
	Raw   []int32 `json:"raw"`
	IDs16 []int32 `json:"ids16"`
	Slow  []int32 `json:"slow"`
	Hash  string  `json:"sha256"`
}

type meta struct {
	Tokenizers   string `json:"tokenizers"`
	Transformers string `json:"transformers"`
	VocabSHA256  string `json:"vocab_sha256"`
	Context      int    `json:"context_length"`
	PadID        int32  `json:"pad_id"`
}

var loadOnce = sync.OnceValues(func() (meta, []record) {
	f, err := os.Open(expectedPath)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		panic(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var m meta
	var recs []record
	for line := 1; sc.Scan(); line++ {
		if line == 1 {
			var head struct{ Meta meta }
			if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
				panic(err)
			}
			m = head.Meta
			continue
		}
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			panic(err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		panic(err)
	}
	return m, recs
})

func loadExpected(t testing.TB, set string) (meta, []record) {
	t.Helper()
	m, all := loadOnce()
	var recs []record
	for _, r := range all {
		if r.Set == set || strings.HasPrefix(r.Set, set+"/") {
			recs = append(recs, r)
		}
	}
	if len(recs) == 0 {
		t.Fatalf("%s has no %q records", expectedPath, set)
	}
	return m, recs
}

func loadTokenizer(t testing.TB, contextLength int) *Tokenizer {
	t.Helper()
	tok, err := New(vocabPath, contextLength)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestReferenceProvenance: the expected ids were made with this vocabulary
// and with the tokenizers release the tables were read from.
func TestReferenceProvenance(t *testing.T) {
	m, _ := loadOnce()
	data, err := os.ReadFile(vocabPath)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != m.VocabSHA256 {
		t.Errorf("vocab.txt sha256 %s, references made with %s", got, m.VocabSHA256)
	}
	if m.Tokenizers != TokenizersVersion {
		t.Errorf("references from tokenizers %s, tables from %s: regenerate both", m.Tokenizers, TokenizersVersion)
	}
	if m.Context != refContext || m.PadID != loadTokenizer(t, 2).Pad() {
		t.Errorf("references: context %d, pad id %d", m.Context, m.PadID)
	}
}

// checkEncoding compares a full encoding with the expected ids, which the
// reference stores without their trailing [PAD]s.
func checkEncoding(got, want []int32, pad int32) bool {
	if len(want) > len(got) || !slices.Equal(got[:len(want)], want) {
		return false
	}
	for _, id := range got[len(want):] {
		if id != pad {
			return false
		}
	}
	return true
}

// compareSet encodes every record of a set and checks each field it
// carries; it logs the match count and fails on any difference.
func compareSet(t *testing.T, set string, texts func([]record) []string) {
	_, recs := loadExpected(t, set)
	tok := loadTokenizer(t, refContext)
	tok16 := loadTokenizer(t, 16)
	ts := texts(recs)
	batch := tok.EncodeBatch(ts)
	match, raw, short, slowDiffers := 0, 0, 0, 0
	for i, r := range recs {
		got := batch[i*refContext : (i+1)*refContext]
		ok := checkEncoding(got, r.IDs, tok.Pad())
		if !ok && match+10 > i {
			t.Errorf("%s %s %+q:\n got %v\nwant %v", r.Set, r.Key, ts[i], trim(got, tok.Pad()), r.IDs)
		}
		if ok && !slices.Equal(got, tok.Encode(ts[i])) {
			t.Fatalf("%s %s: EncodeBatch and Encode differ", r.Set, r.Key)
		}
		if r.Raw != nil {
			if g := tok.IDs(ts[i]); slices.Equal(g, r.Raw) || len(g) == 0 && len(r.Raw) == 0 {
				raw++
			} else {
				ok = false
				t.Errorf("%s %s IDs(%+q):\n got %v\nwant %v", r.Set, r.Key, ts[i], g, r.Raw)
			}
		}
		if r.IDs16 != nil {
			if g := tok16.Encode(ts[i]); checkEncoding(g, r.IDs16, tok.Pad()) {
				short++
			} else {
				ok = false
				t.Errorf("%s %s context 16 %+q:\n got %v\nwant %v", r.Set, r.Key, ts[i], g, r.IDs16)
			}
		}
		if r.Slow != nil {
			slowDiffers++
		}
		if ok {
			match++
		}
	}
	t.Logf("%s: %d/%d texts match exactly (raw encodings %d, context-16 encodings %d); the slow Python tokenizer differs from the fast one on %d",
		set, match, len(recs), raw, short, slowDiffers)
	if match != len(recs) {
		t.Errorf("%s: %d/%d texts match", set, match, len(recs))
	}
}

func storedTexts(recs []record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = *r.Text
	}
	return out
}

// TestAdversarial: accents, CJK, controls, zero-width and bidi characters,
// emoji, long words, mixed scripts, HTML entities, mojibake, special
// tokens, empty and over-long texts.
func TestAdversarial(t *testing.T) { compareSet(t, "adversarial", storedTexts) }

// TestFuzz: 3,000 seeded random strings over the Unicode blocks where the
// character tables matter.
func TestFuzz(t *testing.T) { compareSet(t, "fuzz", storedTexts) }

// TestROCO: every ROCO caption of the shared data (9,402), against the ids
// OpenCLIP's HFTokenizer gives them.
func TestROCO(t *testing.T) {
	caps := map[string]string{}
	for _, split := range []string{"test/radiology", "test/non-radiology", "validation/non-radiology"} {
		for k, v := range readCaptions(t, split) {
			caps[split+"\x00"+k] = v
		}
	}
	compareSet(t, "roco", func(recs []record) []string {
		out := make([]string, len(recs))
		for i, r := range recs {
			text, ok := caps[strings.TrimPrefix(r.Set, "roco/")+"\x00"+r.Key]
			if !ok {
				t.Fatalf("no caption %s in %s", r.Key, r.Set)
			}
			out[i] = text
		}
		return out
	})
}

// TestLongText: the adversarial and fuzz texts joined by spaces (some
// 170 KB, far past one normalisation chunk) give their raw ids joined, and
// Encode keeps the first of them.
func TestLongText(t *testing.T) {
	var texts []string
	var want []int32
	for _, set := range []string{"adversarial", "fuzz"} {
		_, recs := loadExpected(t, set)
		for _, r := range recs {
			texts = append(texts, *r.Text)
			want = append(want, r.Raw...)
		}
	}
	long := strings.Join(texts, " ")
	tok := loadTokenizer(t, refContext)
	if got := tok.IDs(long); !slices.Equal(got, want) {
		n := 0
		for n < min(len(got), len(want)) && got[n] == want[n] {
			n++
		}
		t.Fatalf("%d bytes: %d ids, want %d; first difference at id %d", len(long), len(got), len(want), n)
	}
	enc := tok.Encode(long)
	if !slices.Equal(enc[1:refContext-1], tok.IDs(clean.Whitespace(long))[:refContext-2]) || enc[refContext-1] != tok.SEP() {
		t.Errorf("Encode of the long text is not [CLS], its first %d ids, [SEP]", refContext-2)
	}
}

// TestCodepoints: every code point alone and between two letters, raw and
// through Encode, hashed per block of 4,096 code points as gen/refs.py
// hashes the reference tokenizer's ids.
func TestCodepoints(t *testing.T) {
	_, recs := loadExpected(t, "codepoints")
	tok := loadTokenizer(t, refContext)
	got := make([]string, len(recs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(recs); i = int(next.Add(1)) - 1 {
				start, err := strconv.ParseInt(recs[i].Key, 16, 32)
				if err != nil {
					panic(err)
				}
				got[i] = hashBlock(tok, rune(start))
			}
		})
	}
	wg.Wait()
	match := 0
	for i, r := range recs {
		if got[i] == r.Hash {
			match++
		} else {
			t.Errorf("code points U+%s and the 4,095 after: ids differ from the reference tokenizer's", strings.ToUpper(r.Key))
		}
	}
	t.Logf("%d/%d blocks of code points match", match, len(recs))
}

// hashBlock is gen/refs.py's hash of the ids of the 4,096 code points from
// start.
func hashBlock(tok *Tokenizer, start rune) string {
	h := sha256.New()
	enc := make([]int32, refContext)
	var buf []byte
	put := func(ids []int32) {
		buf = buf[:0]
		for _, id := range append(ids, -1) {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(id))
		}
		h.Write(buf)
	}
	for cp := start; cp < start+4096 && cp <= unicode.MaxRune; cp++ {
		if 0xD800 <= cp && cp <= 0xDFFF {
			continue
		}
		framed := "x" + string(cp) + "y"
		put(tok.IDs(string(cp)))
		put(tok.IDs(framed))
		tok.EncodeTo(enc, framed)
		put(trim(enc, tok.Pad()))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// readCaptions reads a ROCO captions.txt: ID, tab, caption (with its
// leading space) per line.
func readCaptions(t testing.TB, split string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(testshared.Path(t, filepath.Join("data/captions", split, "captions.txt")))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(string(data), "\n") {
		if line == "" {
			continue
		}
		key, text, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("%s: line %q has no tab", split, line)
		}
		out[key] = text
	}
	return out
}

func trim(ids []int32, pad int32) []int32 {
	for len(ids) > 0 && ids[len(ids)-1] == pad {
		ids = ids[:len(ids)-1]
	}
	return ids
}
