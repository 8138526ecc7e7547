// Package merkle is the Poseidon sparse Merkle tree that commits a shard's
// state: bit-identical to iden3's go-merkletree-sql (v2.0.6) roots and proofs,
// so its proofs verify there and in circom's SMTVerifier.
//
// Writes are applied a block at a time ([Tree.Apply]): every touched internal
// node is hashed once per batch and independent subtrees are hashed in
// parallel. [ApplyMany] computes several trees' batches with shared hashing
// (the nodes of equal height of all the trees in one batch), for small
// batches of many trees. Nodes are content addressed; new ones are returned
// to the caller to persist, and existing ones are read on demand through a
// [NodeReader] behind a bounded in-memory cache.
//
// The scheme: keys and values are BN254 scalar field elements; a key's path
// takes its bits from the least significant bit up; the empty node is 0; a
// leaf is Poseidon(key, value, 1); a middle node is Poseidon(left, right); a
// subtree that holds a single leaf is that leaf (compressed tree).
package merkle
