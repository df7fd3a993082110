package stream

import (
	"fmt"
	"strings"
	"testing"
)

// TestDefaultsMixShards measures how many source shards a batch draws from
// when every shard holds a single concept, as BIOMEDICA's cluster-ordered
// shards nearly do. The data are BIOMEDICA's proportions scaled down: 32
// shards, each twice the shuffle buffer (BIOMEDICA: 10,000 samples a shard,
// OpenCLIP's buffer 5,000). Reading one shard at a time (the old default),
// a batch of 64 holds a few concepts (the current shard's and the tail of
// earlier ones that linger in the buffer); with the default readers, about
// DefaultReaders. The defaults must still give the same batches whatever
// the number of workers, and resume exactly.
func TestDefaultsMixShards(t *testing.T) {
	const shards, perShard, batch, buffer = 32, 160, 64, 80
	paths := writeConceptShards(t, t.TempDir(), shards, perShard)
	cfg := Config{BatchSize: batch, ShuffleBuffer: buffer, Seed: 5, DropLast: true}

	before := cfg
	before.Readers = 1
	oneReader := distinctShardsPerBatch(t, take(t, modeStream(t, paths, before), Position{}, shards*perShard/batch))
	ref := take(t, modeStream(t, paths, cfg), Position{}, shards*perShard/batch)
	defaults := distinctShardsPerBatch(t, ref)
	t.Logf("distinct source shards per batch of %d (buffer %d, shards of %d samples): readers=1 %.2f, default readers (%d) %.2f",
		batch, buffer, perShard, oneReader, DefaultReaders, defaults)
	if oneReader > 4 {
		t.Errorf("one reader: %.2f shards per batch; the test data no longer model cluster-ordered shards", oneReader)
	}
	if defaults < 0.75*DefaultReaders {
		t.Errorf("default readers: %.2f distinct shards per batch, want at least %.0f", defaults, 0.75*DefaultReaders)
	}

	workers := cfg
	workers.Workers = 1
	sameBatches(t, take(t, modeStream(t, paths, workers), Position{}, len(ref)), ref)
	sameBatches(t, take(t, modeStream(t, paths, cfg), ref[30].Next, 20), ref[31:51])
}

// writeConceptShards writes shards whose samples all show their shard's
// one image (a concept), keyed "sNN/IIII".
func writeConceptShards(t *testing.T, dir string, shards, perShard int) []string {
	t.Helper()
	var paths []string
	for s := range shards {
		img := pngBytes(t, s, testImageSize)
		var members []member
		for i := range perShard {
			key := fmt.Sprintf("s%02d/%04d", s, i)
			members = append(members, member{name: key + ".png", data: img}, member{name: key + ".txt", data: []byte("concept " + key)})
		}
		paths = append(paths, writeShard(t, dir, fmt.Sprintf("shard-%06d.tar", s), members))
	}
	return paths
}

// distinctShardsPerBatch is the mean number of shards the batches' samples
// come from (keys are "sNN/IIII", NN the shard).
func distinctShardsPerBatch(t *testing.T, batches []Batch) float64 {
	t.Helper()
	if len(batches) == 0 {
		t.Fatal("no batches")
	}
	total := 0
	for _, b := range batches {
		seen := map[string]bool{}
		for _, k := range b.Keys {
			shard, _, ok := strings.Cut(k, "/")
			if !ok {
				t.Fatalf("key %q does not name its shard", k)
			}
			seen[shard] = true
		}
		total += len(seen)
	}
	return float64(total) / float64(len(batches))
}
