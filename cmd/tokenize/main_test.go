package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/testshared"
	"github.com/bmca/bmca/text/tokenizer"
)

// TestRunPublicReferences pipes the public reference file through the
// command's loop (its lines carry "ids" too; the extra field is ignored)
// with a small batch, and checks every output line.
func TestRunPublicReferences(t *testing.T) {
	tok, err := tokenizer.New(tokenizer.NameCLIPBPE, 77, testshared.Path(t, "data/tokenizer/bpe_simple_vocab_16e6.txt.gz"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.ReadFile(testshared.Path(t, "reference/tokenizer/public.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(bytes.NewReader(in), &out, tok, 100); err != nil {
		t.Fatal(err)
	}
	want := bufio.NewScanner(bytes.NewReader(in))
	want.Buffer(make([]byte, 1<<20), 1<<20)
	got := bufio.NewScanner(&out)
	n := 0
	for want.Scan() {
		n++
		if !got.Scan() {
			t.Fatalf("output ends after %d lines", n-1)
		}
		var w, g struct{ IDs []int32 }
		if err := json.Unmarshal(want.Bytes(), &w); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got.Bytes(), &g); err != nil {
			t.Fatalf("output line %d: %v", n, err)
		}
		if !slices.Equal(w.IDs, g.IDs) {
			t.Errorf("line %d: got %v, want %v", n, g.IDs, w.IDs)
		}
	}
	if got.Scan() {
		t.Errorf("more output lines than the %d input lines", n)
	}
}

// TestRunOrder: one output line per input line, in order, across batches
// and with or without a final newline.
func TestRunOrder(t *testing.T) {
	tok := tokenizer.NewByteLevel(8)
	var in strings.Builder
	var texts []string
	for i := range 10 {
		s := fmt.Sprintf("caption %d \u00e9\"", i)
		texts = append(texts, s)
		b, _ := json.Marshal(map[string]string{"text": s})
		in.Write(b)
		if i < 9 {
			in.WriteByte('\n')
		}
	}
	var out bytes.Buffer
	if err := run(strings.NewReader(in.String()), &out, tok, 3); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(texts) {
		t.Fatalf("%d output lines for %d texts", len(lines), len(texts))
	}
	for i, line := range lines {
		var g struct{ IDs []int32 }
		if err := json.Unmarshal([]byte(line), &g); err != nil {
			t.Fatalf("line %d %q: %v", i+1, line, err)
		}
		if want := tok.Encode(texts[i]); !slices.Equal(g.IDs, want) {
			t.Errorf("line %d: got %v, want %v", i+1, g.IDs, want)
		}
	}
}

func TestRunErrors(t *testing.T) {
	tok := tokenizer.NewByteLevel(8)
	cases := []struct{ in, want string }{
		{"{\"text\": \"a\"}\nnot json\n", "line 2"},
		{"{\"text\": \"a\"}\n{\"caption\": \"b\"}\n", "line 2: no \"text\""},
		{"\n", "line 1"},
	}
	for _, c := range cases {
		err := run(strings.NewReader(c.in), &bytes.Buffer{}, tok, 4)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run(%q) = %v, want an error mentioning %q", c.in, err, c.want)
		}
	}
}

// TestBERTWordPiece: --tokenizer bert-wordpiece gives BiomedCLIP's
// tokenizer at its context length.
func TestBERTWordPiece(t *testing.T) {
	tok, err := newTokenizer(tokenizer.NameBERTWordPiece, "../../text/wordpiece/testdata/vocab.txt", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(strings.NewReader(`{"text": "Axial CT of the chest"}`+"\n"), &out, tok, 10); err != nil {
		t.Fatal(err)
	}
	var got struct{ IDs []int32 }
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	// The ids of OpenCLIP's HFTokenizer with BiomedBERT's vocabulary.
	want := append([]int32{2, 9438, 3369, 1927, 1920, 8475, 3}, make([]int32, 256-7)...)
	if !slices.Equal(got.IDs, want) {
		t.Errorf("ids %v, want %v", got.IDs, want)
	}
	if _, err := newTokenizer("bpe", "", 0); err == nil {
		t.Error("an unknown tokenizer was accepted")
	}
}
