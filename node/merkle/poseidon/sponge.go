package poseidon

import "github.com/consensys/gnark-crypto/ecc/bn254/fr"

const (
	// spongeChunk is how many bytes become one field element in HashBytes
	// (iden3's spongeChunkSize): 31 bytes are always below the modulus.
	spongeChunk = 31
	// spongeFrame is how many field elements one Poseidon call absorbs in
	// HashBytes (iden3's spongeInputs): the 16-input, t=17 permutation.
	spongeFrame = MaxInputs
)

// HashBytes returns go-iden3-crypto's poseidon.HashBytes(b) as a field
// element, without allocating.
//
// The sponge is iden3's: b is cut into 31-byte chunks, each read as a
// big-endian integer (a short last chunk is padded with zero bytes on the
// right, so 0xdeadbeef reads as 0xdeadbeef000…0, 31 bytes long). The first 16
// chunks fill a frame hashed with the 16-input Poseidon; every later frame
// holds the previous frame's hash followed by the next 15 chunks, and a
// frame left partly filled at the end is padded with zero elements. When the
// last chunk completes a frame exactly, that frame's hash is the result.
//
// For an empty b, iden3 hashes nothing and returns a nil *big.Int and a nil
// error; HashBytes returns the zero element and a nil error. The error is
// always nil: it is there so that HashBytes can replace iden3's call as is.
func HashBytes(b []byte) (fr.Element, error) {
	var (
		st    [spongeFrame + 1]fr.Element // st[0] is the capacity, always 0 on entry
		h     fr.Element
		k     = 1 // next input slot, st[k]
		dirty = false
	)
	for len(b) >= spongeChunk {
		st[k] = chunkElement(b[:spongeChunk])
		b = b[spongeChunk:]
		dirty = true
		if k < spongeFrame {
			k++
			continue
		}
		h = permute17(&st, spongeFrame)
		st = [spongeFrame + 1]fr.Element{1: h}
		k = 2
		dirty = false
	}
	if len(b) > 0 {
		st[k] = chunkElement(b)
		dirty = true
		k++
	}
	if dirty {
		h = permute17(&st, k-1) // st[k:] are still zero
	}
	return h, nil
}

// BytesPermutations is how many Poseidon permutations HashBytes runs for
// an input of n bytes: none for an empty input, one for up to 16 chunks of
// 31 bytes, and one more for every further 15 chunks or part of them.
// Callers count their Poseidon work with it without touching the hash.
func BytesPermutations(n int) int {
	if n <= 0 {
		return 0
	}
	chunks := (n + spongeChunk - 1) / spongeChunk
	if chunks <= spongeFrame {
		return 1
	}
	return 1 + (chunks-spongeFrame+spongeFrame-2)/(spongeFrame-1)
}

// chunkElement reads up to 31 bytes as a big-endian integer, padded with zero
// bytes on the right to 31 bytes, and returns it as a field element.
func chunkElement(c []byte) fr.Element {
	var buf [fr.Bytes]byte // buf[0] stays 0: the value is below 2^248 < q
	copy(buf[1:], c)
	e, err := fr.BigEndian.Element(&buf)
	if err != nil {
		panic("poseidon: 31-byte chunk outside the field") // cannot happen
	}
	return e
}
