package checkpoint

import (
	"encoding/binary"
	"fmt"
	"runtime"

	"github.com/bmca/bmca/model/transformer"
	"github.com/bmca/bmca/model/weights"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// NewStore creates a GoMLX store holding the model's variables as float32,
// at the paths package clip expects (the OpenCLIP names with "/"), ready for
// clip.NewEncoder. Tensors are read and converted one at a time, so the
// store's own copy is the only full copy of the weights in memory.
func (c *Checkpoint) NewStore() (*model.Store, error) {
	store := model.NewStore()
	var gc garbage
	for _, name := range c.order {
		t, err := c.Tensor(name)
		if err != nil {
			return nil, err
		}
		v, err := toFloat32Tensor(t)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: %s: %w", c.Path, name, err)
		}
		gc.add(len(t.Data))
		if _, err := store.CreateVariable(transformer.VariablePath(name), v); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %s: %w", c.Path, name, err)
		}
	}
	return store, nil
}

// littleEndian is whether GoMLX's host tensors (native byte order) share
// the checkpoints' little-endian layout.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// toFloat32Tensor converts a weights tensor to a GoMLX float32 tensor; F32
// data is copied straight into the tensor's buffer, without an
// intermediate []float32.
func toFloat32Tensor(t weights.Tensor) (*tensors.Tensor, error) {
	out := tensors.FromShape(shapes.Make(dtypes.Float32, t.Shape...))
	if t.DType == weights.F32 && littleEndian {
		if err := out.MutableBytes(func(b []byte) { copy(b, t.Data) }); err != nil {
			return nil, err
		}
		return out, nil
	}
	v, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	err = tensors.MutableFlatData(out, func(flat []float32) { copy(flat, v) })
	return out, err
}

// gcEvery is how many bytes of spent read buffers a load lets accumulate
// before it asks for a collection.
const gcEvery = 256 << 20

// garbage counts the bytes of read buffers that became garbage. Left to
// the pacer, a load that builds a 1.7 GB live heap lets about a third of that
// pile up as dead buffers (measured on ViT-L-14: peak RSS 1.32× the file) and
// page-faults fresh memory for every new buffer; collecting every gcEvery
// bytes lets the next buffers reuse those pages. Collections are cheap here:
// tensor data holds no pointers.
type garbage struct{ n int }

func (g *garbage) add(bytes int) {
	g.n += bytes
	if g.n >= gcEvery {
		runtime.GC()
		g.n = 0
	}
}
