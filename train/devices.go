package train

import (
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/distributed"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// BatchAxis names the one axis of the device mesh: the batch is split
// along it and everything else is replicated over it.
const BatchAxis = "batch"

// dataParallel spreads a step over the devices of one process with XLA's
// SPMD partitioner (GoMLX's AutoSharding): every graph stays the logical
// single-device program over the global batch, its pixel and token inputs
// are declared sharded along the batch axis and every variable (weights,
// AdamW moments, gradient accumulators) and every output replicated. The
// partitioner then inserts what the data flow needs (on XLA's CPU plugin:
// an all-gather of one tower's features, the logits kept by rows, [N/n, N]
// per device, small all-reduces for the column softmax, one all-reduce of
// all parameter gradients), so the loss is the global batch's (OpenCLIP's
// gather_with_grad) and the update does not depend on the device count.
type dataParallel struct {
	mesh       *distributed.DeviceMesh
	batch      *distributed.ShardingSpec // axis 0 split over the mesh
	replicated *distributed.ShardingSpec
}

// MeshSize resolves the number of devices a run asks for, n (0: every
// device the backend has), to the devices it trains on and the
// Recipe.Devices that runs them: no mesh (0) for one device, which runs
// the plain single-device program, else a mesh of all of them.
func MeshSize(backend compute.Backend, n int) (devices, mesh int, err error) {
	have := backend.NumDevices()
	switch {
	case n < 0:
		return 0, 0, fmt.Errorf("%d devices: must be ≥ 0 (0 = every device of the backend)", n)
	case n == 0:
		n = have
	case n > have:
		return 0, 0, fmt.Errorf("%d devices asked for, but backend %s has %d", n, backend.Name(), have)
	}
	if n == 1 {
		return 1, 0, nil
	}
	return n, n, nil
}

// newDataParallel builds the mesh of the first n devices of backend.
func newDataParallel(backend compute.Backend, n int) (*dataParallel, error) {
	if have := backend.NumDevices(); n > have {
		return nil, fmt.Errorf("%d devices asked for, but backend %s has %d", n, backend.Name(), have)
	}
	mesh, err := distributed.NewDeviceMesh([]int{n}, []string{BatchAxis})
	if err != nil {
		return nil, err
	}
	batch, err := distributed.BuildSpec(mesh).S(BatchAxis).Done()
	if err != nil {
		return nil, err
	}
	return &dataParallel{mesh: mesh, batch: batch, replicated: distributed.NewReplicatedShardingSpec(mesh)}, nil
}

// devices is the number of devices a step runs on (1 without a mesh).
func (dp *dataParallel) devices() int {
	if dp == nil {
		return 1
	}
	return dp.mesh.NumDevices()
}

// configure makes e a partitioned program: its first batchInputs inputs
// sharded along the batch axis, the rest and all outputs (updated variables
// first, as model.Exec orders them) replicated. Without a mesh e is left the
// plain single-device program.
func (dp *dataParallel) configure(e *model.Exec, batchInputs, otherInputs int) *model.Exec {
	if dp == nil {
		return e
	}
	specs := make([]*distributed.ShardingSpec, 0, batchInputs+otherInputs)
	for range batchInputs {
		specs = append(specs, dp.batch)
	}
	for range otherInputs {
		specs = append(specs, dp.replicated)
	}
	e.AutoSharding(dp.mesh).WithInputShardingSpecs(specs...).WithOutputShardingSpecs(dp.replicated)
	if dp.mesh.NumDevices() == 1 {
		// GoMLX assigns devices 0…n−1 itself only to meshes of two or
		// more; a one-device mesh is given device 0 the same way.
		e.WithDeviceAssignment([]compute.DeviceNum{0})
	}
	return e
}

// replicatedArray is a host array that every device receives whole.
type replicatedArray struct {
	data []float32
	dims []int
}

// shard splits a micro-batch for the devices: without a mesh its pixels
// and tokens as tensors on the first device, with a mesh each device's
// contiguous slice (pairs [d·B/n, (d+1)·B/n)) on device d. Each slice goes
// straight from the batch into its device's buffer (see deviceTensor): the
// global batch is never copied whole first. The caller releases the
// tensors with finalizeShards once the call that took them has run. A nil
// backend makes plain host tensors instead, which Exec transfers itself
// (unit tests of the slicing, which have no multi-device backend).
func (dp *dataParallel) shard(backend compute.Backend, m MicroBatch, imageSize, contextLength int) ([][]any, error) {
	n := dp.devices()
	if m.Size%n != 0 {
		return nil, fmt.Errorf("a batch of %d pairs does not split evenly over %d devices", m.Size, n)
	}
	b := m.Size / n
	px, tk := b*3*imageSize*imageSize, b*contextLength
	shards := make([][]any, n)
	for d := range n {
		if backend == nil {
			shards[d] = []any{
				tensors.FromFlatDataAndDimensions(m.Pixels[d*px:(d+1)*px], b, 3, imageSize, imageSize),
				tensors.FromFlatDataAndDimensions(m.Tokens[d*tk:(d+1)*tk], b, contextLength),
			}
			continue
		}
		pixels, err := deviceTensor(backend, compute.DeviceNum(d), m.Pixels[d*px:(d+1)*px], b, 3, imageSize, imageSize)
		if err != nil {
			finalizeShards(shards)
			return nil, err
		}
		tokens, err := deviceTensor(backend, compute.DeviceNum(d), m.Tokens[d*tk:(d+1)*tk], b, contextLength)
		if err != nil {
			pixels.FinalizeAll()
			finalizeShards(shards)
			return nil, err
		}
		shards[d] = []any{pixels, tokens}
	}
	return shards, nil
}

// finalizeShards frees the device buffers of shard's tensors.
func finalizeShards(shards [][]any) {
	for _, sh := range shards {
		for _, a := range sh {
			if t, ok := a.(*tensors.Tensor); ok {
				t.FinalizeAll()
			}
		}
	}
}

// args lays out a call's inputs as GoMLX's Exec takes them, device-major:
// each device's batch shard (none when shards is nil) followed by its own
// copy of rest.
func (dp *dataParallel) args(shards [][]any, rest ...any) []any {
	n := dp.devices()
	args := make([]any, 0, n*(2+len(rest)))
	for d := range n {
		if shards != nil {
			args = append(args, shards[d]...)
		}
		for _, r := range rest {
			if a, ok := r.(replicatedArray); ok {
				r = tensors.FromFlatDataAndDimensions(a.data, a.dims...)
			}
			args = append(args, r)
		}
	}
	return args
}

// call runs e and returns the outputs of the first device (all outputs are
// replicated), releasing the other devices' copies.
func (dp *dataParallel) call(e *model.Exec, args []any) ([]*tensors.Tensor, error) {
	outputs, err := e.Call(args...)
	if err != nil {
		return nil, err
	}
	n := dp.devices()
	perDevice := len(outputs) / n
	finalize(outputs[perDevice:])
	return outputs[:perDevice], nil
}
