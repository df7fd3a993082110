// Package pytorchtest writes small PyTorch checkpoints in torch.save's
// layouts, for tests of code that reads them (package pytorch, the CLIP
// checkpoint loader) on machines without PyTorch.
//
// The pickle is written opcode by opcode in protocol 2, torch.save's
// default, with the same reconstructors torch uses: a tensor is
// torch._utils._rebuild_tensor_v2(persistent storage id, offset, size,
// stride, False, OrderedDict()), the persistent id being ('storage',
// torch.FloatStorage, key, 'cpu', numel); a state dict is a
// collections.OrderedDict. The zip layout is <archive>/data.pkl,
// <archive>/byteorder, <archive>/data/<key>, <archive>/version, records
// stored uncompressed; the legacy layout is the pre-1.6 stream. It is a
// test helper: it writes what the reader must understand, not every
// variation torch can produce.
//
//	root := pytorchtest.NewDict("state_dict", pytorchtest.StateDict(weightsDict, "module."), "epoch", 3)
//	err := pytorchtest.WriteFile(path, sd, pytorchtest.Options{})
package pytorchtest

import (
	"archive/zip"
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"

	"github.com/bmca/bmca/model/weights"
)

// Dict is a Python dict with string keys, pickled in this order.
type Dict []Item

// OrderedDict is a collections.OrderedDict with string keys (what
// Module.state_dict() returns).
type OrderedDict []Item

// Item is one key/value pair. Values may be Dict, OrderedDict, Tuple,
// weights.Tensor (a tensor with its own storage), View, Object, string,
// int, float64, bool or nil.
type Item struct {
	Key   string
	Value any
}

// NewDict builds a Dict from alternating keys and values:
// NewDict("epoch", 3, "state_dict", sd). It panics on a non-string key.
func NewDict(kv ...any) Dict { return Dict(items(kv)) }

// NewOrderedDict is NewDict for an OrderedDict.
func NewOrderedDict(kv ...any) OrderedDict { return OrderedDict(items(kv)) }

func items(kv []any) []Item {
	if len(kv)%2 != 0 {
		panic("pytorchtest: odd number of key/value arguments")
	}
	out := make([]Item, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		out = append(out, Item{Key: kv[i].(string), Value: kv[i+1]})
	}
	return out
}

// Tuple is a Python tuple.
type Tuple []any

// View is a tensor that looks into the storage of Base with an explicit
// offset, size and stride (all in elements), as torch saves a transposed or
// sliced tensor. Views with the same Base share one storage.
type View struct {
	Base   *weights.Tensor
	Offset int
	Shape  []int
	Stride []int
}

// Object is an instance of an arbitrary Python class (argparse.Namespace
// in an OpenCLIP training checkpoint, say): NEWOBJ with no arguments, then
// BUILD with State.
type Object struct {
	Module, Name string
	State        Dict
}

// StateDict turns a weights.StateDict into an OrderedDict in sorted-name
// order, each name prefixed with prefix ("module." for a DDP-wrapped model).
func StateDict(sd weights.StateDict, prefix string) OrderedDict {
	var out OrderedDict
	for _, name := range sd.Names() {
		out = append(out, Item{Key: prefix + name, Value: sd[name]})
	}
	return out
}

// Options chooses the file layout.
type Options struct {
	// Legacy writes the pre-1.6 single-stream format instead of a zip.
	Legacy bool
	// Deflate compresses the zip records (torch never does; other zip
	// tools may).
	Deflate bool
	// TorchScript adds a constants.pkl record, which marks a TorchScript
	// archive.
	TorchScript bool
}

// WriteFile writes root as torch.save would. Tensor data is streamed from
// the given tensors, so large checkpoints are not held twice.
func WriteFile(path string, root any, opts Options) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	err = Write(bw, root, opts)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Write writes root to w as torch.save would.
func Write(w io.Writer, root any, opts Options) error {
	p := &pickler{legacy: opts.Legacy, keys: map[*weights.Tensor]string{}}
	p.b = append(p.b, 0x80, 2) // PROTO 2
	if err := p.value(root); err != nil {
		return err
	}
	p.b = append(p.b, '.')
	if opts.Legacy {
		return p.writeLegacy(w)
	}
	return p.writeZip(w, opts)
}

type pickler struct {
	b        []byte
	legacy   bool
	keys     map[*weights.Tensor]string
	storages []*weights.Tensor // in key order
}

func (p *pickler) global(module, name string) {
	p.b = append(p.b, 'c')
	p.b = append(p.b, module+"\n"+name+"\n"...)
}

func (p *pickler) str(s string) {
	p.b = append(p.b, 'X')
	p.b = binary.LittleEndian.AppendUint32(p.b, uint32(len(s)))
	p.b = append(p.b, s...)
}

func (p *pickler) int(v int) {
	if v >= math.MinInt32 && v <= math.MaxInt32 {
		p.b = append(p.b, 'J')
		p.b = binary.LittleEndian.AppendUint32(p.b, uint32(int32(v)))
		return
	}
	p.long(big.NewInt(int64(v)))
}

// long writes LONG1: little-endian two's complement.
func (p *pickler) long(v *big.Int) {
	n := (v.BitLen() + 8) / 8 // room for the sign bit
	b := make([]byte, n)
	x := new(big.Int).Set(v)
	if x.Sign() < 0 {
		x.Add(x, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
	}
	raw := x.Bytes()
	for i := range raw {
		b[i] = raw[len(raw)-1-i]
	}
	p.b = append(p.b, 0x8a, byte(n))
	p.b = append(p.b, b...)
}

func (p *pickler) items(items []Item) error {
	p.b = append(p.b, '(')
	for _, it := range items {
		p.str(it.Key)
		if err := p.value(it.Value); err != nil {
			return fmt.Errorf("%s: %w", it.Key, err)
		}
	}
	p.b = append(p.b, 'u')
	return nil
}

func (p *pickler) value(v any) error {
	switch x := v.(type) {
	case nil:
		p.b = append(p.b, 'N')
	case bool:
		if x {
			p.b = append(p.b, 0x88)
		} else {
			p.b = append(p.b, 0x89)
		}
	case int:
		p.int(x)
	case float64:
		p.b = append(p.b, 'G')
		p.b = binary.BigEndian.AppendUint64(p.b, math.Float64bits(x))
	case string:
		p.str(x)
	case Tuple:
		if len(x) == 0 {
			p.b = append(p.b, ')')
			return nil
		}
		p.b = append(p.b, '(')
		for _, e := range x {
			if err := p.value(e); err != nil {
				return err
			}
		}
		p.b = append(p.b, 't')
	case Dict:
		p.b = append(p.b, '}')
		return p.items(x)
	case OrderedDict:
		p.global("collections", "OrderedDict")
		p.b = append(p.b, ')', 'R')
		return p.items(x)
	case Object:
		p.global(x.Module, x.Name)
		p.b = append(p.b, ')', 0x81) // EMPTY_TUPLE, NEWOBJ
		if err := p.value(x.State); err != nil {
			return err
		}
		p.b = append(p.b, 'b') // BUILD
	case weights.Tensor:
		t := x
		stride := make([]int, len(t.Shape))
		s := 1
		for i := len(t.Shape) - 1; i >= 0; i-- {
			stride[i] = s
			s *= t.Shape[i]
		}
		return p.tensor(&t, 0, t.Shape, stride)
	case View:
		return p.tensor(x.Base, x.Offset, x.Shape, x.Stride)
	default:
		return fmt.Errorf("pytorchtest: cannot pickle %T", v)
	}
	return nil
}

var storageNames = map[weights.DType]string{
	weights.F32: "FloatStorage", weights.F64: "DoubleStorage", weights.F16: "HalfStorage",
	weights.BF16: "BFloat16Storage", weights.I64: "LongStorage", weights.I32: "IntStorage",
	weights.I8: "CharStorage", weights.U8: "ByteStorage", weights.BOOL: "BoolStorage",
}

func (p *pickler) tensor(base *weights.Tensor, offset int, shape, stride []int) error {
	name, ok := storageNames[base.DType]
	if !ok {
		return fmt.Errorf("pytorchtest: dtype %s", base.DType)
	}
	key, ok := p.keys[base]
	if !ok {
		key = fmt.Sprint(len(p.storages))
		p.keys[base] = key
		p.storages = append(p.storages, base)
	}
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.b = append(p.b, '(', '(')
	p.str("storage")
	p.global("torch", name)
	p.str(key)
	p.str("cpu")
	p.int(base.NumElements())
	if p.legacy {
		p.b = append(p.b, 'N') // no view metadata
	}
	p.b = append(p.b, 't', 'Q') // TUPLE, BINPERSID
	p.int(offset)
	shapeT, strideT := make(Tuple, len(shape)), make(Tuple, len(stride))
	for i := range shape {
		shapeT[i], strideT[i] = shape[i], stride[i]
	}
	if err := p.value(shapeT); err != nil {
		return err
	}
	if err := p.value(strideT); err != nil {
		return err
	}
	p.b = append(p.b, 0x89) // requires_grad False
	p.global("collections", "OrderedDict")
	p.b = append(p.b, ')', 'R', 't', 'R') // OrderedDict(), TUPLE, REDUCE
	return nil
}

func (p *pickler) writeZip(w io.Writer, opts Options) error {
	zw := zip.NewWriter(w)
	method := zip.Store
	if opts.Deflate {
		method = zip.Deflate
	}
	put := func(name string, data []byte) error {
		f, err := zw.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: method})
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		return err
	}
	if err := put("data.pkl", p.b); err != nil {
		return err
	}
	if opts.TorchScript {
		if err := put("constants.pkl", []byte{0x80, 2, ')', '.'}); err != nil {
			return err
		}
	}
	if err := put("byteorder", []byte("little")); err != nil {
		return err
	}
	for i, t := range p.storages {
		if err := put(fmt.Sprintf("data/%d", i), t.Data); err != nil {
			return err
		}
	}
	if err := put("version", []byte("3\n")); err != nil {
		return err
	}
	return zw.Close()
}

// writeLegacy writes the magic number, protocol version and system info
// pickles, the object, the storage keys and then each storage as an int64
// element count followed by its bytes.
func (p *pickler) writeLegacy(w io.Writer) error {
	magic, _ := new(big.Int).SetString("1950a86a20f9469cfc6c", 16)
	var head pickler
	head.b = append(head.b, 0x80, 2)
	head.long(magic)
	head.b = append(head.b, '.', 0x80, 2)
	head.int(1001)
	head.b = append(head.b, '.', 0x80, 2)
	if err := head.value(NewDict("protocol_version", 1001, "little_endian", true,
		"type_sizes", NewDict("short", 2, "int", 4, "long", 4))); err != nil {
		return err
	}
	head.b = append(head.b, '.')
	keys := pickler{b: []byte{0x80, 2, ']', '('}}
	for i := range p.storages {
		keys.str(fmt.Sprint(i))
	}
	keys.b = append(keys.b, 'e', '.')
	for _, part := range [][]byte{head.b, p.b, keys.b} {
		if _, err := w.Write(part); err != nil {
			return err
		}
	}
	for _, t := range p.storages {
		if _, err := w.Write(binary.LittleEndian.AppendUint64(nil, uint64(t.NumElements()))); err != nil {
			return err
		}
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}
