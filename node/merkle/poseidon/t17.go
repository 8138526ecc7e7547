package poseidon

import "github.com/consensys/gnark-crypto/ecc/bn254/fr"

// Constants laid out for the t=17 assembly kernel (kernel17 in gen_asm.go).

// partialBlock is how many partial rounds the t=17 assembly kernel runs as
// one block (see kernel17 in gen_asm.go, which must agree).
const partialBlock = 4

// buildSchedule17 lays out the t=17 constants for permute17asm: as
// buildSchedule, except that the partial rounds come in blocks of
// b = partialBlock rounds r0..r0+b-1, each laid out as
//
//	b × (c, w[17], B[b-1])    round d: c, then the weights of the new
//	                          state[0]: w_0 (for x_d), w_1..w_16 (for the
//	                          state at the block's start) and B_{d,j} for
//	                          x_j, j < b-1 (zero for j ≥ d)
//	16 × v[b]                 row k-1 holds v_{k,r0..r0+b-1}
//
// where B_{d,j} = Σ_{k≥1} w_{k,r0+d}·v_{k,r0+j}: state[k] at round d of the
// block is its value at the start plus Σ_{j<d} v_{k,j}·x_j.
func buildSchedule17(p *params) []fr.Element {
	t, b := p.t, partialBlock
	if p.nP%b != 0 {
		panic("poseidon: partial rounds are not a whole number of blocks")
	}
	full := buildSchedule(p)
	head := t + halfFull*(t+t*t)
	tail := full[head+2*t*p.nP:]
	s := append([]fr.Element(nil), full[:head]...)

	pc := p.c[(halfFull+1)*t:]
	w := func(r, k int) *fr.Element { return &p.s[(2*t-1)*r+k] }     // k = 0..t-1
	v := func(r, k int) *fr.Element { return &p.s[(2*t-1)*r+t+k-1] } // k = 1..t-1
	var m fr.Element
	for r0 := 0; r0 < p.nP; r0 += b {
		for d := 0; d < b; d++ {
			r := r0 + d
			s = append(s, pc[r])
			for k := 0; k < t; k++ {
				s = append(s, *w(r, k))
			}
			for j := 0; j < b-1; j++ {
				var bj fr.Element
				if j < d {
					for k := 1; k < t; k++ {
						m.Mul(w(r, k), v(r0+j, k))
						bj.Add(&bj, &m)
					}
				}
				s = append(s, bj)
			}
		}
		for k := 1; k < t; k++ {
			for d := 0; d < b; d++ {
				s = append(s, *v(r0+d, k))
			}
		}
	}
	return append(s, tail...)
}

// sparseMax is the most leading non-zero inputs for which permute17 runs the
// first full round sparsely (see kernel17 in gen_asm.go, which must agree).
const sparseMax = 8

// buildSparse17 returns, for n = 1..sparseMax, the constants of the first
// full round of a state [0, y_1..y_n, 0, …, 0]: the other elements enter it
// as constants K_j = c_j⁵ + c'_j (c the initial and c' the first round's
// constants), so row i of its matrix product is Σ_{j=1..n} M_ij·y'_j + Q_i
// with Q_i = Σ_{j∉1..n} M_ij·K_j. sparse[n] holds 17 rows (M_i1..M_in, Q_i).
func buildSparse17(p *params) (sparse [sparseMax + 1][]fr.Element) {
	t := p.t
	var k [MaxInputs + 1]fr.Element
	for j := range k {
		k[j] = p.c[j]
		pow5(&k[j])
		k[j].Add(&k[j], &p.c[t+j])
	}
	var m fr.Element
	for n := 1; n <= sparseMax; n++ {
		sp := make([]fr.Element, 0, t*(n+1))
		for i := 0; i < t; i++ {
			row := p.mT[i*t : (i+1)*t]
			sp = append(sp, row[1:n+1]...)
			var q fr.Element
			for j := 0; j < t; j++ {
				if j >= 1 && j <= n {
					continue
				}
				m.Mul(&row[j], &k[j])
				q.Add(&q, &m)
			}
			sp = append(sp, q)
		}
		sparse[n] = sp
	}
	return sparse
}
