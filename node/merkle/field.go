package merkle

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"math/bits"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// maxDecimalDigits bounds the length of a decimal field element accepted by
// ParseElement (the modulus has 77 digits; leading zeros are allowed up to
// this bound).
const maxDecimalDigits = 80

// KeyFromBytes maps a byte-string key to its tree key: poseidon.HashBytes(b)
// (see docs/DESIGN.md). An empty b maps to 0.
func KeyFromBytes(b []byte) fr.Element { return hashBytes(b) }

// ValueFromBytes maps a byte-string value to its tree value:
// poseidon.HashBytes(b). An empty b maps to 0.
func ValueFromBytes(b []byte) fr.Element { return hashBytes(b) }

// ElementsFromBytes sets out[i] = KeyFromBytes(in[i]), which is also
// ValueFromBytes(in[i]), for every i: a block's keys and values hashed
// together, eight at a time where the CPU has AVX-512 IFMA
// (poseidon.HashBytesMany), at about a fifth of the CPU time of one at a
// time for inputs up to 496 bytes. It panics if the slices have different
// lengths.
func ElementsFromBytes(out []fr.Element, in [][]byte) { hashBytesMany(out, in) }

// ParseElement parses a non-negative decimal integer (digits only, no sign,
// no spaces) that must be below the BN254 scalar field modulus.
func ParseElement(s string) (fr.Element, error) { return parseDecimal(s) }

// ParseElementBytes is ParseElement on a byte slice, without converting it
// to a string (for parsers reading lines into a buffer). b is not retained.
func ParseElementBytes(b []byte) (fr.Element, error) { return parseDecimal(b) }

// pow10 holds 10^0 .. 10^19.
var pow10 = func() (p [20]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// parseDecimal parses s exactly: 19 digits at a time into a 256-bit integer
// (x = x·10^k + chunk over four 64-bit words), then checks it against the
// modulus. A value that overflows 256 bits is past the modulus too.
func parseDecimal[S string | []byte](s S) (fr.Element, error) {
	var e fr.Element
	if len(s) == 0 {
		return e, fmt.Errorf("%w: empty", ErrBadNumber)
	}
	if len(s) > maxDecimalDigits {
		return e, fmt.Errorf("%w: %d digits (max %d)", ErrOutOfField, len(s), maxDecimalDigits)
	}
	var x [4]uint64 // little-endian words
	for i := 0; i < len(s); {
		n := min(19, len(s)-i)
		var chunk uint64
		for j := i; j < i+n; j++ {
			d := s[j] - '0'
			if d > 9 {
				return e, fmt.Errorf("%w: %q: byte %d is not a decimal digit", ErrBadNumber, truncate(string(s)), j)
			}
			chunk = chunk*10 + uint64(d)
		}
		i += n
		// x = x·10^n + chunk
		m := pow10[n]
		carry := chunk
		for w := range x {
			hi, lo := bits.Mul64(x[w], m)
			var c uint64
			x[w], c = bits.Add64(lo, carry, 0)
			carry = hi + c // hi < m ≤ 10^19: no overflow
		}
		if carry != 0 {
			return e, ErrOutOfField // ≥ 2^256
		}
	}
	var le [fr.Bytes]byte
	for w := range x {
		binary.LittleEndian.PutUint64(le[8*w:], x[w])
	}
	e, err := fr.LittleEndian.Element(&le) // rejects x ≥ modulus
	if err != nil {
		return fr.Element{}, ErrOutOfField
	}
	return e, nil
}

// ElementFromBigInt converts b, which must satisfy 0 <= b < modulus.
func ElementFromBigInt(b *big.Int) (fr.Element, error) {
	var e fr.Element
	if b == nil || b.Sign() < 0 || b.Cmp(fr.Modulus()) >= 0 {
		return e, ErrOutOfField
	}
	e.SetBigInt(b)
	return e, nil
}

// ElementFromLE decodes a 32-byte little-endian canonical encoding (the byte
// order go-merkletree-sql's Hash uses).
func ElementFromLE(b []byte) (fr.Element, error) {
	var e fr.Element
	if len(b) != fr.Bytes {
		return e, fmt.Errorf("%w: %d bytes, want %d", ErrOutOfField, len(b), fr.Bytes)
	}
	var a [fr.Bytes]byte
	copy(a[:], b)
	e, err := fr.LittleEndian.Element(&a)
	if err != nil {
		return e, ErrOutOfField
	}
	return e, nil
}

// ElementLE returns the 32-byte little-endian encoding of e, identical to the
// bytes of go-merkletree-sql's Hash for the same number.
func ElementLE(e *fr.Element) [32]byte {
	var a [32]byte
	fr.LittleEndian.PutElement(&a, *e)
	return a
}

// FormatElement returns e as a decimal string.
func FormatElement(e *fr.Element) string { return e.Text(10) }

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
