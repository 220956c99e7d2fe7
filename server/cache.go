package server

import (
	"container/list"
	"slices"

	"github.com/memmamba/memmamba/engine"
)

// stateCache keeps recurrent states under the token prefix that produced
// them, so that a request whose tokens extend a prefix seen before starts
// from that prefix's state and prefills only the rest. A Mamba state has
// a fixed size whatever the prefix length, so one entry costs the same for
// ten tokens as for a hundred thousand.
//
// Design: an entry's key is a 64-bit hash chain over every token of its
// prefix, h(i) = mix(h(i-1), token i), so one pass over a prompt gives the
// key of each of its prefixes; the entry keeps the prefix's tokens and a
// hit counts only when they equal the prompt's (a hash collision is never
// a wrong answer, only a miss). Each entry also keeps the logits after its
// last token, so a prompt that is exactly a cached prefix needs no
// prefill at all. Entries form an LRU list bounded by the bytes of their
// states (Session.StateBytes), logits and tokens.
//
// The cache belongs to the scheduler's goroutine: it is not safe for
// concurrent use. A cached session is never stepped: lookup hands out a
// clone.
type stateCache struct {
	budget int64
	used   int64
	lru    *list.List // of *cacheEntry, most recent first
	byKey  map[uint64]*list.Element
}

// cacheEntry is one cached state.
type cacheEntry struct {
	key    uint64
	tokens []int32
	sess   *engine.Session
	logits []float32
	bytes  int64
}

// entryOverhead approximates the bookkeeping of an entry beyond its
// state, logits and tokens (list element, map slot, headers).
const entryOverhead = 256

// newStateCache returns a cache of at most budget bytes (0 turns it off).
func newStateCache(budget int64) *stateCache {
	return &stateCache{budget: budget, lru: list.New(), byKey: map[uint64]*list.Element{}}
}

// chainSeed starts the hash chain (the empty prefix).
const chainSeed uint64 = 0x9e3779b97f4a7c15

// chain extends the hash h of a prefix by one token (a splitmix64 step
// over the previous hash and the token).
func chain(h uint64, token int) uint64 {
	z := h ^ (uint64(uint32(token)) + 0x9e3779b97f4a7c15 + (h << 6) + (h >> 2))
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// keyOf returns the hash chain of tokens.
func keyOf(tokens []int) uint64 {
	h := chainSeed
	for _, t := range tokens {
		h = chain(h, t)
	}
	return h
}

// equalTokens reports whether the stored prefix a equals b.
func equalTokens(a []int32, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i, t := range a {
		if int(t) != b[i] {
			return false
		}
	}
	return true
}

// lookup returns a clone of the state of the longest cached prefix of
// tokens, its length and a copy of the logits after it; (nil, 0, nil) when
// no prefix is cached.
func (c *stateCache) lookup(tokens []int) (*engine.Session, int, []float32) {
	if c.budget <= 0 || len(c.byKey) == 0 {
		return nil, 0, nil
	}
	var hits []int // prefix lengths whose key is present, shortest first
	h := chainSeed
	for i, t := range tokens {
		h = chain(h, t)
		if _, ok := c.byKey[h]; ok {
			hits = append(hits, i+1)
		}
	}
	for j := len(hits) - 1; j >= 0; j-- {
		n := hits[j]
		el := c.byKey[keyOf(tokens[:n])]
		e := el.Value.(*cacheEntry)
		if !equalTokens(e.tokens, tokens[:n]) {
			continue
		}
		c.lru.MoveToFront(el)
		return e.sess.Clone(), n, slices.Clone(e.logits)
	}
	return nil, 0, nil
}

// put stores sess (which the cache then owns: the caller must not use it
// again) as the state after tokens, with the logits after the last one
// (copied). A prefix already cached is only marked as recently used; an
// entry above the whole budget is not stored. Older entries are evicted
// until the cache fits its budget.
func (c *stateCache) put(tokens []int, sess *engine.Session, logits []float32) {
	if c.budget <= 0 || len(tokens) == 0 || logits == nil {
		return
	}
	key := keyOf(tokens)
	if el, ok := c.byKey[key]; ok {
		if equalTokens(el.Value.(*cacheEntry).tokens, tokens) {
			c.lru.MoveToFront(el)
			return
		}
		c.remove(el) // a collision: the newer prefix wins
	}
	bytes := int64(sess.StateBytes()) + 4*int64(len(logits)) + 4*int64(len(tokens)) + entryOverhead
	if bytes > c.budget {
		return
	}
	e := &cacheEntry{key: key, sess: sess, logits: slices.Clone(logits), bytes: bytes, tokens: make([]int32, len(tokens))}
	for i, t := range tokens {
		e.tokens[i] = int32(t)
	}
	c.byKey[key] = c.lru.PushFront(e)
	c.used += bytes
	for c.used > c.budget {
		c.remove(c.lru.Back())
	}
}

// remove drops one entry.
func (c *stateCache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*cacheEntry)
	delete(c.byKey, e.key)
	c.used -= e.bytes
}

// len is the number of entries; size their bytes.
func (c *stateCache) len() int    { return c.lru.Len() }
func (c *stateCache) size() int64 { return c.used }
