package merkle

import (
	"fmt"
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// Node type bytes, as in go-merkletree-sql's NodeType.
const (
	typeMiddle byte = 0
	typeLeaf   byte = 1
	typeEmpty  byte = 2
)

// EncodedNodeLen is the length of an encoded middle or leaf node: a type
// byte and two 32-byte little-endian field elements, exactly
// go-merkletree-sql's Node.Value().
const EncodedNodeLen = 1 + 2*32

// HashLen is the length of a node hash as passed to NodeReader.ReadNode:
// the 32-byte little-endian encoding of the hash (go-merkletree-sql's Hash).
const HashLen = 32

// NodeReader loads persisted nodes. ReadNode gets the HashLen-byte
// little-endian node hash and returns the node's encoding (as produced in
// Update.Nodes) or an error wrapping ErrNodeNotFound. It must be safe for
// concurrent use; the tree does not retain the returned slice.
type NodeReader interface {
	ReadNode(hash []byte) ([]byte, error)
}

// node is a decoded middle or leaf node. For a middle node a and b are the
// children's hashes; for a leaf they are the key and the value.
type node struct {
	typ  byte
	a, b fr.Element
}

func (n *node) hash() fr.Element {
	switch n.typ {
	case typeMiddle:
		return hash2(&n.a, &n.b)
	case typeLeaf:
		return leafHash(&n.a, &n.b)
	}
	return fr.Element{}
}

var one = fr.One()

func leafHash(k, v *fr.Element) fr.Element { return hash3(k, v, &one) }

func (n *node) encode(dst []byte) {
	dst[0] = n.typ
	a := ElementLE(&n.a)
	b := ElementLE(&n.b)
	copy(dst[1:33], a[:])
	copy(dst[33:65], b[:])
}

func decodeNode(b []byte) (node, error) {
	var n node
	if len(b) != EncodedNodeLen {
		return n, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidNode, len(b), EncodedNodeLen)
	}
	n.typ = b[0]
	if n.typ != typeMiddle && n.typ != typeLeaf {
		return n, fmt.Errorf("%w: type byte %d", ErrInvalidNode, n.typ)
	}
	var err error
	if n.a, err = ElementFromLE(b[1:33]); err != nil {
		return n, fmt.Errorf("%w: first element: %w", ErrInvalidNode, err)
	}
	if n.b, err = ElementFromLE(b[33:65]); err != nil {
		return n, fmt.Errorf("%w: second element: %w", ErrInvalidNode, err)
	}
	return n, nil
}

// NodeCache is a bounded, concurrency-safe in-memory cache of decoded nodes,
// keyed by hash. Nodes are content addressed, so one cache may be shared by
// many trees (for example one per shard) over the same store.
//
// It is a sharded map with random eviction: a batch rewrites the hot top of
// the tree every time, so recency is already implied by insertion, and a
// plain map keeps lookups far cheaper than a general-purpose cache. A
// Commit drops the nodes its batch superseded (Update.stale), so the cache
// is not filled by dead nodes that evict live ones: at 8000 puts/s on
// 100k keys, the misses that read the store were 6% of a node's CPU
// before (session 39), and none after. Trees sharing a cache over the same
// keys lose nothing but a hit by that: a dropped node another tree still
// holds is read from the store again.
type NodeCache struct {
	perShard int
	shards   [cacheShards]cacheShard
}

const cacheShards = 64

type cacheShard struct {
	mu sync.Mutex
	m  map[fr.Element]node
	_  [40]byte // keep shards on separate cache lines
}

// NewNodeCache returns a cache holding at most about maxNodes nodes (about
// 240 bytes each including the map's overhead: 63 MB for 1<<18 in a heap
// profile). maxNodes < 1 is treated as 1.
func NewNodeCache(maxNodes int) *NodeCache {
	c := &NodeCache{perShard: max(1, (maxNodes+cacheShards-1)/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[fr.Element]node)
	}
	return c
}

func (c *NodeCache) shard(h *fr.Element) *cacheShard { return &c.shards[h[0]%cacheShards] }

func (c *NodeCache) get(h fr.Element) (node, bool) {
	s := c.shard(&h)
	s.mu.Lock()
	n, ok := s.m[h]
	s.mu.Unlock()
	return n, ok
}

func (c *NodeCache) set(h fr.Element, n node) {
	s := c.shard(&h)
	s.mu.Lock()
	if len(s.m) >= c.perShard {
		if _, ok := s.m[h]; !ok {
			for k := range s.m { // a random entry
				delete(s.m, k)
				break
			}
		}
	}
	s.m[h] = n
	s.mu.Unlock()
}

// deleteMany drops the nodes hs from the cache (those it holds).
func (c *NodeCache) deleteMany(hs []fr.Element) {
	for i := range hs {
		s := c.shard(&hs[i])
		s.mu.Lock()
		delete(s.m, hs[i])
		s.mu.Unlock()
	}
}

// setMany caches a batch's fresh nodes. Large batches are spread over up to
// workers goroutines, each owning a disjoint set of shards, so the inserts
// run in parallel without contending for a shard's lock.
func (c *NodeCache) setMany(fresh []newNode, workers int) {
	if workers <= 1 || len(fresh) < 2048 {
		for i := range fresh {
			c.set(fresh[i].h, fresh[i].n)
		}
		return
	}
	workers = min(workers, cacheShards)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range fresh {
				if int(fresh[i].h[0]%cacheShards)%workers == w {
					c.set(fresh[i].h, fresh[i].n)
				}
			}
		}()
	}
	wg.Wait()
}

// Len returns the number of cached nodes.
func (c *NodeCache) Len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// MapReader is an in-memory NodeReader (and sink for Update.Nodes), safe
// for concurrent use only if not written concurrently with reads. It is meant
// for tests, tools and benchmarks.
type MapReader map[[HashLen]byte][]byte

// ReadNode implements NodeReader.
func (m MapReader) ReadNode(hash []byte) ([]byte, error) {
	var k [HashLen]byte
	if len(hash) != HashLen {
		return nil, ErrNodeNotFound
	}
	copy(k[:], hash)
	v, ok := m[k]
	if !ok {
		return nil, ErrNodeNotFound
	}
	return v, nil
}

// Put stores every node of u.
func (m MapReader) Put(u *Update) {
	for _, w := range u.Nodes {
		var k [HashLen]byte
		copy(k[:], w.Hash)
		m[k] = w.Encoded
	}
}
