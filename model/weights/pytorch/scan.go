package pytorch

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// argKind is how a pickle opcode's argument is encoded in the stream.
type argKind uint8

const (
	argNone     argKind = iota
	argFixed            // a fixed number of bytes (argSize)
	argLine             // up to and including a newline
	argTwoLines         // two newline-terminated lines (GLOBAL, INST)
	argLen1             // a 1-byte length, then that many bytes
	argLen4             // a 4-byte little-endian length, then that many bytes
	argLen8             // an 8-byte little-endian length, then that many bytes
	argFrame            // FRAME: an 8-byte length of the frame that follows
)

type opcode struct {
	kind argKind
	size int // bytes of an argFixed argument
}

// opcodes are the pickle opcodes of protocols 0 to 5 and their argument
// encodings (Python's Lib/pickletools.py documents each one).
var opcodes = func() map[byte]opcode {
	m := map[byte]opcode{}
	for _, c := range []byte("(.012NQRabd}el])ostu\x81\x85\x86\x87\x88\x89\x8f\x90\x91\x92\x93\x94\x97\x98") {
		m[c] = opcode{kind: argNone}
	}
	for c, n := range map[byte]int{'J': 4, 'K': 1, 'M': 2, 'h': 1, 'j': 4, 'q': 1, 'r': 4, 'G': 8, 0x80: 1, 0x82: 1, 0x83: 2, 0x84: 4} {
		m[c] = opcode{kind: argFixed, size: n}
	}
	for _, c := range []byte("FILPSVgp") {
		m[c] = opcode{kind: argLine}
	}
	m['c'] = opcode{kind: argTwoLines}
	m['i'] = opcode{kind: argTwoLines}
	for _, c := range []byte{'U', 'C', 0x8a, 0x8c} {
		m[c] = opcode{kind: argLen1}
	}
	for _, c := range []byte{'T', 'X', 'B', 0x8b} {
		m[c] = opcode{kind: argLen4}
	}
	for _, c := range []byte{0x8d, 0x8e, 0x96} {
		m[c] = opcode{kind: argLen8}
	}
	m[0x95] = opcode{kind: argFrame}
	return m
}()

// maxLine bounds a text argument (a decimal number, a module or class
// name); pickle never writes longer ones.
const maxLine = 1 << 16

// scanPickle reads one pickle from r, up to and including its STOP
// opcode, without building anything, and returns its length. It checks
// that every length the stream declares fits in the limit bytes that
// remain, so the unpickler, which allocates a declared length before
// reading it, is never asked for more memory than the file holds.
func scanPickle(r io.Reader, limit int64) (int64, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	var n int64
	skip := func(k int64) error {
		if k < 0 || k > limit-n {
			return fmt.Errorf("byte %d: a length of %d reaches past the end of the data (%d bytes)", n, k, limit)
		}
		d, err := br.Discard(int(k))
		n += int64(d)
		return err
	}
	readN := func(k int) ([]byte, error) {
		if int64(k) > limit-n {
			return nil, io.ErrUnexpectedEOF
		}
		var buf [8]byte
		_, err := io.ReadFull(br, buf[:k])
		n += int64(k)
		return buf[:k], err
	}
	line := func() error {
		for i := 0; ; i++ {
			if n >= limit || i > maxLine {
				return fmt.Errorf("byte %d: unterminated text argument", n)
			}
			c, err := br.ReadByte()
			if err != nil {
				return err
			}
			n++
			if c == '\n' {
				return nil
			}
		}
	}
	for {
		if n >= limit {
			return n, fmt.Errorf("%w: no STOP opcode before byte %d", errTruncated, n)
		}
		c, err := br.ReadByte()
		if err != nil {
			return n, err
		}
		n++
		op, ok := opcodes[c]
		if !ok {
			return n, fmt.Errorf("byte %d: unknown pickle opcode %#x", n-1, c)
		}
		switch op.kind {
		case argNone:
			if c == '.' {
				return n, nil
			}
		case argFixed:
			_, err = readN(op.size)
		case argLine:
			err = line()
		case argTwoLines:
			if err = line(); err == nil {
				err = line()
			}
		case argLen1, argLen4, argLen8:
			width := map[argKind]int{argLen1: 1, argLen4: 4, argLen8: 8}[op.kind]
			var b []byte
			if b, err = readN(width); err == nil {
				err = skip(declaredLength(b))
			}
		case argFrame:
			// The frame's bytes are opcodes too, scanned as they come;
			// only its length needs checking.
			var b []byte
			if b, err = readN(8); err == nil {
				if k := declaredLength(b); k < 0 || k > limit-n {
					err = fmt.Errorf("byte %d: a frame of %d bytes reaches past the end of the data (%d bytes)", n, k, limit)
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
}

// declaredLength decodes a little-endian length of 1, 4 or 8 bytes; a
// 4-byte length is signed (BINSTRING, LONG4), so a negative one, or an
// 8-byte one past int64, comes back negative.
func declaredLength(b []byte) int64 {
	switch len(b) {
	case 1:
		return int64(b[0])
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(b)))
	}
	return int64(binary.LittleEndian.Uint64(b))
}

// errTruncated marks a pickle that ends before its STOP opcode.
var errTruncated = errors.New("pickle is truncated")
