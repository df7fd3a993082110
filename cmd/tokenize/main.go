// Command tokenize turns captions into OpenCLIP token ids: JSON lines
// {"text": ...} on standard input, JSON lines {"ids": [...]} on standard
// output, one per input line, in order.
//
//	echo '{"text": "Axial CT of the chest"}' | go run ./cmd/tokenize --vocab bpe_simple_vocab_16e6.txt.gz
//	{"ids":[49406,13518,...,49407,0,...]}
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

	"github.com/bmca/bmca/text/tokenizer"
)

func main() {
	fs := flag.NewFlagSet("tokenize", flag.ExitOnError)
	vocab := fs.String("vocab", "", "OpenCLIP's bpe_simple_vocab_16e6.txt.gz (`PATH`), or a Hugging Face folder with vocab.json and merges.txt")
	contextLength := fs.Int("context-length", 77, "ids per text (`N`), SOT and EOT included")
	batch := fs.Int("batch", 4096, "texts encoded together (`N`), spread over all cores")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tokenize --vocab PATH [--context-length 77] < texts.jsonl > ids.jsonl\n\n"+
			"Reads JSON lines {\"text\": ...} and writes {\"ids\": [...]} for each, in order, with\n"+
			"OpenCLIP's SimpleTokenizer (%s).\n\nFlags:\n", tokenizer.CLIPVocabSource)
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	tok, err := tokenizer.New(tokenizer.NameCLIPBPE, *contextLength, *vocab)
	if err != nil {
		fatal(err)
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	if err := run(os.Stdin, out, tok, max(*batch, 1)); err != nil {
		_ = out.Flush()
		fatal(err)
	}
	if err := out.Flush(); err != nil {
		fatal(err)
	}
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
