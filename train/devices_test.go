package train

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/bmca/bmca/internal/graphtest"
	"github.com/bmca/bmca/model/clip"
	"github.com/gomlx/compute/distributed"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/model"
)

// TestMeshAndShardingSpecs checks the data-parallel layout on the pure-Go
// backend (one device): the mesh has one axis named BatchAxis, batch
// inputs are split along their first axis and everything else replicated,
// and a mesh larger than the backend is refused.
func TestMeshAndShardingSpecs(t *testing.T) {
	be := graphtest.Backend(t)
	dp, err := newDataParallel(be, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := dp.mesh.String(); got != "DeviceMesh(axesSizes={batch: 1})" {
		t.Errorf("mesh %s", got)
	}
	if got := dp.batch.String(); got != "ShardingSpec{mesh=mesh, axes=[S(batch)]}" {
		t.Errorf("batch spec %s: want the first (batch) axis split over the mesh", got)
	}
	if !dp.replicated.IsReplicated() || dp.batch.IsReplicated() {
		t.Errorf("replicated spec %s, batch spec %s", dp.replicated, dp.batch)
	}
	if dp.batch.NumDevicesShardingAxis(0) != 1 || dp.batch.NumDevicesShardingAxis(1) != 1 {
		t.Errorf("a one-device mesh splits nothing")
	}
	if _, err := newDataParallel(be, 2); err == nil || !strings.Contains(err.Error(), "has 1") {
		t.Errorf("2 devices on the one-device Go backend: %v", err)
	}
	var none *dataParallel
	if none.devices() != 1 || dp.devices() != 1 {
		t.Errorf("devices: %d without a mesh, %d on a one-device mesh", none.devices(), dp.devices())
	}
}

// TestShardsAreContiguousSlices checks how a batch is laid out for n
// devices (GoMLX's Exec takes the inputs device-major): device d gets pairs
// [d·B/n, (d+1)·B/n) of pixels and tokens, followed by its own copy of the
// replicated inputs; a batch that does not split evenly is refused.
func TestShardsAreContiguousSlices(t *testing.T) {
	const n, batch, size, ctx = 4, 8, 2, 3
	dp := &dataParallel{}
	dp.mesh = mustMesh(t, n)
	pixels := make([]float32, batch*3*size*size)
	for i := range pixels {
		pixels[i] = float32(i)
	}
	tokens := make([]int32, batch*ctx)
	for i := range tokens {
		tokens[i] = int32(i)
	}
	shards, err := dp.shard(nil, MicroBatch{pixels, tokens, batch}, size, ctx)
	if err != nil {
		t.Fatal(err)
	}
	args := dp.args(shards, float32(0.5), replicatedArray{[]float32{1, 2}, []int{2}})
	if len(args) != n*4 {
		t.Fatalf("%d args, want 4 per device", len(args))
	}
	per := batch / n
	for d := range n {
		px := tensors.MustCopyFlatData[float32](args[d*4].(*tensors.Tensor))
		tk := tensors.MustCopyFlatData[int32](args[d*4+1].(*tensors.Tensor))
		if got := args[d*4].(*tensors.Tensor).Shape().Dimensions; got[0] != per || len(px) != per*3*size*size {
			t.Errorf("device %d: pixels shape %v", d, got)
		}
		if px[0] != float32(d*per*3*size*size) || tk[0] != int32(d*per*ctx) || tk[len(tk)-1] != int32((d+1)*per*ctx-1) {
			t.Errorf("device %d: pixels start at %g, tokens span %d..%d; want its own contiguous slice", d, px[0], tk[0], tk[len(tk)-1])
		}
		if args[d*4+2] != float32(0.5) {
			t.Errorf("device %d: scalar %v", d, args[d*4+2])
		}
		if r := args[d*4+3].(*tensors.Tensor); d > 0 && r == args[3].(*tensors.Tensor) {
			t.Errorf("device %d shares device 0's replicated tensor; each device needs its own", d)
		}
	}
	if _, err := dp.shard(nil, MicroBatch{pixels[:6*3*size*size], tokens[:6*ctx], 6}, size, ctx); err == nil || !strings.Contains(err.Error(), "does not split evenly over 4 devices") {
		t.Errorf("6 pairs on 4 devices: %v", err)
	}
	var none *dataParallel
	plain, err := none.shard(nil, MicroBatch{pixels, tokens, batch}, size, ctx)
	if err != nil || len(plain) != 1 || len(none.args(plain, float32(1))) != 3 {
		t.Errorf("without a mesh: the whole batch and the scalar, as before (%v)", err)
	}
}

// TestGlobalLossFromDeviceShards is the arithmetic the data-parallel step
// relies on, simulated in plain graphs on the CPU backend: each of n
// devices takes the loss of its own pairs' rows against the gathered
// features of all devices (OpenCLIP's gather_with_grad with local_loss),
// and the mean over devices of these losses, and of their gradients, is the
// one-device ClipLoss over the whole batch and its gradient. A loss that
// does not gather (each device against its own pairs only) is far off,
// which is what the test would see if the features were not combined.
func TestGlobalLossFromDeviceShards(t *testing.T) {
	const batch, dim, scale = 8, 6, 10.0
	img, txt := unitRows(1, batch, dim), unitRows(2, batch, dim)
	for _, n := range []int{2, 4} {
		b := batch / n
		out := graphtest.Run(t, nil, func(_ *model.Scope, g *Graph) []*Node {
			imgN := Const(g, img)
			txtN := Const(g, txt)
			logits := func(a, c *Node) *Node { return MulScalar(Dot(a, Transpose(c, 0, 1)).Product(), scale) }
			global := clip.ContrastiveLoss(logits(imgN, txtN))
			var sharded, local *Node
			for d := range n {
				rows := func(x *Node) *Node { return Slice(x, AxisRange(d*b, (d+1)*b)) }
				// Rows d·b… of the [N, N] matrices: image→text over all
				// texts, text→image over all images.
				i2t := rowCrossEntropy(LogSoftmax(logits(rows(imgN), txtN), 1), d*b)
				t2i := rowCrossEntropy(LogSoftmax(logits(rows(txtN), imgN), 1), d*b)
				lossD := MulScalar(Add(i2t, t2i), 0.5)
				ownOnly := clip.ContrastiveLoss(logits(rows(imgN), rows(txtN)))
				if d == 0 {
					sharded, local = lossD, ownOnly
				} else {
					sharded, local = Add(sharded, lossD), Add(local, ownOnly)
				}
			}
			sharded, local = DivScalar(sharded, float64(n)), DivScalar(local, float64(n))
			gGlobal := Gradient(global, imgN, txtN)
			gSharded := Gradient(sharded, imgN, txtN)
			return []*Node{global, sharded, local, gGlobal[0], gGlobal[1], gSharded[0], gSharded[1]}
		})
		v := func(i int) []float32 { return graphtest.Float32s(t, out[i]) }
		global, sharded, local := v(0)[0], v(1)[0], v(2)[0]
		if math.Abs(float64(global-sharded)) > 1e-5 {
			t.Errorf("%d devices: loss from shards %.7f, one-device loss %.7f", n, sharded, global)
		}
		if math.Abs(float64(global-local)) < 0.1 {
			t.Errorf("%d devices: a loss without gathering (%.4f) should differ clearly from the global one (%.4f)", n, local, global)
		}
		graphtest.CheckClose(t, "image feature gradient", v(5), v(3), 1e-6)
		graphtest.CheckClose(t, "text feature gradient", v(6), v(4), 1e-6)
	}
}

// rowCrossEntropy is the mean over rows r of -logProbs[r, offset+r]: the
// cross-entropy of rows whose matching column is offset further right.
func rowCrossEntropy(logProbs *Node, offset int) *Node {
	rows, cols := logProbs.Shape().Dim(0), logProbs.Shape().Dim(1)
	mask := make([][]float32, rows)
	for r := range mask {
		mask[r] = make([]float32, cols)
		mask[r][offset+r] = 1
	}
	return Neg(DivScalar(ReduceAllSum(Mul(logProbs, Const(logProbs.Graph(), mask))), float64(rows)))
}

// unitRows is n random unit vectors of size dim, as normalised features.
func unitRows(seed uint64, n, dim int) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, 3))
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, dim)
		norm := 0.0
		for j := range out[i] {
			x := rng.NormFloat64()
			out[i][j], norm = float32(x), norm+x*x
		}
		for j := range out[i] {
			out[i][j] /= float32(math.Sqrt(norm))
		}
	}
	return out
}

func mustMesh(t *testing.T, n int) *distributed.DeviceMesh {
	t.Helper()
	m, err := distributed.NewDeviceMesh([]int{n}, []string{BatchAxis})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMeshSizeOnOneDeviceBackend resolves device counts on the pure-Go
// backend, which has one device: 0 (all) and 1 run the plain program
// without a mesh; more, or a negative count, is an error.
func TestMeshSizeOnOneDeviceBackend(t *testing.T) {
	be := graphtest.Backend(t)
	for _, n := range []int{0, 1} {
		if devices, mesh, err := MeshSize(be, n); err != nil || devices != 1 || mesh != 0 {
			t.Errorf("MeshSize(%d) = %d devices, mesh %d, %v; want 1 device, no mesh", n, devices, mesh, err)
		}
	}
	for n, want := range map[int]string{2: "has 1", -1: "must be ≥ 0"} {
		if _, _, err := MeshSize(be, n); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("MeshSize(%d): error %v, want one saying %q", n, err, want)
		}
	}
}
