package merkle

import (
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/rustorium/rustorium/node/merkle/poseidon"
)

// This file is the only place that knows which Poseidon implementation the
// tree uses. All its hash functions must produce exactly the outputs of
// go-iden3-crypto's poseidon.Hash / poseidon.HashBytes (the oracle tests
// check it through go-merkletree-sql).

// hash2 is the middle-node hash Poseidon(a, b).
func hash2(a, b *fr.Element) fr.Element { return poseidon.Hash2(a, b) }

// hash3 is the leaf hash Poseidon(a, b, c).
func hash3(a, b, c *fr.Element) fr.Element { return poseidon.Hash3(a, b, c) }

// hashBytes is poseidon.HashBytes(b) as a field element; it is zero for an
// empty b (for which go-iden3-crypto returns no hash).
func hashBytes(b []byte) fr.Element {
	h, _ := poseidon.HashBytes(b) // never fails: it returns an error only to mirror iden3's signature
	return h
}

// hashBytesMany sets out[i] = hashBytes(in[i]) for every i.
func hashBytesMany(out []fr.Element, in [][]byte) { poseidon.HashBytesMany(out, in) }

// BytesPermutations is how many Poseidon permutations KeyFromBytes and
// ValueFromBytes run for an input of n bytes (zero for an empty input).
func BytesPermutations(n int) int { return poseidon.BytesPermutations(n) }

// hashMany2 sets out[i] = hash2(&a[i], &b[i]) for every i.
func hashMany2(out, a, b []fr.Element) { poseidon.HashMany2(out, a, b) }

// hashMany3 sets out[i] = hash3(&a[i], &b[i], &c[i]) for every i.
func hashMany3(out, a, b, c []fr.Element) { poseidon.HashMany3(out, a, b, c) }
