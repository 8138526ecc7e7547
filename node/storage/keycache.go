package storage

import (
	"sync"
	"sync/atomic"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/rustorium/rustorium/node/merkle"
)

// keyCache remembers tree keys of state keys: merkle.KeyFromBytes is a
// 16-input Poseidon (hundreds of µs), and workloads read and write the same
// keys over and over. Bounded, sharded, random eviction.
type keyCache struct {
	perShard int
	shards   [16]keyShard
	// perms counts the Poseidon permutations of the keys hashed (the
	// misses), and hashed those keys.
	perms, hashed atomic.Uint64
}

type keyShard struct {
	mu sync.Mutex
	m  map[string]fr.Element
}

// newKeyCache holds about entries keys; entries < 0 disables it.
func newKeyCache(entries int) *keyCache {
	c := &keyCache{perShard: -1}
	if entries >= 0 {
		c.perShard = max(1, (entries+15)/16)
	}
	for i := range c.shards {
		c.shards[i].m = map[string]fr.Element{}
	}
	return c
}

// key returns k's tree key, from the cache or hashed (and then cached).
func (c *keyCache) key(k []byte) fr.Element {
	if e, ok := c.lookup(k); ok {
		return e
	}
	e := merkle.KeyFromBytes(k)
	c.add(k, e)
	return e
}

// lookup returns k's cached tree key, if the cache holds it.
func (c *keyCache) lookup(k []byte) (fr.Element, bool) {
	if c.perShard <= 0 {
		return fr.Element{}, false
	}
	s := c.shard(k)
	s.mu.Lock()
	e, ok := s.m[string(k)]
	s.mu.Unlock()
	return e, ok
}

// add caches e, which the caller hashed from k after lookup missed, as k's
// tree key (unless the cache has it by now: the same key twice in a batch,
// or hashed concurrently), evicting a random key when the shard is full; it
// counts k's permutations and k either way.
func (c *keyCache) add(k []byte, e fr.Element) {
	c.perms.Add(uint64(merkle.BytesPermutations(len(k))))
	c.hashed.Add(1)
	if c.perShard <= 0 {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[string(k)]; ok {
		return
	}
	if len(s.m) >= c.perShard {
		for old := range s.m {
			delete(s.m, old)
			break
		}
	}
	s.m[string(k)] = e
}

func (c *keyCache) shard(k []byte) *keyShard {
	var h uint32 = 2166136261
	for _, b := range k {
		h = (h ^ uint32(b)) * 16777619
	}
	return &c.shards[h%uint32(len(c.shards))]
}
