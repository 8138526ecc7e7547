package merkle

import (
	"fmt"
	"math/big"

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

// ParseElement parses a non-negative decimal integer (digits only, no sign,
// no spaces) that must be below the BN254 scalar field modulus.
func ParseElement(s string) (fr.Element, error) {
	var e fr.Element
	if len(s) == 0 {
		return e, fmt.Errorf("%w: empty", ErrBadNumber)
	}
	if len(s) > maxDecimalDigits {
		return e, fmt.Errorf("%w: %d digits (max %d)", ErrOutOfField, len(s), maxDecimalDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return e, fmt.Errorf("%w: %q: byte %d is not a decimal digit", ErrBadNumber, truncate(s), i)
		}
	}
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return e, fmt.Errorf("%w: %q", ErrBadNumber, truncate(s))
	}
	return ElementFromBigInt(b)
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
