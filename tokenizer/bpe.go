package tokenizer

import (
	"container/heap"
	"fmt"
	"sync"
	"unicode/utf8"
)

// bpe is the BPE model. In byte-level mode (a ByteLevel pre-tokenizer is
// present) the vocabulary is re-keyed at load by the raw bytes its
// byte-level strings stand for, so encoding needs no per-call mapping: the
// symbols of a piece are its bytes. Otherwise the symbols are its runes.
type bpe struct {
	byteLevel    bool
	vocab        map[string]int // keyed by raw bytes in byte-level mode
	byteID       [256]int32     // byte-level mode: id of each single byte, -1 if none
	merges       map[uint64]mergeRule
	ignoreMerges bool
	byteFallback bool
	unk          int // -1 if none
	fuseUnk      bool

	cacheMu sync.RWMutex
	cache   map[string][]int
}

type mergeRule struct {
	rank int32
	id   int32
}

const maxCacheEntries = 1 << 16

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// tok is one model token within a piece: id and byte range in the piece.
type tok struct {
	id         int
	start, end int
}

// encodePiece appends the tokens of one pre-tokenized piece.
func (m *bpe) encodePiece(dst []tok, s string) []tok {
	if s == "" {
		return dst
	}
	if m.ignoreMerges {
		if id, ok := m.vocab[s]; ok {
			return append(dst, tok{id, 0, len(s)})
		}
	}
	cacheable := len(s) <= 64
	if cacheable {
		m.cacheMu.RLock()
		ids, ok := m.cache[s]
		m.cacheMu.RUnlock()
		if ok {
			return appendCached(dst, ids)
		}
	}
	start := len(dst)
	dst = m.merge(dst, s)
	if cacheable {
		enc := make([]int, 0, 2*(len(dst)-start))
		for _, t := range dst[start:] {
			enc = append(enc, t.id, t.end)
		}
		m.cacheMu.Lock()
		if len(m.cache) >= maxCacheEntries {
			clear(m.cache)
		}
		m.cache[s] = enc
		m.cacheMu.Unlock()
	}
	return dst
}

func appendCached(dst []tok, enc []int) []tok {
	prev := 0
	for i := 0; i < len(enc); i += 2 {
		dst = append(dst, tok{enc[i], prev, enc[i+1]})
		prev = enc[i+1]
	}
	return dst
}

// symbol is a node of the doubly linked list the merges work on.
type symbol struct {
	id         int32
	start, end int
	prev, next int // -1 at the ends
}

type mergeCand struct {
	rank       int32
	pos        int
	left, rite int32 // ids the pair had when queued
	ritePos    int
}

type candHeap []mergeCand

func (h candHeap) Len() int { return len(h) }
func (h candHeap) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}
func (h candHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candHeap) Push(x any)   { *h = append(*h, x.(mergeCand)) }
func (h *candHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// merge runs the BPE merges on s: repeatedly the pair of adjacent symbols
// with the lowest merge rank (leftmost on ties) is merged, as the Rust
// implementation does with its priority queue.
func (m *bpe) merge(dst []tok, s string) []tok {
	syms := m.initialSymbols(s)
	if len(syms) == 0 {
		return dst
	}
	var h candHeap
	push := func(i int) {
		j := syms[i].next
		if j < 0 || syms[i].id < 0 || syms[j].id < 0 {
			return
		}
		if r, ok := m.merges[pairKey(syms[i].id, syms[j].id)]; ok {
			h = append(h, mergeCand{r.rank, i, syms[i].id, syms[j].id, j})
		}
	}
	for i := range syms {
		push(i)
	}
	heap.Init(&h)
	for h.Len() > 0 {
		c := heap.Pop(&h).(mergeCand)
		a := &syms[c.pos]
		if a.id != c.left || a.next != c.ritePos || a.next < 0 || syms[a.next].id != c.rite {
			continue // stale
		}
		b := &syms[a.next]
		r := m.merges[pairKey(a.id, b.id)]
		a.id = r.id
		a.end = b.end
		a.next = b.next
		if b.next >= 0 {
			syms[b.next].prev = c.pos
		}
		b.id = -2 // dead
		if a.prev >= 0 {
			if r, ok := m.merges[pairKey(syms[a.prev].id, a.id)]; ok && syms[a.prev].id >= 0 {
				heap.Push(&h, mergeCand{r.rank, a.prev, syms[a.prev].id, a.id, c.pos})
			}
		}
		if a.next >= 0 {
			if r, ok := m.merges[pairKey(a.id, syms[a.next].id)]; ok && syms[a.next].id >= 0 {
				heap.Push(&h, mergeCand{r.rank, c.pos, a.id, syms[a.next].id, a.next})
			}
		}
	}
	for i := 0; i >= 0; i = syms[i].next {
		sy := syms[i]
		if sy.id >= 0 {
			dst = append(dst, tok{int(sy.id), sy.start, sy.end})
		} else if sy.id == -1 && m.unk >= 0 {
			if m.fuseUnk && len(dst) > 0 && dst[len(dst)-1].id == m.unk && dst[len(dst)-1].end == sy.start {
				dst[len(dst)-1].end = sy.end
			} else {
				dst = append(dst, tok{m.unk, sy.start, sy.end})
			}
		}
	}
	return dst
}

// initialSymbols splits s into its first symbols: bytes in byte-level
// mode, runes otherwise. A rune missing from the vocabulary becomes its
// <0xXX> byte tokens with byte_fallback, else an unknown symbol (id -1).
func (m *bpe) initialSymbols(s string) []symbol {
	syms := make([]symbol, 0, len(s))
	add := func(id int32, a, b int) {
		n := len(syms)
		syms = append(syms, symbol{id: id, start: a, end: b, prev: n - 1, next: n + 1})
	}
	if m.byteLevel {
		for i := 0; i < len(s); i++ {
			add(m.byteID[s[i]], i, i+1)
		}
	} else {
		for i := 0; i < len(s); {
			_, n := utf8.DecodeRuneInString(s[i:])
			if id, ok := m.vocab[s[i:i+n]]; ok {
				add(int32(id), i, i+n)
			} else if m.byteFallback {
				for k := i; k < i+n; k++ {
					id, ok := m.vocab[fmt.Sprintf("<0x%02X>", s[k])]
					if !ok {
						id = -1
					}
					add(int32(id), k, k+1)
				}
			} else {
				add(-1, i, i+n)
			}
			i += n
		}
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	return syms
}
