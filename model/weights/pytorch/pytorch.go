// Package pytorch reads checkpoints written by PyTorch's torch.save without
// PyTorch: the zip layout every torch ≥ 1.6 writes (".pt", ".pth",
// Hugging Face's "pytorch_model.bin", OpenCLIP's
// "open_clip_pytorch_model.bin") and the older single-stream layout.
//
// The pickled object tree (the data.pkl of the zip) is decoded with
// github.com/nlpodyssey/gopickle's unpickler, but tensors are not: each one
// becomes a *Tensor that remembers where its bytes are in the file (storage
// key, offset, size, stride) and reads them only when asked, straight into
// a weights.Tensor. Only the tensors a caller reads are ever in memory, so a
// training checkpoint's optimizer state costs nothing when only the weights
// are wanted, and a large model never needs two copies.
//
//	f, err := pytorch.Open("epoch_32.pt")
//	defer f.Close()
//	items, _ := pytorch.DictEntries(f.Root())     // {"epoch": 32, "state_dict": {...}, ...}
//	t := value.(*pytorch.Tensor)                  // a leaf of the tree
//	w, err := t.Read()                            // weights.Tensor, row-major, little-endian
//
// Python classes the reader does not interpret (argparse.Namespace,
// numpy scalars, …) decode as *Object, so unrelated parts of a checkpoint
// never stop it from loading. TorchScript archives (torch.jit.save, such as
// OpenAI's original CLIP files) are refused with ErrTorchScript.
package pytorch

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/bits"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/bmca/bmca/model/weights"
	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// ErrTorchScript is returned (wrapped) by Open for a TorchScript archive,
// whose modules are compiled code rather than a pickled state dict.
var ErrTorchScript = errors.New("TorchScript archive (torch.jit.save), not a torch.save checkpoint; load it with torch.jit.load and torch.save its state_dict()")

// ErrNotPyTorch is returned (wrapped) by Open for a file that is neither a
// torch.save zip archive nor a legacy torch.save stream.
var ErrNotPyTorch = errors.New("not a PyTorch checkpoint")

// legacyMagic is the number the pre-1.6 format pickles first
// (torch/serialization.py MAGIC_NUMBER), and legacyProtocol the second.
const (
	legacyMagic    = "1950a86a20f9469cfc6c"
	legacyProtocol = 1001
)

// File is an open PyTorch checkpoint. Open decodes its object tree; tensor
// data stays in the file until Tensor.Read. Reads are safe for concurrent
// use. Close the File when done; tensors read before stay valid.
type File struct {
	path   string
	osf    *os.File
	root   any
	legacy bool
}

// Open reads the object tree of a torch.save checkpoint.
func Open(path string) (*File, error) {
	osf, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pytorch: %w", err)
	}
	st, err := osf.Stat()
	if err != nil {
		osf.Close()
		return nil, fmt.Errorf("pytorch: %w", err)
	}
	f := &File{path: path, osf: osf}
	if IsZip(osf) {
		err = f.openZip(st.Size())
	} else {
		f.legacy = true
		err = f.openLegacy(st.Size())
	}
	if err != nil {
		osf.Close()
		return nil, fmt.Errorf("pytorch: %s: %w", path, err)
	}
	return f, nil
}

// IsZip reports whether r starts like a zip archive ("PK\x03\x04"), which is
// how torch.save has written files since PyTorch 1.6.
func IsZip(r io.ReaderAt) bool {
	var magic [4]byte
	_, err := r.ReadAt(magic[:], 0)
	return err == nil && string(magic[:]) == "PK\x03\x04"
}

// IsLegacy reports whether r starts like a pre-1.6 torch.save stream: a
// pickle of the format's magic number. The bytes are compared, never
// unpickled, so any file (a JPEG named by mistake, a safetensors file whose
// header length happens to start with a pickle opcode) is safe to test.
func IsLegacy(r io.ReaderAt) bool {
	var head [32]byte
	n, _ := r.ReadAt(head[:], 0)
	return hasLegacyMagic(head[:n])
}

// hasLegacyMagic matches the magic number as pickle writes it: in
// protocols 0 and 1 as the text "L<decimal>L\n"; in protocols 2 to 5 as
// PROTO n, an optional FRAME (protocol 4 and later), then LONG1 with the
// number's ten little-endian bytes.
func hasLegacyMagic(b []byte) bool {
	magic, _ := new(big.Int).SetString(legacyMagic, 16)
	if bytes.HasPrefix(b, []byte("L"+magic.String()+"L\n")) {
		return true
	}
	if len(b) < 2 || b[0] != 0x80 || b[1] < 2 || b[1] > 5 {
		return false
	}
	b = b[2:]
	if len(b) >= 9 && b[0] == 0x95 { // FRAME, 8-byte length
		b = b[9:]
	}
	le := magic.Bytes()
	slices.Reverse(le)
	return bytes.HasPrefix(b, append([]byte{0x8a, byte(len(le))}, le...))
}

// Root is the decoded object: for a saved state dict an ordered dict of
// name → *Tensor; for a training checkpoint a dict holding one.
func (f *File) Root() any { return f.root }

// Path is the file Open read.
func (f *File) Path() string { return f.path }

// Close releases the file.
func (f *File) Close() error { return f.osf.Close() }

// openZip decodes <archive>/data.pkl and maps <archive>/data/<key> records
// to storages, reading nothing else.
func (f *File) openZip(size int64) error {
	zr, err := zip.NewReader(f.osf, size)
	if err != nil {
		return fmt.Errorf("%w: zip: %v", ErrNotPyTorch, err)
	}
	records := make(map[string]*zip.File, len(zr.File))
	var pkl *zip.File
	for _, zf := range zr.File {
		records[zf.Name] = zf
		// torch writes every record under one top-level folder named
		// after the file; take the shallowest data.pkl.
		if path.Base(zf.Name) == "data.pkl" && (pkl == nil || len(zf.Name) < len(pkl.Name)) {
			pkl = zf
		}
	}
	if pkl == nil {
		return fmt.Errorf("%w: zip archive without data.pkl", ErrNotPyTorch)
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	if _, ok := records[prefix+"constants.pkl"]; ok {
		return ErrTorchScript
	}
	bigEndian := false
	if bo, ok := records[prefix+"byteorder"]; ok {
		data, err := readRecord(bo)
		if err != nil {
			return fmt.Errorf("byteorder record: %w", err)
		}
		switch string(data) {
		case "little":
		case "big":
			bigEndian = true
		default:
			return fmt.Errorf("byteorder record says %q, want little or big", data)
		}
	}
	pickled, err := readRecord(pkl)
	if err != nil {
		return fmt.Errorf("%s: %w", pkl.Name, err)
	}
	if _, err := scanPickle(bytes.NewReader(pickled), int64(len(pickled))); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotPyTorch, pkl.Name, err)
	}
	storages := map[string]*storage{}
	u := newUnpickler(bytes.NewReader(pickled))
	u.PersistentLoad = func(pid any) (any, error) {
		// ('storage', storage_type, key, location, numel)
		args, ok := tupleArgs(pid)
		if !ok || len(args) < 5 || args[0] != "storage" {
			return nil, fmt.Errorf("persistent id %s is not a storage reference", TypeName(pid))
		}
		st, ok1 := args[1].(*storageType)
		key, ok2 := args[2].(string)
		numel, ok3 := toInt(args[4])
		if !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("malformed storage reference (%s, %s, %s)", TypeName(args[1]), TypeName(args[2]), TypeName(args[4]))
		}
		if s, ok := storages[key]; ok {
			return s, nil
		}
		rec, ok := records[prefix+"data/"+key]
		if !ok {
			return nil, fmt.Errorf("storage %q has no record %sdata/%s", key, prefix, key)
		}
		s := &storage{key: key, typ: st, numel: numel, bigEndian: bigEndian, zf: rec}
		off, err := rec.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("storage %q: %w", key, err)
		}
		if rec.Method == zip.Store {
			s.r, s.off = f.osf, off
		}
		if err := checkRecord(rec, off, size, numel, st); err != nil {
			return nil, fmt.Errorf("storage %q: %w", key, err)
		}
		storages[key] = s
		return s, nil
	}
	root, err := load(&u)
	if err != nil {
		return fmt.Errorf("%s: %w", pkl.Name, err)
	}
	f.root = root
	return nil
}

// maxDeflateRatio bounds how much a deflate stream can expand (1032:1,
// from its longest match per fewest bits).
const maxDeflateRatio = 1032

// checkRecord checks, before anything is allocated for it, that a storage
// record at file offset off can hold numel elements of st: the sizes the
// zip headers declare must fit the file, and a compressed record cannot
// claim more than deflate can expand to.
func checkRecord(rec *zip.File, off, fileSize int64, numel int, st *storageType) error {
	if numel < 0 {
		return fmt.Errorf("negative element count %d", numel)
	}
	stored := rec.CompressedSize64
	if rec.Method == zip.Store {
		stored = rec.UncompressedSize64
	}
	if off < 0 || off > fileSize || stored > uint64(fileSize-off) {
		return fmt.Errorf("record of %d bytes at byte %d reaches past the end of the file (%d bytes)", stored, off, fileSize)
	}
	if rec.Method != zip.Store && rec.UncompressedSize64/maxDeflateRatio > rec.CompressedSize64 {
		return fmt.Errorf("record claims %d bytes from %d compressed ones", rec.UncompressedSize64, rec.CompressedSize64)
	}
	hi, need := bits.Mul64(uint64(numel), uint64(st.size()))
	if hi != 0 || rec.UncompressedSize64 < need {
		return fmt.Errorf("holds %d bytes, its %d %s elements need more", rec.UncompressedSize64, numel, st.name)
	}
	return nil
}

func readRecord(zf *zip.File) ([]byte, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// openLegacy decodes the pre-1.6 stream: pickles of the magic number, the
// protocol version, the system info and the object, then a pickled list of
// storage keys, then each storage as an int64 element count and raw bytes.
func (f *File) openLegacy(fileSize int64) error {
	if !IsLegacy(f.osf) {
		var tarMagic [5]byte
		if _, err := f.osf.ReadAt(tarMagic[:], 257); err == nil && string(tarMagic[:]) == "ustar" {
			return fmt.Errorf("%w: the tar layout of PyTorch < 0.4 is not supported", ErrNotPyTorch)
		}
		return ErrNotPyTorch
	}
	ps := &pickles{r: f.osf, size: fileSize}
	magic, err := ps.unpickleNext()
	if err != nil {
		return fmt.Errorf("magic number: %w", err)
	}
	if n, ok := magic.(*big.Int); !ok || n.Text(16) != legacyMagic {
		return fmt.Errorf("%w: bad magic number", ErrNotPyTorch)
	}
	if v, err := ps.unpickleNext(); err != nil || v != legacyProtocol {
		return fmt.Errorf("%w: protocol version %v (want %d): %v", ErrNotPyTorch, v, legacyProtocol, err)
	}
	sysInfo, err := ps.unpickleNext()
	if err != nil {
		return fmt.Errorf("system info: %w", err)
	}
	bigEndian := false
	if items, ok := DictEntries(sysInfo); ok {
		for _, it := range items {
			if it.Key == "little_endian" && it.Value == false {
				bigEndian = true
			}
		}
	}
	storages := map[string]*storage{}
	var views []*storage
	objectPickle, err := ps.next()
	if err != nil {
		return fmt.Errorf("object pickle: %w", err)
	}
	u := newUnpickler(objectPickle)
	u.PersistentLoad = func(pid any) (any, error) {
		// ('storage', storage_type, root_key, location, numel, view_metadata)
		args, ok := tupleArgs(pid)
		if ok && len(args) >= 2 && args[0] == "module" { // a pickled nn.Module class
			return args[1], nil
		}
		if !ok || len(args) < 6 {
			return nil, fmt.Errorf("persistent id %s is not a storage reference", TypeName(pid))
		}
		st, ok1 := args[1].(*storageType)
		key, ok2 := args[2].(string)
		numel, ok3 := toInt(args[4])
		if args[0] != "storage" || !ok1 || !ok2 || !ok3 {
			return nil, fmt.Errorf("malformed storage reference %s", TypeName(pid))
		}
		root, ok := storages[key]
		if !ok {
			root = &storage{key: key, typ: st, numel: numel, bigEndian: bigEndian, r: f.osf, off: -1}
			storages[key] = root
		}
		if args[5] == nil {
			return root, nil
		}
		// (view_key, offset, view_size): a storage viewing part of root.
		view, ok := tupleArgs(args[5])
		if !ok || len(view) != 3 {
			return nil, fmt.Errorf("storage %q: malformed view %s", key, TypeName(args[5]))
		}
		offset, ok1 := toInt(view[1])
		size, ok2 := toInt(view[2])
		if !ok1 || !ok2 || offset < 0 || size < 0 {
			return nil, fmt.Errorf("storage %q: malformed view %s", key, TypeName(args[5]))
		}
		v := &storage{key: fmt.Sprint(view[0]), typ: st, numel: size, bigEndian: bigEndian, root: root, viewOffset: offset}
		views = append(views, v)
		return v, nil
	}
	root, err := load(&u)
	if err != nil {
		return fmt.Errorf("object pickle: %w", err)
	}
	keyList, err := ps.unpickleNext()
	if err != nil {
		return fmt.Errorf("storage key list: %w", err)
	}
	keys, ok := keyList.(*types.List)
	if !ok {
		return fmt.Errorf("storage key list is a %s", TypeName(keyList))
	}
	pos := ps.pos
	for _, k := range *keys {
		key, _ := k.(string)
		s, ok := storages[key]
		if !ok {
			return fmt.Errorf("storage %v is listed but never referenced", k)
		}
		var hdr [8]byte
		if _, err := f.osf.ReadAt(hdr[:], pos); err != nil {
			return fmt.Errorf("storage %q header at byte %d: %w", key, pos, err)
		}
		order := binary.ByteOrder(binary.LittleEndian)
		if bigEndian {
			order = binary.BigEndian
		}
		numel := int64(order.Uint64(hdr[:]))
		if numel != int64(s.numel) {
			return fmt.Errorf("storage %q has %d elements in the file, %d in its reference", key, numel, s.numel)
		}
		s.off = pos + 8
		if numel < 0 || numel > (fileSize-s.off)/int64(s.typ.size()) {
			return fmt.Errorf("file is truncated: storage %q of %d elements at byte %d does not fit in %d bytes", key, numel, s.off, fileSize)
		}
		pos = s.off + numel*int64(s.typ.size())
	}
	for _, s := range storages {
		if s.off < 0 {
			return fmt.Errorf("storage %q is referenced but has no data", s.key)
		}
	}
	for _, v := range views {
		if v.viewOffset+v.numel > v.root.numel {
			return fmt.Errorf("storage view %q [%d,+%d) exceeds storage %q of %d elements", v.key, v.viewOffset, v.numel, v.root.key, v.root.numel)
		}
	}
	f.root = root
	return nil
}

// pickles reads the consecutive pickles of the legacy format, each one
// scanned (scanPickle) before it is unpickled.
type pickles struct {
	r         io.ReaderAt
	pos, size int64
}

// next returns a reader over exactly the next pickle.
func (p *pickles) next() (io.Reader, error) {
	n, err := scanPickle(io.NewSectionReader(p.r, p.pos, p.size-p.pos), p.size-p.pos)
	if err != nil {
		return nil, fmt.Errorf("%w: pickle at byte %d: %v", ErrNotPyTorch, p.pos, err)
	}
	r := bufio.NewReader(io.NewSectionReader(p.r, p.pos, n))
	p.pos += n
	return r, nil
}

// unpickleNext decodes the next pickle.
func (p *pickles) unpickleNext() (any, error) {
	r, err := p.next()
	if err != nil {
		return nil, err
	}
	return unpickleOne(r)
}

func unpickleOne(r io.Reader) (any, error) {
	u := newUnpickler(r)
	return load(&u)
}

// load runs the unpickler, turning a panic inside it into an error: the
// pickle comes from a file, and gopickle indexes its stack and memo with
// values from the stream without checking them all.
func load(u *pickle.Unpickler) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%w: malformed pickle (%v)", ErrNotPyTorch, r)
		}
	}()
	return u.Load()
}

// newUnpickler returns a gopickle unpickler that builds *Tensor for torch's
// tensor reconstructors and *Object for classes it does not know.
func newUnpickler(r io.Reader) pickle.Unpickler {
	u := pickle.NewUnpickler(r)
	u.FindClass = findClass
	return u
}

func findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor_v2":
		return callable(rebuildTensor), nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		// (data, requires_grad, backward_hooks[, state]): a Parameter is its data.
		return callable(func(args ...any) (any, error) {
			if len(args) == 0 {
				return nil, errors.New("_rebuild_parameter without arguments")
			}
			return args[0], nil
		}), nil
	case "torch._tensor._rebuild_from_type_v2", "torch.tensor._rebuild_from_type_v2":
		// (func, new_type, args, state): a tensor subclass; rebuild the tensor.
		return callable(func(args ...any) (any, error) {
			if len(args) < 3 {
				return nil, errors.New("_rebuild_from_type_v2 with too few arguments")
			}
			fn, ok := args[0].(types.Callable)
			inner, ok2 := tupleArgs(args[2])
			if !ok || !ok2 {
				return nil, fmt.Errorf("_rebuild_from_type_v2(%s, …, %s)", TypeName(args[0]), TypeName(args[2]))
			}
			return fn.Call(inner...)
		}), nil
	}
	if module == "torch" && strings.HasSuffix(name, "Storage") {
		return &storageType{name: name, dtype: storageDTypes[name]}, nil
	}
	return &objectClass{module: module, name: name}, nil
}

// storageDTypes maps torch's typed storage classes to safetensors dtypes.
// Storages of other types (ShortStorage, complex, quantized) decode, but
// their tensors cannot be read.
var storageDTypes = map[string]weights.DType{
	"FloatStorage":    weights.F32,
	"DoubleStorage":   weights.F64,
	"HalfStorage":     weights.F16,
	"BFloat16Storage": weights.BF16,
	"LongStorage":     weights.I64,
	"IntStorage":      weights.I32,
	"CharStorage":     weights.I8,
	"ByteStorage":     weights.U8,
	"BoolStorage":     weights.BOOL,
	"UntypedStorage":  weights.U8,
}

// storageElemSizes gives the element size of the storage types that have
// no safetensors dtype, so their records can still be located.
var storageElemSizes = map[string]int{"ShortStorage": 2, "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16}

// storageType is a torch.<X>Storage class named in a pickle.
type storageType struct {
	name  string
	dtype weights.DType // "" when unsupported
}

func (s *storageType) size() int {
	if s.dtype != "" {
		return s.dtype.Size()
	}
	if n, ok := storageElemSizes[s.name]; ok {
		return n
	}
	return 1
}

// storage is one serialized torch storage: numel elements of typ, stored
// at byte off of r (zip records stored without compression, and the legacy
// format), inside a compressed zip record zf, or (legacy views) inside root
// starting at element viewOffset.
type storage struct {
	key        string
	typ        *storageType
	numel      int
	bigEndian  bool
	r          io.ReaderAt
	off        int64
	zf         *zip.File
	root       *storage
	viewOffset int
}

// readElems reads elements [first, first+len(buf)/size) into buf.
func (s *storage) readElems(buf []byte, first int) error {
	if s.root != nil {
		return s.root.readElems(buf, s.viewOffset+first)
	}
	byteOff := int64(first) * int64(s.typ.size())
	if s.r != nil {
		n, err := s.r.ReadAt(buf, s.off+byteOff)
		if n == len(buf) {
			return nil
		}
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	rc, err := s.zf.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.CopyN(io.Discard, rc, byteOff); err != nil {
		return err
	}
	_, err = io.ReadFull(rc, buf)
	return err
}

// Tensor is a tensor in the file: a view (offset, shape, stride, in
// elements) of a storage. Its data is read by Read.
type Tensor struct {
	// DType is the element type, or "" when the storage type has no
	// safetensors equivalent (StorageType names it).
	DType weights.DType
	// StorageType is torch's storage class name, such as "FloatStorage".
	StorageType string
	// Shape is the tensor's size; empty for a 0-d tensor.
	Shape []int
	// Stride is the step between elements along each axis, in elements.
	Stride []int
	// Offset is the first element's position in the storage.
	Offset int

	storage *storage
}

// NumElements is the product of the shape (1 for a 0-d tensor).
func (t *Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Contiguous reports whether the tensor is row-major and dense in its
// storage, so that Read is a single sequential read.
func (t *Tensor) Contiguous() bool {
	want := 1
	for i := len(t.Shape) - 1; i >= 0; i-- {
		if t.Shape[i] != 1 && t.Stride[i] != want {
			return false
		}
		want *= t.Shape[i]
	}
	return true
}

// Read returns the tensor's elements as a new row-major, little-endian
// weights.Tensor. A contiguous tensor is one read straight into the result;
// a strided view (a transpose or slice saved as such) is gathered.
func (t *Tensor) Read() (weights.Tensor, error) {
	if t.DType == "" {
		return weights.Tensor{}, fmt.Errorf("pytorch: storage %q: torch.%s has no supported element type", t.storage.key, t.StorageType)
	}
	size := t.DType.Size()
	n, last, err := t.extent()
	if err != nil {
		return weights.Tensor{}, fmt.Errorf("pytorch: storage %q: %w", t.storage.key, err)
	}
	out := weights.Tensor{DType: t.DType, Shape: slices.Clone(t.Shape), Data: make([]byte, n*size)}
	if n == 0 {
		return out, nil
	}
	if t.Contiguous() {
		if err := t.storage.readElems(out.Data, t.Offset); err != nil {
			return weights.Tensor{}, fmt.Errorf("pytorch: reading storage %q: %w", t.storage.key, err)
		}
	} else {
		span := make([]byte, (last-t.Offset+1)*size)
		if err := t.storage.readElems(span, t.Offset); err != nil {
			return weights.Tensor{}, fmt.Errorf("pytorch: reading storage %q: %w", t.storage.key, err)
		}
		gather(out.Data, span, t.Shape, t.Stride, size)
	}
	if t.storage.bigEndian && size > 1 {
		for i := 0; i < len(out.Data); i += size {
			slices.Reverse(out.Data[i : i+size])
		}
	}
	return out, nil
}

// extent checks that the view lies inside its storage and returns its
// element count and the largest storage element it touches. Sizes come
// from the file, so every product is checked for overflow before anything
// is allocated. A view with more elements than its storage (a broadcast,
// stride-0 view) is refused: no model weight is saved that way, and
// reading one would let a small file ask for any amount of memory.
func (t *Tensor) extent() (n, last int, err error) {
	bad := func() (int, int, error) {
		return 0, 0, fmt.Errorf("view offset %d shape %v stride %v does not fit the storage's %d elements", t.Offset, t.Shape, t.Stride, t.storage.numel)
	}
	if slices.Contains(t.Shape, 0) {
		return 0, 0, nil
	}
	numel := t.storage.numel
	if t.Offset < 0 || t.Offset >= numel {
		return bad()
	}
	n, last = 1, t.Offset
	for i, d := range t.Shape {
		s := t.Stride[i]
		if d < 0 || s < 0 || n > numel/d || (s > 0 && d-1 > (numel-1-last)/s) {
			return bad()
		}
		n *= d
		last += (d - 1) * s
	}
	return n, last, nil
}

// gather copies the strided view of src (element 0 = the view's first
// element) into dst in row-major order.
func gather(dst, src []byte, shape, stride []int, size int) {
	idx := make([]int, len(shape))
	for o := 0; o < len(dst); o += size {
		at := 0
		for i, k := range idx {
			at += k * stride[i]
		}
		copy(dst[o:o+size], src[at*size:(at+1)*size])
		for i := len(idx) - 1; i >= 0; i-- { // odometer increment
			idx[i]++
			if idx[i] < shape[i] {
				break
			}
			idx[i] = 0
		}
	}
}

// rebuildTensor is torch._utils._rebuild_tensor_v2(storage, storage_offset,
// size, stride, requires_grad, backward_hooks[, metadata]).
func rebuildTensor(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 with %d arguments", len(args))
	}
	s, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2: storage is a %s", TypeName(args[0]))
	}
	offset, ok1 := toInt(args[1])
	shape, ok2 := intTuple(args[2])
	stride, ok3 := intTuple(args[3])
	if !ok1 || !ok2 || !ok3 || len(shape) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor_v2: bad offset/size/stride %s %s %s", TypeName(args[1]), TypeName(args[2]), TypeName(args[3]))
	}
	for i := range shape {
		if shape[i] < 0 || stride[i] < 0 {
			return nil, fmt.Errorf("_rebuild_tensor_v2: size %v stride %v", shape, stride)
		}
	}
	return &Tensor{DType: s.typ.dtype, StorageType: s.typ.name, Shape: shape, Stride: stride, Offset: offset, storage: s}, nil
}

// callable adapts a function to gopickle's Callable.
type callable func(args ...any) (any, error)

func (c callable) Call(args ...any) (any, error) { return c(args...) }

// Object is an instance of a Python class the reader does not interpret,
// kept so that the rest of the checkpoint still decodes: Args are the
// constructor (or reduce) arguments and State what BUILD set.
type Object struct {
	Module, Name string
	Args         []any
	State        any
}

// objectClass stands for any class findClass does not know.
type objectClass struct{ module, name string }

func (c *objectClass) Call(args ...any) (any, error) {
	return &Object{Module: c.module, Name: c.name, Args: args}, nil
}

func (c *objectClass) PyNew(args ...any) (any, error) { return c.Call(args...) }

// PySetState records BUILD's state.
func (o *Object) PySetState(state any) error {
	o.State = state
	return nil
}

// Entry is one key/value pair of a pickled dict, in insertion order.
type Entry struct {
	Key, Value any
}

// DictEntries returns the pairs of a decoded dict or OrderedDict in their
// pickled order; ok is false for any other value.
func DictEntries(v any) (entries []Entry, ok bool) {
	switch d := v.(type) {
	case *types.Dict:
		for _, e := range *d {
			entries = append(entries, Entry{e.Key, e.Value})
		}
		return entries, true
	case *types.OrderedDict:
		for e := d.List.Front(); e != nil; e = e.Next() {
			item := e.Value.(*types.OrderedDictEntry)
			entries = append(entries, Entry{item.Key, item.Value})
		}
		return entries, true
	}
	return nil, false
}

// TypeName names the Python type of a decoded value, for messages.
func TypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case *Tensor:
		return fmt.Sprintf("Tensor(%s%v)", strings.TrimSuffix(x.StorageType, "Storage"), x.Shape)
	case *storage:
		return "torch." + x.typ.name
	case *types.Dict, *types.OrderedDict:
		return "dict"
	case *types.List:
		return "list"
	case *types.Tuple:
		return "tuple"
	case string:
		return "str"
	case int, *big.Int:
		return "int"
	case float64:
		return "float"
	case bool:
		return "bool"
	case *Object:
		return x.Module + "." + x.Name
	}
	return fmt.Sprintf("%T", v)
}

func tupleArgs(v any) ([]any, bool) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, false
	}
	return []any(*t), true
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case *big.Int:
		if x.IsInt64() {
			return int(x.Int64()), true
		}
	}
	return 0, false
}

func intTuple(v any) ([]int, bool) {
	items, ok := tupleArgs(v)
	if !ok {
		return nil, false
	}
	out := make([]int, len(items))
	for i, x := range items {
		if out[i], ok = toInt(x); !ok {
			return nil, false
		}
	}
	return out, true
}
