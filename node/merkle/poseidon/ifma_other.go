//go:build !amd64 || purego

package poseidon

import "github.com/consensys/gnark-crypto/ecc/bn254/fr"

// useIFMA is false: the 8-lane kernels exist for amd64 only.
var useIFMA = false

func hashMany2(out, a, b []fr.Element) { hashMany2Scalar(out, a, b) }

func hashMany3(out, a, b, c []fr.Element) { hashMany3Scalar(out, a, b, c) }

func hashBytesMany(out []fr.Element, in [][]byte) { hashBytesManyScalar(out, in) }
