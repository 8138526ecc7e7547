// Package poseidon is an allocation-free implementation of the iden3/circomlib
// Poseidon hash over the BN254 scalar field, bit-identical to
// github.com/iden3/go-iden3-crypto/poseidon's Hash (1 to 16 inputs) and
// HashBytes, so the sparse Merkle tree can hash middle nodes (Hash2), leaves
// (Hash3) and map byte keys and values to field elements (HashBytes) without
// big.Int. It works on gnark-crypto field elements in Montgomery form end to
// end with iden3's own constants, including its sparse partial-round matrices.
//
// On amd64 with BMI2 and ADX, the widths the tree uses — 1 to 3 inputs and
// the 16 behind HashBytes — each run as one generated assembly kernel
// (permute_amd64.s, see gen_asm.go) that fuses dot products into a single
// Montgomery reduction; the 16-input kernel also halves its matrix
// multiplications with Winograd's inner-product identity and updates the
// state once per block of partial rounds (see kernel17). Elsewhere, and for 4
// to 15 inputs, a portable Go version on gnark-crypto's field arithmetic runs
// (about as fast as go-iden3-crypto). HashMany2, HashMany3 and
// HashBytesMany hash many independent inputs; with AVX-512 IFMA they run
// eight at a time, one per 64-bit lane (permute_ifma_amd64.s, see
// gen_ifma.go), at about a third of the single kernels' CPU time per hash
// (HashBytesMany: a fifth, for inputs of one permutation, up to 496 bytes).
// Inputs must be canonical field elements (below the modulus), which is what
// every gnark-crypto constructor produces.
package poseidon

//go:generate go run gen_constants.go

import (
	"errors"
	"fmt"
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// Errors returned by Hash.
var (
	// ErrInputCount is returned (wrapped) when the number of inputs is not
	// between 1 and MaxInputs.
	ErrInputCount = errors.New("poseidon: unsupported number of inputs")
)

// MaxInputs is the largest number of inputs Hash accepts (state width 17),
// as in go-iden3-crypto.
const MaxInputs = 16

// asmWidths is the largest state width whose constants are built at package
// init; wider ones are built on first use (see table).
const asmWidths = 4

const (
	fullRounds = 8 // iden3 NROUNDSF
	halfFull   = fullRounds / 2
)

// partialRounds[t-2] is iden3's NROUNDSP for state width t.
var partialRounds = [MaxInputs]int{56, 57, 56, 60, 60, 63, 64, 63, 60, 66, 60, 65, 70, 60, 64, 68}

// hexTable is one width's constants as they appear in go-iden3-crypto.
type hexTable struct {
	C, S []string
	M, P [][]string
}

// params holds one width's constants in Montgomery form.
//
//   - c: round constants, len 8t+nP (iden3's optimized layout);
//   - s: sparse partial-round matrices, 2t-1 per partial round: t weights for
//     the new state[0], then t-1 multipliers of state[0] for state[1..t-1];
//   - mT, pT: the full-round MDS matrix M and the pre-partial matrix P,
//     transposed (row i gives the weights of the new state[i]), flattened.
//   - sched: all of the above in the order the assembly kernels read them
//     (see buildSchedule, buildSchedule17);
//   - sparse (t=17 only): sparse[n] are the constants of the first full
//     round for a state whose only non-zero elements are 1..n (see
//     buildSparse17).
type params struct {
	t, nP  int
	c, s   []fr.Element
	mT, pT []fr.Element
	sched  []fr.Element
	sparse [sparseMax + 1][]fr.Element
}

// tables[t] are the constants for state width t (2 ≤ t ≤ asmWidths), built
// at init from the generated hex constants and never written again. Wider
// tables are parsed on first use (about 25k constants for all widths, too
// many to parse in every process that imports the package; t=17 alone takes
// a few milliseconds, paid by the first HashBytes).
var tables = buildTables()

func buildTables() (tab [asmWidths + 1]*params) {
	for t := 2; t <= asmWidths; t++ {
		tab[t] = parseParams(t)
	}
	return tab
}

// lazyTables[t] holds the constants for widths asmWidths < t ≤ MaxInputs+1.
var lazyTables [MaxInputs + 2]struct {
	once sync.Once
	p    *params
}

// table returns the constants for state width t (2 ≤ t ≤ MaxInputs+1).
func table(t int) *params {
	if t <= asmWidths {
		return tables[t]
	}
	l := &lazyTables[t]
	l.once.Do(func() { l.p = parseParams(t) })
	return l.p
}

func parseParams(t int) *params {
	h := hexConstants[t]
	p := &params{
		t:  t,
		nP: partialRounds[t-2],
		c:  parseVec(h.C),
		s:  parseVec(h.S),
		mT: parseMatT(h.M, t),
		pT: parseMatT(h.P, t),
	}
	if len(p.c) != fullRounds*t+p.nP || len(p.s) != (2*t-1)*p.nP {
		panic(fmt.Sprintf("poseidon: generated constants for t=%d have wrong shape", t))
	}
	if t == MaxInputs+1 {
		p.sched = buildSchedule17(p)
		p.sparse = buildSparse17(p)
	} else {
		p.sched = buildSchedule(p)
	}
	return p
}

func parseVec(hex []string) []fr.Element {
	v := make([]fr.Element, len(hex))
	for i, h := range hex {
		if _, err := v[i].SetString("0x" + h); err != nil {
			panic(fmt.Sprintf("poseidon: generated constant %q: %v", h, err))
		}
	}
	return v
}

func parseMatT(hex [][]string, t int) []fr.Element {
	if len(hex) != t {
		panic(fmt.Sprintf("poseidon: generated matrix for t=%d has %d rows", t, len(hex)))
	}
	m := make([]fr.Element, t*t)
	for j, row := range hex {
		if len(row) != t {
			panic(fmt.Sprintf("poseidon: generated matrix for t=%d has a row of %d", t, len(row)))
		}
		for i, v := range parseVec(row) {
			m[i*t+j] = v // transpose: iden3's mix uses M[j][i] for output i
		}
	}
	return m
}

// Hash returns Poseidon(inputs...), identical to go-iden3-crypto's
// poseidon.Hash for 1 to MaxInputs inputs; other counts return an error
// wrapping ErrInputCount. It does not allocate, except for that error.
func Hash(inputs []fr.Element) (fr.Element, error) {
	switch n := len(inputs); {
	case n == 2:
		return Hash2(&inputs[0], &inputs[1]), nil
	case n == 3:
		return Hash3(&inputs[0], &inputs[1], &inputs[2]), nil
	case n == 1:
		st := [2]fr.Element{{}, inputs[0]}
		permute2(&st)
		return st[0], nil
	case n == MaxInputs:
		var st [MaxInputs + 1]fr.Element
		copy(st[1:], inputs)
		for n > 0 && inputs[n-1].IsZero() {
			n-- // trailing zero inputs make the first round cheaper
		}
		return permute17(&st, n), nil
	case n > 3 && n < MaxInputs:
		var st [MaxInputs + 1]fr.Element
		copy(st[1:], inputs)
		return permute(st[:n+1], table(n+1)), nil
	}
	return fr.Element{}, fmt.Errorf("%w: %d, want 1 to %d", ErrInputCount, len(inputs), MaxInputs)
}

// permute runs the Poseidon permutation on state (width p.t, state[0] the
// capacity element) and returns the new state[0]. It is the portable,
// width-generic form on gnark-crypto's arithmetic: the fallback for the
// assembly kernels, and their reference in tests.
func permute(state []fr.Element, p *params) fr.Element {
	t := p.t
	st := state[:t]
	var tmp [MaxInputs + 1]fr.Element
	var m fr.Element

	ark(st, p.c[0:t])
	for r := 0; r < halfFull-1; r++ {
		sbox(st)
		ark(st, p.c[(r+1)*t:(r+2)*t])
		mix(st, tmp[:t], p.mT)
	}
	sbox(st)
	ark(st, p.c[halfFull*t:(halfFull+1)*t])
	mix(st, tmp[:t], p.pT)

	pc := p.c[(halfFull+1)*t:]
	for r := 0; r < p.nP; r++ {
		pow5(&st[0])
		st[0].Add(&st[0], &pc[r])
		w := p.s[(2*t-1)*r : (2*t-1)*(r+1)]
		var n0 fr.Element
		for j := 0; j < t; j++ {
			m.Mul(&w[j], &st[j])
			n0.Add(&n0, &m)
		}
		for k := 1; k < t; k++ {
			m.Mul(&st[0], &w[t+k-1])
			st[k].Add(&st[k], &m)
		}
		st[0] = n0
	}

	fc := p.c[(halfFull+1)*t+p.nP:]
	for r := 0; r < halfFull-1; r++ {
		sbox(st)
		ark(st, fc[r*t:(r+1)*t])
		mix(st, tmp[:t], p.mT)
	}
	sbox(st)
	// Final mix: only the new state[0] is output.
	var out fr.Element
	for j := 0; j < t; j++ {
		m.Mul(&p.mT[j], &st[j])
		out.Add(&out, &m)
	}
	return out
}

func ark(st, c []fr.Element) {
	for i := range st {
		st[i].Add(&st[i], &c[i])
	}
}

func sbox(st []fr.Element) {
	for i := range st {
		pow5(&st[i])
	}
}

// pow5 sets x = x⁵ as square, square, multiply.
func pow5(x *fr.Element) {
	var x2 fr.Element
	x2.Square(x)
	x2.Square(&x2)
	x.Mul(x, &x2)
}

// mix sets st = mT·st using tmp (len t) as scratch.
func mix(st, tmp, mT []fr.Element) {
	t := len(st)
	var m fr.Element
	for i := 0; i < t; i++ {
		row := mT[i*t : (i+1)*t]
		tmp[i].SetZero()
		for j := 0; j < t; j++ {
			m.Mul(&row[j], &st[j])
			tmp[i].Add(&tmp[i], &m)
		}
	}
	copy(st, tmp)
}

// Hash2 returns Poseidon(a, b) (t=3), identical to poseidon.Hash([]*big.Int{a, b}).
func Hash2(a, b *fr.Element) fr.Element {
	st := [3]fr.Element{{}, *a, *b}
	permute3(&st)
	return st[0]
}

// Hash3 returns Poseidon(a, b, c) (t=4), identical to poseidon.Hash([]*big.Int{a, b, c}).
func Hash3(a, b, c *fr.Element) fr.Element {
	st := [4]fr.Element{{}, *a, *b, *c}
	permute4(&st)
	return st[0]
}

// scheduleHead is the start both schedules share: the initial round
// constants, then each first-half full round's next constants and matrix
// (the last one's the pre-sparse matrix pT).
func scheduleHead(p *params) []fr.Element {
	t := p.t
	s := append([]fr.Element(nil), p.c[:t]...)
	for r := 0; r < halfFull; r++ {
		s = append(s, p.c[(r+1)*t:(r+2)*t]...)
		if r == halfFull-1 {
			s = append(s, p.pT...)
		} else {
			s = append(s, p.mT...)
		}
	}
	return s
}

// buildSchedule lays out p's constants in the order the permutation consumes
// them, for the assembly kernels (which walk it with one pointer):
//
//	c[0..t)                                   initial round constants
//	4 × (c[t], t×t matrix row-major)          first full rounds (M, M, M, P)
//	nP × (c, w[t], v[t-1])                    partial rounds
//	3 × (c[t], M)                             last full rounds
//	(0[t], M)                                 final round (x⁵ and M only)
//
// Row i of a matrix holds the weights of the state elements in the new
// state[i]; w are the weights of the new state[0] and v the multipliers of
// state[0] added to state[1..t-1] (iden3's S).
func buildSchedule(p *params) []fr.Element {
	t := p.t
	s := scheduleHead(p)
	pc := p.c[(halfFull+1)*t:]
	for r := 0; r < p.nP; r++ {
		s = append(s, pc[r])
		s = append(s, p.s[(2*t-1)*r:(2*t-1)*(r+1)]...)
	}
	return scheduleTail(s, p, pc[p.nP:])
}

// scheduleTail appends the end both schedules share to s: each second-half
// full round's constants fc (but the last's, which has none) and matrix.
func scheduleTail(s []fr.Element, p *params, fc []fr.Element) []fr.Element {
	t := p.t
	for r := 0; r < halfFull-1; r++ {
		s = append(s, fc[r*t:(r+1)*t]...)
		s = append(s, p.mT...)
	}
	s = append(s, make([]fr.Element, t)...)
	return append(s, p.mT...)
}
