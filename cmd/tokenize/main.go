// Command tokenize turns captions into OpenCLIP token ids: JSON lines
// {"text": ...} on standard input, JSON lines {"ids": [...]} on standard
// output, one per input line, in order. It runs OpenCLIP's CLIP tokenizer,
// or with --tokenizer bert-wordpiece BERT's uncased WordPiece as OpenCLIP
// runs it for BiomedCLIP.
//
//	echo '{"text": "Axial CT of the chest"}' | go run ./cmd/tokenize --vocab bpe_simple_vocab_16e6.txt.gz
//	{"ids":[49406,13518,...,49407,0,...]}
//	echo '{"text": "Axial CT of the chest"}' | go run ./cmd/tokenize --tokenizer bert-wordpiece --vocab vocab.txt
//	{"ids":[2,9438,3369,1927,1920,8475,3,0,...]}
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/bmca/bmca/internal/cli/cliflag"
	"github.com/bmca/bmca/text/tokenizer"
)

func main() {
	fs := flag.NewFlagSet("tokenize", flag.ExitOnError)
	name := fs.String("tokenizer", tokenizer.NameCLIPBPE, "tokenizer `NAME`: clip-bpe (OpenCLIP's SimpleTokenizer) or bert-wordpiece (BERT uncased WordPiece through OpenCLIP's HFTokenizer, as for BiomedCLIP)")
	vocab := fs.String("vocab", "", "vocabulary `PATH`: for clip-bpe OpenCLIP's bpe_simple_vocab_16e6.txt.gz, or a Hugging Face folder with vocab.json and merges.txt;\nfor bert-wordpiece a BERT vocab.txt, or the Hugging Face tokenizer folder holding it")
	contextLength := fs.Int("context-length", 0, "ids per text (`N`), start and end tokens included; 0: 77 for clip-bpe, 256 (BiomedCLIP's) for bert-wordpiece")
	var batch int
	cliflag.BatchSize(fs, &batch, 4096, "texts encoded together (`N`), spread over all cores")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tokenize [--tokenizer clip-bpe|bert-wordpiece] --vocab PATH [--context-length N] [--batch-size N] < texts.jsonl > ids.jsonl\n\n"+
			"Reads JSON lines {\"text\": ...} and writes {\"ids\": [...]} for each, in order, with\n"+
			"OpenCLIP's SimpleTokenizer (%s)\n"+
			"or BERT's uncased WordPiece tokenizer as OpenCLIP's HFTokenizer runs it.\n\nFlags:\n", tokenizer.CLIPVocabSource)
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	tok, err := newTokenizer(*name, *vocab, *contextLength)
	if err != nil {
		fatal(err)
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	if err := run(os.Stdin, out, tok, max(batch, 1)); err != nil {
		_ = out.Flush()
		fatal(err)
	}
	if err := out.Flush(); err != nil {
		fatal(err)
	}
}

// newTokenizer builds the named tokenizer; a zero context length means
// that of the models it serves: OpenCLIP's CLIP models (77), BiomedCLIP
// (256).
func newTokenizer(name, vocab string, contextLength int) (tokenizer.Tokenizer, error) {
	if contextLength == 0 {
		contextLength = 77
		if name == tokenizer.NameBERTWordPiece {
			contextLength = 256
		}
	}
	return tokenizer.New(name, contextLength, vocab)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "tokenize:", err)
	os.Exit(1)
}

// run reads JSON lines from r and writes one ids line per input line to w,
// encoding batch lines at a time.
func run(r io.Reader, w io.Writer, tok tokenizer.Tokenizer, batch int) error {
	in := bufio.NewReaderSize(r, 1<<20)
	texts := make([]string, 0, batch)
	line := 0
	var buf []byte
	flush := func() error {
		ids := tokenizer.EncodeBatch(tok, texts)
		n := tok.ContextLength()
		for i := range texts {
			buf = appendIDsLine(buf[:0], ids[i*n:(i+1)*n])
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("writing ids: %w", err)
			}
		}
		texts = texts[:0]
		return nil
	}
	for {
		raw, err := in.ReadBytes('\n')
		if len(raw) > 0 {
			line++
			var rec struct {
				Text *string `json:"text"`
			}
			if jerr := json.Unmarshal(raw, &rec); jerr != nil {
				return fmt.Errorf("stdin line %d: %w", line, jerr)
			}
			if rec.Text == nil {
				return fmt.Errorf("stdin line %d: no \"text\" field", line)
			}
			texts = append(texts, *rec.Text)
			if len(texts) == batch {
				if ferr := flush(); ferr != nil {
					return ferr
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("stdin line %d: %w", line+1, err)
		}
	}
	return flush()
}

// appendIDsLine appends {"ids":[...]} and a newline.
func appendIDsLine(dst []byte, ids []int32) []byte {
	dst = append(dst, `{"ids":[`...)
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendInt(dst, int64(id), 10)
	}
	return append(dst, "]}\n"...)
}
