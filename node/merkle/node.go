package merkle

import (
	"fmt"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/maypok86/otter/v2"
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
type NodeCache struct {
	c *otter.Cache[fr.Element, node]
}

// NewNodeCache returns a cache holding at most maxNodes nodes (about 250
// bytes each including overhead). maxNodes < 1 is treated as 1.
func NewNodeCache(maxNodes int) *NodeCache {
	if maxNodes < 1 {
		maxNodes = 1
	}
	return &NodeCache{c: otter.Must(&otter.Options[fr.Element, node]{MaximumSize: maxNodes})}
}

func (c *NodeCache) get(h fr.Element) (node, bool) { return c.c.GetIfPresent(h) }
func (c *NodeCache) set(h fr.Element, n node)      { c.c.Set(h, n) }

// Len returns the approximate number of cached nodes.
func (c *NodeCache) Len() int { return c.c.EstimatedSize() }

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
