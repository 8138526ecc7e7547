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
		permute2asm(st, &schedules[2][0])
		return
	}
	st[0] = permute(st[:], tables[2])
}

// permute3 runs the t=3 permutation in place; only st[0] is meaningful after.
func permute3(st *[3]fr.Element) {
	if useAsm {
		permute3asm(st, &schedules[3][0])
		return
	}
	st[0] = permute(st[:], tables[3])
}

// permute4 runs the t=4 permutation in place; only st[0] is meaningful after.
func permute4(st *[4]fr.Element) {
	if useAsm {
		permute4asm(st, &schedules[4][0])
		return
	}
	st[0] = permute(st[:], tables[4])
}

//go:noescape
func permute2asm(st *[2]fr.Element, sched *fr.Element)

//go:noescape
func permute3asm(st *[3]fr.Element, sched *fr.Element)

//go:noescape
func permute4asm(st *[4]fr.Element, sched *fr.Element)
