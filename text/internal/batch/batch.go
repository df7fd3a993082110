// Package batch spreads the encoding of many texts over GOMAXPROCS
// goroutines, for the tokenizers' EncodeBatch methods.
//
//	out := make([]int32, len(texts)*ctx)
//	batch.Rows(out, len(texts), ctx, func(dst []int32, i int) { tok.EncodeTo(dst, texts[i]) })
package batch

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// chunk is the number of rows a goroutine takes at a time: enough to
// amortise the atomic, few enough to balance the tail.
const chunk = 32

// Rows calls encode(out[i*width:(i+1)*width], i) for every i below n,
// concurrently; encode must be safe for concurrent use.
func Rows(out []int32, n, width int, encode func(dst []int32, i int)) {
	workers := min(runtime.GOMAXPROCS(0), (n+chunk-1)/chunk)
	if workers <= 1 {
		for i := range n {
			encode(out[i*width:(i+1)*width], i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				start := int(next.Add(chunk)) - chunk
				if start >= n {
					return
				}
				for i := start; i < min(start+chunk, n); i++ {
					encode(out[i*width:(i+1)*width], i)
				}
			}
		})
	}
	wg.Wait()
}
