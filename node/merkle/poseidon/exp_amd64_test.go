package poseidon

import "github.com/consensys/gnark-crypto/ecc/bn254/fr"

//go:noescape
func p17nopartial(st *[MaxInputs + 1]fr.Element, sched, sp *fr.Element, n int)

//go:noescape
func p17nofull(st *[MaxInputs + 1]fr.Element, sched, sp *fr.Element, n int)

func init() {
	var st [17]fr.Element
	p := table(17)
	extraTiming["nopartial"] = func() { p17nopartial(&st, &p.sched[0], nil, 0) }
	extraTiming["nofull"] = func() { p17nofull(&st, &p.sched[0], nil, 0) }
}
