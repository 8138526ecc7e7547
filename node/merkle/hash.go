package merkle

import (
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/iden3/go-iden3-crypto/poseidon"
)

// This file is the only place that knows which Poseidon implementation the
// tree uses. All three functions must produce exactly the outputs of
// go-iden3-crypto's poseidon.Hash / poseidon.HashBytes.

// hash2 is the middle-node hash Poseidon(a, b).
func hash2(a, b *fr.Element) fr.Element {
	return hashBig(a, b)
}

// hash3 is the leaf hash Poseidon(a, b, c).
func hash3(a, b, c *fr.Element) fr.Element {
	return hashBig(a, b, c)
}

func hashBig(in ...*fr.Element) fr.Element {
	bi := make([]*big.Int, len(in))
	for i, e := range in {
		bi[i] = e.BigInt(new(big.Int))
	}
	h, err := poseidon.Hash(bi)
	if err != nil {
		// Inputs are reduced field elements and the arity is fixed: the
		// library only fails on out-of-field input or a bad arity.
		panic("merkle: poseidon.Hash failed on valid input: " + err.Error())
	}
	var out fr.Element
	out.SetBigInt(h)
	return out
}

// hashBytes is poseidon.HashBytes(b) as a field element; it is zero for an
// empty b (for which the library returns no hash).
func hashBytes(b []byte) fr.Element {
	var out fr.Element
	if len(b) == 0 {
		return out
	}
	h, err := poseidon.HashBytes(b)
	if err != nil || h == nil {
		panic("merkle: poseidon.HashBytes failed")
	}
	out.SetBigInt(h)
	return out
}
