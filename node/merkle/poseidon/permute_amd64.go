//go:build amd64 && !purego

package poseidon

import (
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"golang.org/x/sys/cpu"
)

//go:generate go run gen_asm.go

// useAsm selects the assembly kernels (permute_amd64.s), which need MULX
// (BMI2) and ADCX/ADOX (ADX).
var useAsm = cpu.X86.HasADX && cpu.X86.HasBMI2

// permute2 runs the t=2 permutation in place; only st[0] is meaningful after.
func permute2(st *[2]fr.Element) {
	if useAsm {
		permute2asm(st, &tables[2].sched[0])
		return
	}
	st[0] = permute(st[:], tables[2])
}

// permute3 runs the t=3 permutation in place; only st[0] is meaningful after.
func permute3(st *[3]fr.Element) {
	if useAsm {
		permute3asm(st, &tables[3].sched[0])
		return
	}
	st[0] = permute(st[:], tables[3])
}

// permute4 runs the t=4 permutation in place; only st[0] is meaningful after.
func permute4(st *[4]fr.Element) {
	if useAsm {
		permute4asm(st, &tables[4].sched[0])
		return
	}
	st[0] = permute(st[:], tables[4])
}

// permute17 runs the t=17 permutation on st and returns the new st[0]; st is
// left in an unspecified state. If 1 ≤ n ≤ sparseMax, st[0] and st[n+1:]
// must be zero (the first round is then cheaper); n = 0 assumes nothing.
func permute17(st *[MaxInputs + 1]fr.Element, n int) fr.Element {
	p := table(MaxInputs + 1)
	if useAsm {
		var sp *fr.Element
		if n < 1 || n > sparseMax {
			n = 0
		} else {
			sp = &p.sparse[n][0]
		}
		permute17asm(st, &p.sched[0], sp, n)
		return st[0]
	}
	return permute(st[:], p)
}

//go:noescape
func permute2asm(st *[2]fr.Element, sched *fr.Element)

//go:noescape
func permute3asm(st *[3]fr.Element, sched *fr.Element)

//go:noescape
func permute4asm(st *[4]fr.Element, sched *fr.Element)

//go:noescape
func permute17asm(st *[MaxInputs + 1]fr.Element, sched, sparse *fr.Element, n int)
