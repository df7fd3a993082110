package tokenizer

import (
	"container/heap"
	"fmt"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
)

// bpeModel is SimpleTokenizer.bpe over ids instead of strings: a word's
// UTF-8 bytes start as byte symbols (the last one with "</w>"), and the
// adjacent pair of lowest merge rank is merged, everywhere in the word,
// until no pair has a rank.
type bpeModel struct {
	byteID    [256]int32 // symbol of byte b
	byteEndID [256]int32 // symbol of byte b followed by "</w>"
	// ranks maps pairKey(a, b) to rank<<32 | id of the merged symbol.
	ranks map[uint64]uint64
	// heapSafe: every merge's inputs are made by merges of lower rank, so
	// merging pair occurrences in (rank, position) order with a heap gives
	// the same result as SimpleTokenizer's round-by-round merging.
	heapSafe bool
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// newBPEModel resolves every byte symbol and merge of v to ids.
func newBPEModel(v *vocabulary) (*bpeModel, error) {
	m := &bpeModel{ranks: make(map[uint64]uint64, len(v.merges))}
	symbols := byteSymbols()
	for b := range 256 {
		id, ok := v.encoder[symbols[b]]
		end, okEnd := v.encoder[symbols[b]+"</w>"]
		if !ok || !okEnd {
			return nil, fmt.Errorf("tokenizer %s: %s lacks the byte symbol %q or %q", NameCLIPBPE, v.source, symbols[b], symbols[b]+"</w>")
		}
		m.byteID[b], m.byteEndID[b] = id, end
	}
	madeBy := make(map[int32]int) // symbol id → highest rank that makes it
	for rank, pair := range v.merges {
		a, okA := v.encoder[pair[0]]
		b, okB := v.encoder[pair[1]]
		c, okC := v.encoder[pair[0]+pair[1]]
		if !okA || !okB || !okC {
			return nil, fmt.Errorf("tokenizer %s: %s: merge %d (%q %q) uses or makes a symbol missing from the vocabulary", NameCLIPBPE, v.source, rank+1, pair[0], pair[1])
		}
		// dict(zip(merges, range(...))): a repeated merge keeps its last rank.
		m.ranks[pairKey(a, b)] = uint64(rank)<<32 | uint64(uint32(c))
		madeBy[c] = rank
	}
	m.heapSafe = true
	for rank, pair := range v.merges {
		for _, s := range pair {
			if r, ok := madeBy[v.encoder[s]]; ok && r >= rank {
				m.heapSafe = false
			}
		}
	}
	return m, nil
}

// heapThreshold is the word length (in bytes) from which the heap
// algorithm replaces round-by-round merging, whose cost grows with the
// square of the length (a 100 kB run of letters would take minutes).
const heapThreshold = 64

// appendWord appends the BPE ids of word (a non-empty pre-token) to dst.
func (m *bpeModel) appendWord(dst []int32, word string) []int32 {
	n := len(word)
	if n == 1 {
		return append(dst, m.byteEndID[word[0]])
	}
	var buf [heapThreshold]int32
	var syms []int32
	if n <= len(buf) {
		syms = buf[:n]
	} else {
		syms = make([]int32, n)
	}
	for i := 0; i < n-1; i++ {
		syms[i] = m.byteID[word[i]]
	}
	syms[n-1] = m.byteEndID[word[n-1]]
	if n > heapThreshold && m.heapSafe {
		return append(dst, m.mergeHeap(syms)...)
	}
	return append(dst, m.mergeRounds(syms)...)
}

// mergeRounds is SimpleTokenizer.bpe's loop: find the pair of lowest rank,
// merge all its occurrences left to right, repeat.
func (m *bpeModel) mergeRounds(syms []int32) []int32 {
	for len(syms) > 1 {
		best, at := uint64(math.MaxUint64), -1
		for i := 0; i+1 < len(syms); i++ {
			if v, ok := m.ranks[pairKey(syms[i], syms[i+1])]; ok && v < best {
				best, at = v, i // ranks are unique, so the rank decides alone
			}
		}
		if at < 0 {
			break
		}
		first, second, merged := syms[at], syms[at+1], int32(uint32(best))
		out := syms[:0]
		for i := 0; i < len(syms); {
			if i+1 < len(syms) && syms[i] == first && syms[i+1] == second {
				out = append(out, merged)
				i += 2
				continue
			}
			out = append(out, syms[i])
			i++
		}
		syms = out
	}
	return syms
}

// mergeHeap gives mergeRounds' result in O(n log n): pair occurrences are
// merged in (rank, position) order. Valid only when heapSafe: then a merge
// never creates a pair whose rank is at or below the rank being merged, so
// all occurrences of one rank are merged, left to right, before any other.
func (m *bpeModel) mergeHeap(syms []int32) []int32 {
	n := len(syms)
	next := make([]int32, n) // linked list over positions; -1 ends it
	prev := make([]int32, n)
	for i := range n {
		next[i], prev[i] = int32(i+1), int32(i-1)
	}
	next[n-1] = -1
	h := &pairHeap{}
	push := func(i int32) {
		if i < 0 || next[i] < 0 {
			return
		}
		j := next[i]
		if v, ok := m.ranks[pairKey(syms[i], syms[j])]; ok {
			heap.Push(h, pairAt{rank: uint32(v >> 32), pos: i, left: syms[i], right: syms[j], merged: int32(uint32(v))})
		}
	}
	for i := 0; i+1 < n; i++ {
		push(int32(i))
	}
	for h.Len() > 0 {
		p := heap.Pop(h).(pairAt)
		j := next[p.pos]
		// Stale entries: a neighbour was merged away since the push.
		if syms[p.pos] != p.left || j < 0 || syms[j] != p.right {
			continue
		}
		syms[p.pos] = p.merged
		next[p.pos] = next[j]
		if next[j] >= 0 {
			prev[next[j]] = p.pos
		}
		prev[j] = -2 // removed
		syms[j] = -1
		push(prev[p.pos])
		push(p.pos)
	}
	out := syms[:0]
	for i := int32(0); i >= 0; i = next[i] {
		out = append(out, syms[i])
	}
	return out
}

// pairAt is one candidate merge in mergeHeap.
type pairAt struct {
	rank                uint32
	pos                 int32
	left, right, merged int32
}

// pairHeap orders candidates by rank, then position.
type pairHeap []pairAt

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	return h[i].rank < h[j].rank || h[i].rank == h[j].rank && h[i].pos < h[j].pos
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pairAt)) }
func (h *pairHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// bpeCache maps a pre-token to its BPE ids. Words are looked up far more
// often than they are new, so hits must be cheap from many goroutines: hits
// read an immutable wordTable through an atomic pointer, with no lock and
// no shared write. New words go to a locked map, from which a fresh table
// is built once an eighth as many words are new (so each word is copied a
// bounded number of times). Ids are never modified after insertion, so
// readers may keep them.
type bpeCache struct {
	frozen   atomic.Pointer[wordTable]
	mu       sync.Mutex
	all      map[string][]int32 // every cached word, frozen or not
	fresh    int                // words of all that frozen lacks
	slowHits int                // lookups answered by all since the last publish
}

const (
	// cacheLimit bounds the words kept: captions of a corpus reuse a
	// modest vocabulary, but a stream of unique junk must not grow memory
	// without bound. Past it the cache starts over.
	cacheLimit = 1 << 18
	// cacheMaxWordLen: longer words are rare and are not cached.
	cacheMaxWordLen = 64
	// cacheMinPublish is the fewest new words that trigger a new table.
	cacheMinPublish = 256
)

func newBPECache() *bpeCache {
	c := &bpeCache{all: make(map[string][]int32)}
	c.frozen.Store(newWordTable(nil))
	return c
}

// get looks up a word given as bytes.
func (c *bpeCache) get(word []byte) ([]int32, bool) {
	if ids, ok := c.frozen.Load().lookupBytes(word); ok {
		return ids, true
	}
	c.mu.Lock()
	ids, ok := c.all[string(word)]
	c.slowHit(ok)
	c.mu.Unlock()
	return ids, ok
}

// getString looks up a word given as a string.
func (c *bpeCache) getString(word string) ([]int32, bool) {
	if ids, ok := c.frozen.Load().lookup(word); ok {
		return ids, true
	}
	c.mu.Lock()
	ids, ok := c.all[word]
	c.slowHit(ok)
	c.mu.Unlock()
	return ids, ok
}

// slowHit counts words found only in the locked map (c.mu held). Words
// that keep being asked for there are published early, so that the last
// few new words of a corpus do not stay on the locked path for good.
func (c *bpeCache) slowHit(found bool) {
	if !found {
		return
	}
	c.slowHits++
	if c.slowHits >= cacheMinPublish {
		c.publish()
	}
}

// publish builds a new frozen table from every cached word (c.mu held).
func (c *bpeCache) publish() {
	c.frozen.Store(newWordTable(c.all))
	c.fresh, c.slowHits = 0, 0
}

// put records the ids of a word that get did not find.
func (c *bpeCache) put(word string, ids []int32) {
	if len(word) > cacheMaxWordLen {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.all[word]; ok {
		return // another goroutine was first
	}
	if len(c.all) >= cacheLimit {
		clear(c.all)
		c.publish()
	}
	c.all[strings.Clone(word)] = ids // word may point into a whole caption
	c.fresh++
	if c.fresh >= max(cacheMinPublish, (len(c.all)-c.fresh)/8) {
		c.publish()
	}
}

// wordTable is an immutable open-addressing hash table from words to ids,
// laid out compactly (16-byte slots, words and ids in two arenas) so that
// a caption's lookups touch little memory.
type wordTable struct {
	seed  maphash.Seed
	slots []wordSlot // power-of-two length, at most half full
	words []byte
	ids   []int32
}

type wordSlot struct {
	tag     uint32 // high hash bits, low bit set; 0 marks an empty slot
	wordLen uint8
	idsLen  uint8
	wordOff uint32
	idsOff  uint32
	_       uint16
}

func newWordTable(m map[string][]int32) *wordTable {
	size := 16
	for size < 2*len(m) {
		size *= 2
	}
	t := &wordTable{seed: maphash.MakeSeed(), slots: make([]wordSlot, size)}
	for w, ids := range m {
		h := maphash.String(t.seed, w)
		i := h & uint64(size-1)
		for t.slots[i].tag != 0 {
			i = (i + 1) & uint64(size-1)
		}
		t.slots[i] = wordSlot{tag: tagOf(h), wordLen: uint8(len(w)), idsLen: uint8(len(ids)),
			wordOff: uint32(len(t.words)), idsOff: uint32(len(t.ids))}
		t.words = append(t.words, w...)
		t.ids = append(t.ids, ids...)
	}
	return t
}

func tagOf(h uint64) uint32 { return uint32(h>>32) | 1 }

func (t *wordTable) lookup(w string) ([]int32, bool) {
	h := maphash.String(t.seed, w)
	mask := uint64(len(t.slots) - 1)
	tag := tagOf(h)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.tag == 0 {
			return nil, false
		}
		if s.tag == tag && int(s.wordLen) == len(w) && string(t.words[s.wordOff:s.wordOff+uint32(s.wordLen)]) == w {
			return t.ids[s.idsOff : s.idsOff+uint32(s.idsLen) : s.idsOff+uint32(s.idsLen)], true
		}
	}
}

func (t *wordTable) lookupBytes(w []byte) ([]int32, bool) {
	h := maphash.Bytes(t.seed, w)
	mask := uint64(len(t.slots) - 1)
	tag := tagOf(h)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.tag == 0 {
			return nil, false
		}
		if s.tag == tag && int(s.wordLen) == len(w) && string(t.words[s.wordOff:s.wordOff+uint32(s.wordLen)]) == string(w) {
			return t.ids[s.idsOff : s.idsOff+uint32(s.idsLen) : s.idsOff+uint32(s.idsLen)], true
		}
	}
}
