package serve

import (
	"container/list"
	"slices"

	"github.com/rwkv-gpu/rwkv-gpu/model"
)

// prefixCache keeps sessions (states on the device) keyed by the tokens
// they have consumed, at most capacity of them, evicting the least
// recently used. It is the scheduler's: not safe for concurrent use.
type prefixCache struct {
	capacity int
	byHash   map[uint64][]*cacheEntry
	lru      list.List // of *cacheEntry, most recently used first
	// onEvict is told of each eviction (for metrics); may be nil.
	onEvict func()
}

// cacheEntry is one cached state.
type cacheEntry struct {
	tokens []int
	hash   uint64
	s      model.Session
	elem   *list.Element
}

func newPrefixCache(capacity int) *prefixCache {
	return &prefixCache{capacity: max(capacity, 0), byHash: make(map[uint64][]*cacheEntry)}
}

// Len is the number of entries.
func (c *prefixCache) Len() int { return c.lru.Len() }

// FNV-1a over the token ids, one id at a time.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func hashNext(h uint64, tok int) uint64 { return (h ^ uint64(uint32(tok))) * fnvPrime }

func hashTokens(tokens []int) uint64 {
	h := uint64(fnvOffset)
	for _, t := range tokens {
		h = hashNext(h, t)
	}
	return h
}

// lookup returns the entry with the longest token sequence that is a
// prefix of tokens and at most maxLen long (nil if none), marking it used.
func (c *prefixCache) lookup(tokens []int, maxLen int) *cacheEntry {
	if c.lru.Len() == 0 {
		return nil
	}
	maxLen = min(maxLen, len(tokens))
	hashes := make([]uint64, maxLen+1) // hashes[n]: of tokens[:n]
	hashes[0] = fnvOffset
	for i := range maxLen {
		hashes[i+1] = hashNext(hashes[i], tokens[i])
	}
	for n := maxLen; n > 0; n-- {
		for _, e := range c.byHash[hashes[n]] {
			if len(e.tokens) == n && slices.Equal(e.tokens, tokens[:n]) {
				c.lru.MoveToFront(e.elem)
				return e
			}
		}
	}
	return nil
}

// insert keeps s as the state after tokens, taking ownership of s: when
// the cache has no room (capacity 0) or already holds those tokens, s is
// closed. It evicts the least recently used entry when full.
func (c *prefixCache) insert(tokens []int, s model.Session) {
	if c.capacity == 0 || len(tokens) == 0 {
		s.Close()
		return
	}
	h := hashTokens(tokens)
	for _, e := range c.byHash[h] {
		if slices.Equal(e.tokens, tokens) {
			c.lru.MoveToFront(e.elem)
			s.Close()
			return
		}
	}
	for c.lru.Len() >= c.capacity {
		c.evict(nil)
	}
	e := &cacheEntry{tokens: slices.Clone(tokens), hash: h, s: s}
	e.elem = c.lru.PushFront(e)
	c.byHash[h] = append(c.byHash[h], e)
}

// evict closes the least recently used entry other than keep and reports
// whether there was one.
func (c *prefixCache) evict(keep *cacheEntry) bool {
	for el := c.lru.Back(); el != nil; el = el.Prev() {
		e := el.Value.(*cacheEntry)
		if e == keep {
			continue
		}
		c.remove(e)
		if c.onEvict != nil {
			c.onEvict()
		}
		return true
	}
	return false
}

// remove drops an entry and closes its session.
func (c *prefixCache) remove(e *cacheEntry) {
	c.lru.Remove(e.elem)
	list := c.byHash[e.hash]
	for i, x := range list {
		if x == e {
			list = slices.Delete(list, i, i+1)
			break
		}
	}
	if len(list) == 0 {
		delete(c.byHash, e.hash)
	} else {
		c.byHash[e.hash] = list
	}
	e.s.Close()
}

// clear closes every entry.
func (c *prefixCache) clear() {
	for c.lru.Len() > 0 {
		c.remove(c.lru.Front().Value.(*cacheEntry))
	}
}
