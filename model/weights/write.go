package weights

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/bmca/bmca/internal/atomicfile"
)

// WriteFile writes sd and metadata to path as a safetensors file,
// atomically (see package atomicfile): on any error the previous file at path, if
// any, is left untouched. The output is the one Write produces, so it depends
// only on sd and metadata. The file gets mode 0644.
func WriteFile(path string, sd StateDict, metadata map[string]string) error {
	header, names, err := encodeHeader(sd, metadata)
	if err != nil {
		return fmt.Errorf("weights: writing %s: %w", path, err)
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		return writeBody(w, header, names, sd)
	})
}

// Write writes sd and metadata to w in safetensors format, exactly as the
// Rust safetensors library lays it out: the JSON header lists the tensors in
// sorted-name order with contiguous data offsets, then "__metadata__" when
// metadata is not empty; it is padded with spaces to a multiple of 8 bytes,
// so the data section is 8-byte aligned. The same input always gives the
// same bytes. Every tensor is checked before anything is written.
func Write(w io.Writer, sd StateDict, metadata map[string]string) error {
	header, names, err := encodeHeader(sd, metadata)
	if err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	return writeBody(w, header, names, sd)
}

// writeBody writes the length prefix, the header and then each tensor's data.
func writeBody(w io.Writer, header []byte, names []string, sd StateDict) error {
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	for _, name := range names {
		if _, err := w.Write(sd[name].Data); err != nil {
			return err
		}
	}
	return nil
}

// encodeHeader validates sd and metadata and returns the padded JSON header
// and the tensor names in the order their data follows it.
func encodeHeader(sd StateDict, metadata map[string]string) ([]byte, []string, error) {
	names := sd.Names()
	b := []byte{'{'}
	var offset uint64
	for i, name := range names {
		t := sd[name]
		switch {
		case name == metadataKey:
			return nil, nil, fmt.Errorf("tensor name %q is reserved for the metadata", name)
		case !utf8.ValidString(name):
			return nil, nil, fmt.Errorf("tensor name %q is not valid UTF-8", name)
		}
		if err := t.check(); err != nil {
			return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, name)
		b = append(b, `:{"dtype":`...)
		b = appendJSONString(b, string(t.DType))
		b = append(b, `,"shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(d), 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendUint(b, offset, 10)
		offset += uint64(len(t.Data))
		b = append(b, ',')
		b = strconv.AppendUint(b, offset, 10)
		b = append(b, "]}"...)
	}
	if len(metadata) > 0 {
		if len(names) > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, metadataKey)
		b = append(b, ":{"...)
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			v := metadata[k]
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, nil, fmt.Errorf("metadata %q: %q is not valid UTF-8", k, v)
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, v)
		}
		b = append(b, '}')
	}
	b = append(b, '}')
	for len(b)%8 != 0 {
		b = append(b, ' ')
	}
	return b, names, nil
}

// appendJSONString appends s as a JSON string escaped the way serde_json
// (and so the Rust safetensors library) does it: only '"', '\\' and control
// characters are escaped; everything else, non-ASCII included, is written
// as is. s must be valid UTF-8.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
