//go:build !amd64 || purego

package poseidon

import "github.com/consensys/gnark-crypto/ecc/bn254/fr"

// useAsm is false: the assembly kernels exist for amd64 only.
const useAsm = false

func permute2(st *[2]fr.Element) { st[0] = permute(st[:], tables[2]) }

func permute3(st *[3]fr.Element) { st[0] = permute(st[:], tables[3]) }

func permute4(st *[4]fr.Element) { st[0] = permute(st[:], tables[4]) }

func permute17(st *[MaxInputs + 1]fr.Element, _ int) fr.Element {
	return permute(st[:], table(MaxInputs+1))
}
