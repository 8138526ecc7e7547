package merkle

import (
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	iden3poseidon "github.com/iden3/go-iden3-crypto/poseidon"

	"github.com/rustorium/rustorium/node/merkle/poseidon"
)

// This file is the only place that knows which Poseidon implementation the
// tree uses. All three functions must produce exactly the outputs of
// go-iden3-crypto's poseidon.Hash / poseidon.HashBytes (the oracle tests
// check it through go-merkletree-sql).

// hash2 is the middle-node hash Poseidon(a, b).
func hash2(a, b *fr.Element) fr.Element { return poseidon.Hash2(a, b) }

// hash3 is the leaf hash Poseidon(a, b, c).
func hash3(a, b, c *fr.Element) fr.Element { return poseidon.Hash3(a, b, c) }

// hashBytes is poseidon.HashBytes(b) as a field element; it is zero for an
// empty b (for which the library returns no hash). It stays on
// go-iden3-crypto: it needs a 16-input (t=17) Poseidon, a width the fast
// package does not implement.
func hashBytes(b []byte) fr.Element {
	var out fr.Element
	if len(b) == 0 {
		return out
	}
	h, err := iden3poseidon.HashBytes(b)
	if err != nil || h == nil {
		panic("merkle: poseidon.HashBytes failed") // cannot happen for non-empty input
	}
	out.SetBigInt(h)
	return out
}
