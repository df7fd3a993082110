package wordpiece

import (
	"slices"
	"strings"
)

// trie finds the longest vocabulary entry that starts a byte string in one
// pass over it, where probing a map with every shorter substring (as
// WordPiece is usually written, with the same result) costs a hash each.
// A node lives in the edge that leads to it, so a walk reads one array.
type trie struct {
	root  [256]trieEdge // the root's edge for each first byte
	edges []trieEdge    // each node's edges, contiguous and sorted by byte
}

// trieEdge is an edge and the node it leads to.
type trieEdge struct {
	id       int32 // the id of the key ending at the node, or -1
	first, n int32 // the node's own edges: edges[first : first+n]
	b        byte
}

// newTrie builds the trie of keys.
func newTrie(keys map[string]int32) *trie {
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		if k != "" {
			sorted = append(sorted, k)
		}
	}
	slices.Sort(sorted)
	t := &trie{}
	for i := range t.root {
		t.root[i] = trieEdge{id: -1, b: byte(i)}
	}
	for lo := 0; lo < len(sorted); {
		hi := lo + groupLen(sorted[lo:], 0)
		t.build(&t.root[sorted[lo][0]], sorted[lo:hi], keys, 1)
		lo = hi
	}
	return t
}

// groupLen is the number of keys at the start of sorted sharing the byte
// at depth with the first.
func groupLen(sorted []string, depth int) int {
	b := sorted[0][depth]
	n := 1
	for n < len(sorted) && sorted[n][depth] == b {
		n++
	}
	return n
}

// build fills in e, the edge to the node for the common prefix
// group[*][:depth] of a sorted group of keys, and the node's subtree.
func (t *trie) build(e *trieEdge, group []string, keys map[string]int32, depth int) {
	if len(group[0]) == depth { // sorted first: the prefix itself is a key
		e.id = keys[group[0]]
		group = group[1:]
	}
	var starts []int
	for lo := 0; lo < len(group); lo += groupLen(group[lo:], depth) {
		starts = append(starts, lo)
	}
	first := int32(len(t.edges))
	e.first, e.n = first, int32(len(starts))
	for _, lo := range starts {
		t.edges = append(t.edges, trieEdge{id: -1, b: group[lo][depth]})
	}
	for k, lo := range starts {
		hi := len(group)
		if k+1 < len(starts) {
			hi = starts[k+1]
		}
		// t.edges may grow in the call: index it afresh.
		child := t.edges[first+int32(k)]
		t.build(&child, group[lo:hi], keys, depth+1)
		t.edges[first+int32(k)] = child
	}
}

// longest returns the id and length of the longest key that prefixes s,
// or -1, 0.
func (t *trie) longest(s []byte) (id int32, n int) {
	id = -1
	if len(s) == 0 {
		return id, 0
	}
	e := &t.root[s[0]]
	for i := 1; ; i++ {
		if e.id >= 0 {
			id, n = e.id, i
		}
		if i == len(s) || e.n == 0 {
			return id, n
		}
		c := s[i]
		var next *trieEdge
		for k := e.first; k < e.first+e.n; k++ {
			if b := t.edges[k].b; b >= c {
				if b == c {
					next = &t.edges[k]
				}
				break
			}
		}
		if next == nil {
			return id, n
		}
		e = next
	}
}

// prefixes splits a vocabulary into its word-initial and continuation
// tries: every entry starts a word, and "##x" continues one with "x".
func prefixes(ids map[string]int32) (word, cont *trie) {
	c := map[string]int32{}
	for k, id := range ids {
		if rest, ok := strings.CutPrefix(k, "##"); ok && rest != "" {
			c[rest] = id
		}
	}
	return newTrie(ids), newTrie(c)
}
