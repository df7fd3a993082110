package weights

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"unicode/utf8"
)

// maxHeaderSize is the largest JSON header accepted, the same limit as the
// Rust safetensors library.
const maxHeaderSize = 100_000_000

// metadataKey is the header entry that holds the free-form string metadata.
const metadataKey = "__metadata__"

// FormatError reports a file that is not valid safetensors: a bad header,
// an unknown dtype, data offsets that do not tile the data section, and so
// on. Callers can tell it from an I/O error with errors.As.
type FormatError struct {
	Path   string // the file, or "" when reading from an io.ReaderAt
	Tensor string // the offending tensor, or "" for a problem with the whole file
	Reason string // what is wrong
}

func (e *FormatError) Error() string {
	s := "invalid safetensors file"
	if e.Path != "" {
		s += " " + e.Path
	}
	if e.Tensor != "" {
		s += fmt.Sprintf(": tensor %q", e.Tensor)
	}
	return s + ": " + e.Reason
}

// ErrNotFound is returned (wrapped) by File.Tensor for a name the file does
// not hold.
var ErrNotFound = errors.New("no such tensor")

// File is an open safetensors file whose header has been read and
// validated; tensors are read on demand, one at a time, so a checkpoint never
// needs to fit in memory twice. Its methods are safe for concurrent use.
type File struct {
	path     string
	r        io.ReaderAt
	closer   io.Closer // nil unless the File owns r
	metadata map[string]string
	entries  map[string]entry
	names    []string // sorted
	byOffset []string // in the order of the data section
}

// entry locates one tensor; begin and end are absolute file offsets.
type entry struct {
	dtype      DType
	shape      []int
	begin, end int64
}

// Open opens a safetensors file and reads and validates its header. The
// tensor data is not read until Tensor is called. Close the File when done.
func Open(path string) (*File, error) {
	osf, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	st, err := osf.Stat()
	if err != nil {
		osf.Close()
		return nil, fmt.Errorf("weights: %w", err)
	}
	f, err := newFile(osf, st.Size(), path)
	if err != nil {
		osf.Close()
		return nil, err
	}
	f.closer = osf
	return f, nil
}

// Close releases the file. Tensors already returned stay valid.
func (f *File) Close() error {
	if f.closer == nil {
		return nil
	}
	return f.closer.Close()
}

// Names returns the tensor names in sorted order.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Metadata returns a copy of the header's "__metadata__" map (empty when the
// file has none).
func (f *File) Metadata() map[string]string { return maps.Clone(f.metadata) }

// Info returns a tensor's dtype and shape from the header, without reading
// its data; ok is false when the file has no such tensor.
func (f *File) Info(name string) (dtype DType, shape []int, ok bool) {
	e, ok := f.entries[name]
	if !ok {
		return "", nil, false
	}
	return e.dtype, slices.Clone(e.shape), true
}

// Tensor reads one tensor's data straight into a new slice. The error wraps
// ErrNotFound when the file has no such tensor.
func (f *File) Tensor(name string) (Tensor, error) {
	e, ok := f.entries[name]
	if !ok {
		return Tensor{}, fmt.Errorf("weights: %s: tensor %q: %w", f.displayPath(), name, ErrNotFound)
	}
	data := make([]byte, e.end-e.begin)
	if err := readFullAt(f.r, data, e.begin); err != nil {
		return Tensor{}, fmt.Errorf("weights: %s: reading tensor %q: %w", f.displayPath(), name, err)
	}
	return Tensor{DType: e.dtype, Shape: slices.Clone(e.shape), Data: data}, nil
}

// Rows reads count consecutive entries of a tensor's first axis, starting at
// first: a tensor of shape [count, shape[1:]...]. Row-major storage makes
// them one contiguous range, so a file of many batches is read one batch at
// a time. A 0-d tensor has no rows.
func (f *File) Rows(name string, first, count int) (Tensor, error) {
	e, ok := f.entries[name]
	if !ok {
		return Tensor{}, fmt.Errorf("weights: %s: tensor %q: %w", f.displayPath(), name, ErrNotFound)
	}
	if len(e.shape) == 0 || first < 0 || count < 0 || first+count > e.shape[0] {
		return Tensor{}, fmt.Errorf("weights: %s: tensor %q of shape %v has no rows %d..%d", f.displayPath(), name, e.shape, first, first+count-1)
	}
	rowBytes := int64(e.dtype.Size())
	for _, d := range e.shape[1:] {
		rowBytes *= int64(d)
	}
	data := make([]byte, int64(count)*rowBytes)
	if err := readFullAt(f.r, data, e.begin+int64(first)*rowBytes); err != nil {
		return Tensor{}, fmt.Errorf("weights: %s: reading rows %d..%d of tensor %q: %w", f.displayPath(), first, first+count-1, name, err)
	}
	return Tensor{DType: e.dtype, Shape: append([]int{count}, e.shape[1:]...), Data: data}, nil
}

// readAll reads every tensor, in file order so the reads are sequential.
func (f *File) readAll() (StateDict, error) {
	sd := make(StateDict, len(f.entries))
	for _, name := range f.byOffset {
		t, err := f.Tensor(name)
		if err != nil {
			return nil, err
		}
		sd[name] = t
	}
	return sd, nil
}

func (f *File) displayPath() string {
	if f.path == "" {
		return "safetensors data"
	}
	return f.path
}

// ReadFile reads a whole safetensors file: every tensor, and the header's
// "__metadata__" map (empty when absent). Each tensor's data is read
// directly into its own slice.
func ReadFile(path string) (StateDict, map[string]string, error) {
	f, err := Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	sd, err := f.readAll()
	if err != nil {
		return nil, nil, err
	}
	return sd, f.metadata, nil
}

// Read is ReadFile for safetensors data of the given size held by r.
func Read(r io.ReaderAt, size int64) (StateDict, map[string]string, error) {
	f, err := newFile(r, size, "")
	if err != nil {
		return nil, nil, err
	}
	sd, err := f.readAll()
	if err != nil {
		return nil, nil, err
	}
	return sd, f.metadata, nil
}

// readFullAt fills buf from r at off, treating a short read as an error.
func readFullAt(r io.ReaderAt, buf []byte, off int64) error {
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// newFile reads and validates the header of size bytes of safetensors data.
func newFile(r io.ReaderAt, size int64, path string) (*File, error) {
	bad := func(tensor, format string, args ...any) error {
		return &FormatError{Path: path, Tensor: tensor, Reason: fmt.Sprintf(format, args...)}
	}
	if size < 8 {
		return nil, bad("", "%d bytes long, too short for the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if err := readFullAt(r, lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("weights: %s: reading the header length: %w", displayPath(path), err)
	}
	hlen := binary.LittleEndian.Uint64(lenBuf[:])
	if hlen > uint64(size-8) {
		return nil, bad("", "header length %d is beyond the end of the file (%d bytes, so at most %d); the file is truncated or not safetensors", hlen, size, size-8)
	}
	if hlen > maxHeaderSize {
		return nil, bad("", "header length %d exceeds the %d-byte limit", hlen, maxHeaderSize)
	}
	header := make([]byte, hlen)
	if err := readFullAt(r, header, 8); err != nil {
		return nil, fmt.Errorf("weights: %s: reading the header: %w", displayPath(path), err)
	}
	f := &File{path: path, r: r}
	dataStart := 8 + int64(hlen)
	if err := f.parseHeader(header, dataStart, size-dataStart); err != nil {
		return nil, err
	}
	return f, nil
}

func displayPath(path string) string {
	if path == "" {
		return "safetensors data"
	}
	return path
}

// headerEntry is one tensor's description in the JSON header.
type headerEntry struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

// parseHeader decodes and validates the JSON header. The data section
// starts at file offset dataStart and is dataLen bytes long; the tensors
// must tile it exactly, without gaps or overlaps.
func (f *File) parseHeader(header []byte, dataStart, dataLen int64) error {
	bad := func(tensor, format string, args ...any) error {
		return &FormatError{Path: f.path, Tensor: tensor, Reason: fmt.Sprintf(format, args...)}
	}
	if !utf8.Valid(header) {
		return bad("", "header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.DisallowUnknownFields()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return bad("", "header is not a JSON object (starts with %q)", truncate(header, 20))
	}
	f.entries = map[string]entry{}
	f.metadata = map[string]string{}
	seenMetadata := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad("", "bad header JSON: %v", err)
		}
		name := tok.(string) // object keys are always strings
		if name == metadataKey {
			if seenMetadata {
				return bad("", "header has two %q entries", metadataKey)
			}
			seenMetadata = true
			var md map[string]string
			if err := dec.Decode(&md); err != nil {
				return bad("", "%q must map strings to strings: %v", metadataKey, err)
			}
			if md != nil {
				f.metadata = md
			}
			continue
		}
		if _, dup := f.entries[name]; dup {
			return bad(name, "appears twice in the header")
		}
		var h headerEntry
		if err := dec.Decode(&h); err != nil {
			return bad(name, "bad JSON in header entry: %v", err)
		}
		e, err := h.entry(dataLen)
		if err != nil {
			return bad(name, "%v", err)
		}
		e.begin += dataStart
		e.end += dataStart
		f.entries[name] = e
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return bad("", "bad header JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("", "unexpected data after the header's JSON object")
	}

	// The tensors must tile the data section exactly.
	f.names = slices.Sorted(maps.Keys(f.entries))
	f.byOffset = slices.Clone(f.names)
	slices.SortStableFunc(f.byOffset, func(a, b string) int {
		ea, eb := f.entries[a], f.entries[b]
		if ea.begin != eb.begin {
			return cmp.Compare(ea.begin, eb.begin)
		}
		return cmp.Compare(ea.end, eb.end)
	})
	next, prev := dataStart, ""
	for _, name := range f.byOffset {
		e := f.entries[name]
		switch {
		case e.begin < next:
			p := f.entries[prev]
			return bad(name, "data_offsets [%d,%d] overlap those of tensor %q [%d,%d]",
				e.begin-dataStart, e.end-dataStart, prev, p.begin-dataStart, p.end-dataStart)
		case e.begin > next && prev == "":
			return bad(name, "data_offsets [%d,%d] leave the first %d bytes of the data unused", e.begin-dataStart, e.end-dataStart, e.begin-next)
		case e.begin > next:
			return bad(name, "data_offsets [%d,%d] leave a hole of %d bytes after tensor %q", e.begin-dataStart, e.end-dataStart, e.begin-next, prev)
		}
		next, prev = e.end, name
	}
	if next != dataStart+dataLen {
		return bad("", "the last %d bytes of the data belong to no tensor (data section is %d bytes, tensors cover %d)",
			dataStart+dataLen-next, dataLen, next-dataStart)
	}
	return nil
}

// entry validates a header entry against a data section of dataLen bytes
// and returns it with offsets relative to the data section.
func (h headerEntry) entry(dataLen int64) (entry, error) {
	if h.DType == nil {
		return entry{}, errors.New(`no "dtype"`)
	}
	if h.Shape == nil {
		return entry{}, errors.New(`no "shape"`)
	}
	if h.DataOffsets == nil {
		return entry{}, errors.New(`no "data_offsets"`)
	}
	dtype := DType(*h.DType)
	if dtype.Size() == 0 {
		return entry{}, fmt.Errorf("unknown dtype %q (supported: %v)", dtype, dtypes)
	}
	shape := make([]int, len(*h.Shape))
	for i, d := range *h.Shape {
		if d < 0 || d > math.MaxInt {
			return entry{}, fmt.Errorf("shape %v has an invalid dimension %d", *h.Shape, d)
		}
		shape[i] = int(d)
	}
	offs := *h.DataOffsets
	if len(offs) != 2 {
		return entry{}, fmt.Errorf("data_offsets %v must be two numbers [begin,end]", offs)
	}
	begin, end := offs[0], offs[1]
	switch {
	case begin < 0 || end < begin:
		return entry{}, fmt.Errorf("data_offsets [%d,%d] are not an ordered range", begin, end)
	case end > dataLen:
		return entry{}, fmt.Errorf("data_offsets [%d,%d] reach past the end of the data (%d bytes); the file is truncated or the header is wrong", begin, end, dataLen)
	}
	n, err := numElements64(shape)
	if err != nil {
		return entry{}, err
	}
	if want := n * uint64(dtype.Size()); uint64(end-begin) != want {
		return entry{}, fmt.Errorf("data_offsets [%d,%d] hold %d bytes, but %s shape %v needs %d", begin, end, end-begin, dtype, shape, want)
	}
	return entry{dtype: dtype, shape: shape, begin: begin, end: end}, nil
}

// truncate returns at most n leading bytes of b as a string, for messages.
func truncate(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}
