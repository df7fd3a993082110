package weights

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// syntheticStateDict returns n F32 tensors of elems elements each, filled
// with a byte pattern.
func syntheticStateDict(n, elems int) StateDict {
	sd := StateDict{}
	for i := range n {
		data := make([]byte, 4*elems)
		for j := range data {
			data[j] = byte(i + j)
		}
		sd[fmt.Sprintf("visual.transformer.resblocks.%d.mlp.c_fc.weight", i)] = Tensor{DType: F32, Shape: []int{elems / 1024, 1024}, Data: data}
	}
	return sd
}

// allocatedDuring returns the bytes allocated on the heap while f runs.
func allocatedDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// ReadFile reads each tensor straight into its final slice: it allocates
// barely more than the file size, not twice it.
func TestReadFileAllocatesOnce(t *testing.T) {
	sd := syntheticStateDict(8, 1<<19) // 16 MiB
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := WriteFile(path, sd, nil); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var readErr error
	alloc := allocatedDuring(func() { _, _, readErr = ReadFile(path) })
	if readErr != nil {
		t.Fatal(readErr)
	}
	if limit := uint64(st.Size()) + 64<<10; alloc > limit {
		t.Errorf("ReadFile of a %d-byte file allocated %d bytes (limit %d): the data is copied more than once", st.Size(), alloc, limit)
	}
}

// BenchmarkReadFile reads a 200 MiB state dict (50 tensors of 4 MiB) from
// a warm page cache. MB/s is the throughput; alloc-bytes/file-byte near 1
// shows each byte is allocated once.
func BenchmarkReadFile(b *testing.B) {
	sd := syntheticStateDict(50, 1<<20)
	path := filepath.Join(b.TempDir(), "open_clip_model.safetensors")
	if err := WriteFile(path, sd, nil); err != nil {
		b.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	var total uint64
	for b.Loop() {
		total += allocatedDuring(func() {
			if _, _, err := ReadFile(path); err != nil {
				b.Fatal(err)
			}
		})
	}
	b.ReportMetric(float64(total)/float64(b.N)/float64(st.Size()), "alloc-bytes/file-byte")
}

// BenchmarkWriteFile writes the same 200 MiB state dict atomically,
// including the fsyncs, so it measures the disk as much as the code.
func BenchmarkWriteFile(b *testing.B) {
	sd := syntheticStateDict(50, 1<<20)
	path := filepath.Join(b.TempDir(), "open_clip_model.safetensors")
	b.SetBytes(200 << 20)
	for b.Loop() {
		if err := WriteFile(path, sd, nil); err != nil {
			b.Fatal(err)
		}
	}
}
