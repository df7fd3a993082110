package tokenizer

// ByteLevel maps each UTF-8 byte b to id b+1; it needs no vocabulary file and
// serves the demo. Ids: 0 pad, 1..256 bytes, 257 SOT, 258 EOT.
type ByteLevel struct {
	contextLength int
}

// Special ids of the byte-level vocabulary.
const (
	ByteLevelSOT       = 257
	ByteLevelEOT       = 258
	ByteLevelVocabSize = 259
)

// NewByteLevel returns a byte-level tokenizer producing contextLength ids.
func NewByteLevel(contextLength int) *ByteLevel {
	return &ByteLevel{contextLength: contextLength}
}

// Encode implements Tokenizer. The text is lower-cased (ASCII only) so that
// the demo's prompts and captions share ids regardless of capitalisation.
func (b *ByteLevel) Encode(text string) []int32 {
	body := make([]int32, 0, min(len(text), b.contextLength))
	for i := 0; i < len(text) && len(body) < b.contextLength; i++ {
		c := text[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		body = append(body, int32(c)+1)
	}
	return pack(body, ByteLevelSOT, ByteLevelEOT, b.contextLength)
}

// ContextLength implements Tokenizer.
func (b *ByteLevel) ContextLength() int { return b.contextLength }

// VocabSize implements Tokenizer.
func (b *ByteLevel) VocabSize() int { return ByteLevelVocabSize }
