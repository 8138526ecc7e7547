package poseidon

import "github.com/consensys/gnark-crypto/ecc/bn254/fr"

// Constants laid out for the t=17 assembly kernel (kernel17 in gen_asm.go).

// partialBlock is how many partial rounds the t=17 assembly kernel runs as
// one block (see kernel17 in gen_asm.go, which must agree).
const partialBlock = 4

// buildSchedule17 lays out the t=17 constants for permute17asm, in the
// order it consumes them:
//
//	c[0..17)                                initial round constants
//	4 × (c[17], 17 × (m[17], −R))           first full rounds (M, M, M, P)
//	nP/b × (b × (c, w[17], B[b-1], −R),     blocks of b = partialBlock
//	        16 × (v[b], −R))                partial rounds
//	3 × (c[17], 17 × (m[17], −R))           last full rounds
//	(0[17], 17 × (m[17], −R))               final round (x⁵ and row 0)
//
// m is a row of a full round's matrix: the weights of the state elements in
// one new element. Partial rounds come in blocks of rounds r0..r0+b-1; round
// d holds c, then the weights of the new state[0]: w_0 (for x_d, the round's
// S-box output), w_1..w_16 (for the state at the block's start) and B_{d,j}
// for x_j, j < b-1 (zero for j ≥ d), where B_{d,j} = Σ_{k≥1} w_{k,r0+d}·v_{k,r0+j}
// (state[k] at round d of the block is its value at the start plus
// Σ_{j<d} v_{k,j}·x_j). Update row k-1 holds v_{k,r0..r0+b-1}, the weights of
// x_0..x_{b-1} added to state[k] at the block's end.
//
// Each row is followed by −R, minus its Winograd correction
// R = Σ_p u_2p·u_2p+1 over the row's elements u that multiply a vector paired
// up that way: all 17 (the last one unpaired) for m, w_1..w_16 for a partial
// round, v for an update row (see kernel17 in gen_asm.go).
func buildSchedule17(p *params) []fr.Element {
	t, b := p.t, partialBlock
	if p.nP%b != 0 || b%2 != 0 {
		panic("poseidon: partial rounds are not a whole number of blocks")
	}
	var s []fr.Element
	withNegR := func(u []fr.Element) {
		s = append(s, u...)
		s = append(s, negR(u))
	}
	matrix := func(mT []fr.Element) {
		for i := 0; i < t; i++ {
			withNegR(mT[i*t : (i+1)*t])
		}
	}

	s = append(s, p.c[:t]...)
	for r := 0; r < halfFull; r++ {
		s = append(s, p.c[(r+1)*t:(r+2)*t]...)
		if r == halfFull-1 {
			matrix(p.pT)
		} else {
			matrix(p.mT)
		}
	}

	pc := p.c[(halfFull+1)*t:]
	w := func(r, k int) *fr.Element { return &p.s[(2*t-1)*r+k] }     // k = 0..t-1
	v := func(r, k int) *fr.Element { return &p.s[(2*t-1)*r+t+k-1] } // k = 1..t-1
	var m fr.Element
	for r0 := 0; r0 < p.nP; r0 += b {
		for d := 0; d < b; d++ {
			r := r0 + d
			s = append(s, pc[r], *w(r, 0))
			ws := make([]fr.Element, t-1)
			for k := 1; k < t; k++ {
				ws[k-1] = *w(r, k)
			}
			s = append(s, ws...)
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
			s = append(s, negR(ws))
		}
		for k := 1; k < t; k++ {
			vs := make([]fr.Element, b)
			for d := 0; d < b; d++ {
				vs[d] = *v(r0+d, k)
			}
			withNegR(vs)
		}
	}

	fc := pc[p.nP:]
	for r := 0; r < halfFull-1; r++ {
		s = append(s, fc[r*t:(r+1)*t]...)
		matrix(p.mT)
	}
	s = append(s, make([]fr.Element, t)...)
	matrix(p.mT)
	return s
}

// negR returns −Σ_p u_2p·u_2p+1.
func negR(u []fr.Element) fr.Element {
	var r, m fr.Element
	for i := 0; i+1 < len(u); i += 2 {
		m.Mul(&u[i], &u[i+1])
		r.Add(&r, &m)
	}
	return *r.Neg(&r)
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
