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
	// perms counts the Poseidon permutations of the keys hashed (misses).
	perms atomic.Uint64
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

func (c *keyCache) key(k []byte) fr.Element {
	if c.perShard <= 0 {
		c.perms.Add(uint64(merkle.BytesPermutations(len(k))))
		return merkle.KeyFromBytes(k)
	}
	var h uint32 = 2166136261
	for _, b := range k {
		h = (h ^ uint32(b)) * 16777619
	}
	s := &c.shards[h%uint32(len(c.shards))]
	s.mu.Lock()
	e, ok := s.m[string(k)]
	s.mu.Unlock()
	if ok {
		return e
	}
	e = merkle.KeyFromBytes(k)
	c.perms.Add(uint64(merkle.BytesPermutations(len(k))))
	s.mu.Lock()
	if len(s.m) >= c.perShard {
		for old := range s.m {
			delete(s.m, old)
			break
		}
	}
	s.m[string(k)] = e
	s.mu.Unlock()
	return e
}
