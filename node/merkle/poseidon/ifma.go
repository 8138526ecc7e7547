package poseidon

import (
	"math/bits"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// The 8-lane kernels' element form (permute_ifma_amd64.s, gen_ifma.go):
// five 52-bit limbs, Montgomery with R = 2^260. A gnark element e holds
// E = x·2^256 mod q, so x·2^260 mod q is 16·E mod q.

const (
	lanes = 8
	// minLanes is the fewest hashes worth one 8-lane kernel call; fewer
	// run one at a time. On an Intel Xeon with IFMA (2026-12-03), µs per
	// call, one at a time / one kernel call: Hash2 of 2 inputs 27.6 / 20.2,
	// of 1 input 15.0 / 20.8; Hash3 of 2: 29.0 / 24.6; HashBytes of 2
	// 32-byte inputs: 110 / 105.
	minLanes = 2
	mask52   = 1<<52 - 1
)

// HashMany2 sets out[i] = Hash2(&a[i], &b[i]) for every i, eight at a time
// where the CPU has AVX-512 IFMA. The slices must have the same length.
func HashMany2(out, a, b []fr.Element) {
	if len(a) != len(out) || len(b) != len(out) {
		panic("poseidon: HashMany2 slices of different lengths")
	}
	hashMany2(out, a, b)
}

// HashMany3 sets out[i] = Hash3(&a[i], &b[i], &c[i]) for every i, eight at
// a time where the CPU has AVX-512 IFMA. The slices must have the same
// length.
func HashMany3(out, a, b, c []fr.Element) {
	if len(a) != len(out) || len(b) != len(out) || len(c) != len(out) {
		panic("poseidon: HashMany3 slices of different lengths")
	}
	hashMany3(out, a, b, c)
}

// HashBytesMany sets out[i] to HashBytes(in[i]) for every i. Inputs of one
// permutation (at most 16 chunks of 31 bytes: 496 bytes) are hashed eight at
// a time where the CPU has AVX-512 IFMA; empty inputs give zero, as in
// HashBytes, and longer inputs run one at a time. The slices must have the
// same length.
func HashBytesMany(out []fr.Element, in [][]byte) {
	if len(in) != len(out) {
		panic("poseidon: HashBytesMany slices of different lengths")
	}
	hashBytesMany(out, in)
}

func hashBytesManyScalar(out []fr.Element, in [][]byte) {
	for i, b := range in {
		out[i], _ = HashBytes(b) // the error is always nil
	}
}

// maxFrameBytes is the longest input HashBytes hashes with one permutation.
const maxFrameBytes = spongeFrame * spongeChunk

// setLaneBytes stores in lane i of the t=17 state st (17 elements of
// 5·lanes limbs) the frame HashBytes hashes for b (at most maxFrameBytes
// bytes): the capacity 0, b's chunk elements, then zeros.
func setLaneBytes(st []uint64, i int, b []byte) {
	zeroLane(st, i)
	for e := 1; e <= spongeFrame; e++ {
		el := st[e*5*lanes:]
		if len(b) == 0 {
			zeroLane(el, i)
			continue
		}
		n := min(len(b), spongeChunk)
		c := chunkElement(b[:n])
		setLane(el, i, &c)
		b = b[n:]
	}
}

func hashMany2Scalar(out, a, b []fr.Element) {
	for i := range out {
		out[i] = Hash2(&a[i], &b[i])
	}
}

func hashMany3Scalar(out, a, b, c []fr.Element) {
	for i := range out {
		out[i] = Hash3(&a[i], &b[i], &c[i])
	}
}

// limbs52 returns e's value in the 8-lane kernels' form.
func limbs52(e *fr.Element) [5]uint64 {
	d := *e
	for range 4 {
		d.Double(&d) // 16·E mod q
	}
	return [5]uint64{
		d[0] & mask52,
		(d[0]>>52 | d[1]<<12) & mask52,
		(d[1]>>40 | d[2]<<24) & mask52,
		(d[2]>>28 | d[3]<<36) & mask52,
		d[3] >> 16,
	}
}

// inv16 is 1/16 mod q.
var inv16 = func() (e fr.Element) {
	e.SetUint64(16)
	e.Inverse(&e)
	return e
}()

// fromLimbs52 converts a kernel output (normalized limbs, value below 2q)
// back to a gnark element.
func fromLimbs52(l *[5]uint64) fr.Element {
	d := fr.Element{
		l[0] | l[1]<<52,
		l[1]>>12 | l[2]<<40,
		l[2]>>24 | l[3]<<28,
		l[3]>>36 | l[4]<<16,
	}
	// below 2q: subtract q once if needed
	var r [4]uint64
	var b uint64
	r[0], b = bits.Sub64(d[0], qWords[0], 0)
	r[1], b = bits.Sub64(d[1], qWords[1], b)
	r[2], b = bits.Sub64(d[2], qWords[2], b)
	r[3], b = bits.Sub64(d[3], qWords[3], b)
	if b == 0 {
		d = fr.Element(r)
	}
	// d is V = x·2^260 mod q as raw limbs, which gnark reads as x·16; divide.
	d.Mul(&d, &inv16)
	return d
}

// qWords is the modulus, little-endian 64-bit words.
var qWords = [4]uint64{0x43e1f593f0000001, 0x2833e84879b97091, 0xb85045b68181585d, 0x30644e72e131a029}

// setLane stores e in lane i of the element at st[0:5·lanes].
func setLane(st []uint64, i int, e *fr.Element) {
	l := limbs52(e)
	for j := range l {
		st[j*lanes+i] = l[j]
	}
}

func zeroLane(st []uint64, i int) {
	for j := 0; j < 5; j++ {
		st[j*lanes+i] = 0
	}
}

func getLane(st []uint64, i int) fr.Element {
	var l [5]uint64
	for j := range l {
		l[j] = st[j*lanes+i]
	}
	return fromLimbs52(&l)
}

// buildSchedule8 lays out p's constants for the 8-lane kernels (kernel in
// gen_ifma.go, which must agree), in the order they consume them, partial
// rounds in blocks of b = partialBlocks8(t) (2 for t=3 and t=4, 4 for t=17):
//
//	c[0..t)                                   initial round constants
//	4 × (c[t], t×t matrix row-major)          first full rounds (M, M, M, P)
//	⌊nP/b⌋ × (b × (c_d, w_d[t], B_d[d]),      blocks of partial rounds
//	          b × v_d[t-1])                   r0..r0+b-1 (d = 0..b-1)
//	nP mod b = 1: (c, w[t], v[t-1])           the last partial round
//	3 × (c[t], M)                             last full rounds
//	(0[t], M)                                 final round (x⁵ and row 0)
//
// w_d, v_d are round r0+d's weights of the new state[0] and multipliers of
// x_d (its S-box output) added to state[1..t-1] (iden3's S), and
// B_{d,j} = Σ_{k≥1} w_{d,k}·v_{j,k}: a block adds Σ_d v_d·x_d to state[k]
// once, at its end, so round d's new state[0] is w_d·(the state at the
// block's start, x_d in place of state[0]) + Σ_{j<d} B_{d,j}·x_j. For b = 2
// that is (c, w[t], c', w'[t], B, v[t-1], v'[t-1]) per pair.
func buildSchedule8(p *params) []fr.Element {
	t, b := p.t, partialBlocks8(p.t)
	s := scheduleHead(p)
	pc := p.c[(halfFull+1)*t:]
	w := func(r int) []fr.Element { return p.s[(2*t-1)*r : (2*t-1)*r+t] }
	v := func(r int) []fr.Element { return p.s[(2*t-1)*r+t : (2*t-1)*(r+1)] }
	r0 := 0
	for ; r0+b <= p.nP; r0 += b {
		for d := 0; d < b; d++ {
			r := r0 + d
			s = append(s, pc[r])
			s = append(s, w(r)...)
			for j := 0; j < d; j++ {
				var bj, m fr.Element
				for k := 1; k < t; k++ {
					m.Mul(&w(r)[k], &v(r0 + j)[k-1])
					bj.Add(&bj, &m)
				}
				s = append(s, bj)
			}
		}
		for d := 0; d < b; d++ {
			s = append(s, v(r0+d)...)
		}
	}
	if r := r0; r+1 == p.nP {
		s = append(s, pc[r])
		s = append(s, w(r)...)
		s = append(s, v(r)...)
	} else if r != p.nP {
		panic("poseidon: partial rounds leave more than one past whole blocks")
	}
	return scheduleTail(s, p, pc[p.nP:])
}

// partialBlocks8 is how many partial rounds the 8-lane kernel of width t
// runs as one block (partialBlocks in gen_ifma.go, which must agree).
func partialBlocks8(t int) int {
	if t == MaxInputs+1 {
		return 4
	}
	return 2
}
