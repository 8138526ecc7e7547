//go:build ignore

// gen_ifma writes permute_ifma_amd64.s: 8-lane AVX-512 IFMA kernels of the
// t=3, t=4 and t=17 permutations (Hash2, Hash3 and HashBytes' 16-input
// frame), each running eight independent states at once, one per 64-bit lane
// of a ZMM register.
//
// Representation. A field element is five 52-bit limbs (radix 2^52), each
// limb of the eight lanes in one ZMM register (64 bytes in memory, limb l of
// an element at offset 64·l), in Montgomery form with R = 2^260: x is held as
// x·2^260 mod q, not necessarily below q. Schedule constants (buildSchedule8's
// order, converted by the Go side) are five limbs of 8 bytes each (limb l at
// offset 8·l), broadcast to the lanes by the instructions that read them.
//
// Products. VPMADD52LUQ/HUQ add the low/high 52 bits of the 104-bit product
// of two 52-bit lanes to a 64-bit accumulator. A Montgomery dot product
// Σ_k a_k·b_k/2^260 mod q of n terms is one word-by-word (radix 2^52) CIOS:
// for each limb i of the b operands, add every a_k·b_k[i] into the window
// T0..T5, then m = T0·(−q⁻¹) mod 2^52, add m·q, and shift one limb
// (T1 += T0>>52). The first four terms' a operands are held in registers,
// later ones read from memory (their b limb then in a register). The t=17
// kernel splits a dot of several terms over two such windows, even terms'
// products in one and odd terms' in the other, added together at position 0
// for m and at the end (productWide): twice the independent chains of
// additions for the IFMA units, which run two at a time with a latency of
// four cycles.
//
// Accumulators. A register enters the window as T5 (zeroed) and leaves it as
// T0 at most five limb steps later. In each step it receives at most 2n+2
// values below 2^52 (the low halves of a_k[j]·b_k[i] and the high halves of
// a_k[j−1]·b_k[i] for every term, and the two halves of m·q at its position),
// and once the carry T0>>52, below 2^12. So it stays below
// (5·(2n+2)+1)·2^52 = (10n+11)·2^52, which is below 2^60 for n ≤ 21
// (maxDotTerms: 221 < 2^8); an added constant (limbs below 2^52) and the
// carries of normalizing keep it below 2^61. No 64-bit lane overflows.
// (Split over two windows, each register takes fewer of these values, and
// the two added together are the single window's.)
//
// Results. V = (Σ a_k·b_k + M·q)/2^260 with M < 2^260 (m's limbs), so
// V < Σ a_k·b_k/2^260 + q. In every dot of several terms one operand of each
// term is a constant (below q: canonical, or one52 = 2^260 mod q) and the
// other a value below 3q (see below), so each a_k·b_k < 3q² and
// V < q + n·3q·q/2^260 < q·(1 + 3n/64), as q < 2^254 gives q/2^260 < 2^−6:
// below 2q for n ≤ 21 (3·21 = 63 < 64). The kernels' dots have at most 20
// terms (t=17's blocks of four partial rounds: 1 + 16 + 3; its full rounds
// 17; t=4's 5).
// The S-boxes' products of two values are single terms: a square of a value
// below 3q, or x·x⁴ with x below 3q and x⁴ below 2q, each below 9q², so
// V < q·(1 + 9/64) < 2q. Limbs are then normalized (carries propagated, each
// below 2^52), which the next product needs (IFMA reads 52 bits of each
// operand; the top limb of a value below 3q < 2^256 is below 2^48).
//
// Code size. The t=3 and t=4 kernels are unrolled. The t=17 kernel loops
// over the elements of its S-box layers and sparse updates and over the
// rows of its matrices (each): a 17-term dot is about a thousand
// instructions, and seventeen of them per round unrolled would be hundreds
// of kilobytes of code. Its time goes mostly to IFMA instructions: blocks of
// four partial rounds, the conditional subtraction and the sparse first
// round save some of them, and productWide keeps the units busier.
//
// Bounds kept by the kernel: the inputs are below q; after any product or
// dot an element is below 2q; adding a round constant (below q) leaves it
// below 3q < 2^256. An element added to by the partial rounds' sparse update
// (state[k] += Σ v_d·x_d at the end of a block) stays below 2q: t=3 and t=4
// recompute it as the dot Σ v_d·x_d + one·state[k] (one = 2^260 mod q);
// t=17 adds state[k] (below 2q) to the dot of its b = 4 terms (below
// q·(1 + 12/64)) and subtracts 2q where the sum (below 3.19q) is not below
// 2q (dotAdd), which leaves it below 2q either way. The t=17 kernel's sparse
// first round (a state zero past element n ≤ 8, as HashBytes' short inputs
// give) adds a constant to a dot of n terms: below 3q, as an S-box output
// plus its round constant, and what the next S-box takes. The Go side
// reduces the output (below 2q) once when it converts it back.
//
// Run with: go generate ./node/merkle/poseidon/
package main

import (
	"bytes"
	"fmt"
	"log"
	"math/big"
	"os"
)

// partialRounds must match poseidon.go.
var partialRounds = map[int]int{3: 57, 4: 56, 17: 68}

// partialBlocks[t] is how many partial rounds the kernel of width t runs as
// one block (partialBlocks8 in ifma.go, which must agree).
var partialBlocks = map[int]int{3: 2, 4: 2, 17: 4}

const (
	limbs    = 5
	limbSize = 64         // bytes of one limb of eight lanes
	vecSize  = limbs * 64 // bytes of one element of eight lanes
	cstSize  = limbs * 8  // bytes of one schedule constant
	mask     = "Z31"      // 2^52-1 in every lane
	mreg     = "Z6"       // m of the Montgomery step
	scratch  = "Z27"      // carries while normalizing
	firstA   = 7          // Z7.. hold the a operands' limbs (up to 4 elements)
	maxTerms = (27 - 7) / limbs
	// maxDotTerms bounds a dot's terms so that its result stays below 2q
	// (see the header comment).
	maxDotTerms = 21
)

// sparseMax is the most leading non-zero inputs for which the t=17 kernel
// runs the first full round sparsely (sparseMax in t17.go, which must
// agree).
const sparseMax = 8

// bregs hold the b limb of a dot's terms past maxTerms, in turn.
var bregs = []int{28, 29, 30}

var out bytes.Buffer

func emit(format string, args ...any) { fmt.Fprintf(&out, "\t"+format+"\n", args...) }
func label(l string)                  { fmt.Fprintf(&out, "%s:\n", l) }
func comment(c string)                { fmt.Fprintf(&out, "\n\t// %s\n", c) }

// vec is an element of eight lanes in memory: off(base), limb l at off+64l.
type vec struct {
	base string
	off  int
}

func (v vec) limb(l int) string { return fmt.Sprintf("%d(%s)", v.off+limbSize*l, v.base) }
func (v vec) at(i int) vec      { return vec{v.base, v.off + vecSize*i} }

// cst is a schedule constant: off(base), limb l at off+8l, broadcast.
type cst struct {
	base string
	off  int
}

func (c cst) limb(l int) string {
	if c.base[0] != 'R' { // a symbol
		return fmt.Sprintf("%s+%d(SB)", c.base, c.off+8*l)
	}
	return fmt.Sprintf("%d(%s)", c.off+8*l, c.base)
}
func (c cst) at(i int) cst { return cst{c.base, c.off + cstSize*i} }

// term is a·b: a an element of eight lanes, b either a constant (bc) or
// another element of eight lanes (bv).
type term struct {
	a  vec
	bc *cst
	bv *vec
}

// one52 is one in the kernels' Montgomery form (2^260 mod q).
var one52 = cst{"·one52", 0}

func z(i int) string { return fmt.Sprintf("Z%d", i) }

// dot sets dst = Σ terms (Montgomery, below 2q), plus addend (a constant)
// when non-nil, normalized. dst may alias any operand.
func dot(dst vec, terms []term, addend *cst) {
	acc := product(terms)
	if addend != nil {
		for j := 0; j < limbs; j++ {
			emit("VPADDQ.BCST %s, %s, %s", addend.limb(j), z(acc[j]), z(acc[j]))
		}
	}
	normalize(acc[:limbs])
	for j := 0; j < limbs; j++ {
		emit("VMOVDQU64 %s, %s", z(acc[j]), dst.limb(j))
	}
}

// dotAdd sets dst = Σ terms + src, src below 2q, keeping it below 2q: the
// dot (below q·(1 + 3n/64) for n terms) plus src, less 2q where that is
// not negative. For n ≤ 21 the sum is below 4q − q/64, so one subtraction
// is enough. dst may alias any operand.
func dotAdd(dst vec, terms []term, src vec) {
	acc := product(terms)
	for j := 0; j < limbs; j++ {
		emit("VPADDQ %s, %s, %s", src.limb(j), z(acc[j]), z(acc[j]))
	}
	normalize(acc[:limbs])
	d := func(j int) string { return z(firstA + j) } // free after the product
	for j := 0; j < limbs; j++ {
		emit("VPSUBQ.BCST ·twoq52+%d(SB), %s, %s", 8*j, z(acc[j]), d(j))
	}
	for j := 0; j < limbs-1; j++ { // signed carries
		emit("VPSRAQ $52, %s, %s", d(j), scratch)
		emit("VPANDQ %s, %s, %s", mask, d(j), d(j))
		emit("VPADDQ %s, %s, %s", scratch, d(j+1), d(j+1))
	}
	emit("VPMOVQ2M %s, K1", d(limbs-1)) // the lanes where the sum is below 2q
	for j := 0; j < limbs; j++ {
		emit("VPBLENDMQ %s, %s, K1, %s", z(acc[j]), d(j), z(acc[j]))
		emit("VMOVDQU64 %s, %s", z(acc[j]), dst.limb(j))
	}
}

// wide says whether product splits a dot of several terms over two windows
// of accumulators (the t=17 kernel): see productWide.
var wide bool

// product emits the Montgomery dot of terms into six accumulators and
// returns them, the result's limbs first (not normalized).
func product(terms []term) []int {
	if wide && len(terms) > 1 {
		return productWide(terms)
	}
	// The first maxTerms terms' a operands are loaded into registers; later
	// ones are read from memory, their b limb broadcast or loaded into one
	// of bregs in turn (the 5-term dots of the t=4 partial-round pairs; any
	// number of terms up to maxDotTerms).
	if len(terms) < 1 || len(terms) > maxDotTerms {
		log.Fatalf("dot of %d terms", len(terms))
	}
	for k, t := range terms[:min(len(terms), maxTerms)] {
		for j := 0; j < limbs; j++ {
			emit("VMOVDQU64 %s, %s", t.a.limb(j), z(firstA+limbs*k+j))
		}
	}
	acc := []int{0, 1, 2, 3, 4, 5}
	for _, r := range acc {
		emit("VPXORQ %s, %s, %s", z(r), z(r), z(r))
	}
	for i := 0; i < limbs; i++ {
		for k, t := range terms {
			if k >= maxTerms {
				breg := z(bregs[(k-maxTerms)%len(bregs)])
				if t.bc != nil {
					emit("VPBROADCASTQ %s, %s", t.bc.limb(i), breg)
				} else {
					emit("VMOVDQU64 %s, %s", t.bv.limb(i), breg)
				}
				for j := 0; j < limbs; j++ {
					emit("VPMADD52LUQ %s, %s, %s", t.a.limb(j), breg, z(acc[j]))
					emit("VPMADD52HUQ %s, %s, %s", t.a.limb(j), breg, z(acc[j+1]))
				}
				continue
			}
			var b, sfx string
			if t.bc != nil {
				b, sfx = t.bc.limb(i), ".BCST"
			} else {
				b = t.bv.limb(i)
			}
			for j := 0; j < limbs; j++ {
				a := z(firstA + limbs*k + j)
				emit("VPMADD52LUQ%s %s, %s, %s", sfx, b, a, z(acc[j]))
				emit("VPMADD52HUQ%s %s, %s, %s", sfx, b, a, z(acc[j+1]))
			}
		}
		emit("VPXORQ %s, %s, %s", mreg, mreg, mreg)
		emit("VPMADD52LUQ.BCST ·k52(SB), %s, %s", z(acc[0]), mreg)
		for j := 0; j < limbs; j++ {
			emit("VPMADD52LUQ.BCST ·q52+%d(SB), %s, %s", 8*j, mreg, z(acc[j]))
			emit("VPMADD52HUQ.BCST ·q52+%d(SB), %s, %s", 8*j, mreg, z(acc[j+1]))
		}
		emit("VPSRLQ $52, %s, %s", z(acc[0]), z(acc[0]))
		emit("VPADDQ %s, %s, %s", z(acc[0]), z(acc[1]), z(acc[1]))
		acc = append(acc[1:], acc[0])
		if i < limbs-1 {
			emit("VPXORQ %s, %s, %s", z(acc[5]), z(acc[5]), z(acc[5]))
		}
	}
	return acc
}

// productWide is product with the even terms' products in one window of
// accumulators (Z0..Z5) and the odd terms' in another (Z12..Z17), added
// together where the Montgomery step needs them (position 0) and at the
// end. An IFMA instruction has a latency of four cycles and two run at
// once, so six accumulators, each taking two products of every term per
// limb one after the other, leave the IFMA units idle half the time in a
// long dot; twelve keep them busy. The operands are loaded per limb step
// (a's limbs into Z7..Z11 or Z18..Z22, b's limb into Z23 or Z24).
func productWide(terms []term) []int {
	if len(terms) > maxDotTerms {
		log.Fatalf("dot of %d terms", len(terms))
	}
	accE := []int{0, 1, 2, 3, 4, 5}
	accO := []int{12, 13, 14, 15, 16, 17}
	for _, r := range append(accE[:6:6], accO...) {
		emit("VPXORQ %s, %s, %s", z(r), z(r), z(r))
	}
	for i := 0; i < limbs; i++ {
		for k, t := range terms {
			acc, a, b := accE, 7, 23
			if k%2 == 1 {
				acc, a, b = accO, 18, 24
			}
			for j := 0; j < limbs; j++ {
				emit("VMOVDQU64 %s, %s", t.a.limb(j), z(a+j))
			}
			if t.bc != nil {
				emit("VPBROADCASTQ %s, %s", t.bc.limb(i), z(b))
			} else {
				emit("VMOVDQU64 %s, %s", t.bv.limb(i), z(b))
			}
			for j := 0; j < limbs; j++ {
				emit("VPMADD52LUQ %s, %s, %s", z(a+j), z(b), z(acc[j]))
				emit("VPMADD52HUQ %s, %s, %s", z(a+j), z(b), z(acc[j+1]))
			}
		}
		emit("VPADDQ %s, %s, %s", z(accO[0]), z(accE[0]), z(accE[0]))
		emit("VPXORQ %s, %s, %s", mreg, mreg, mreg)
		emit("VPMADD52LUQ.BCST ·k52(SB), %s, %s", z(accE[0]), mreg)
		for j := 0; j < limbs; j++ {
			emit("VPMADD52LUQ.BCST ·q52+%d(SB), %s, %s", 8*j, mreg, z(accE[j]))
			emit("VPMADD52HUQ.BCST ·q52+%d(SB), %s, %s", 8*j, mreg, z(accO[j+1]))
		}
		emit("VPSRLQ $52, %s, %s", z(accE[0]), z(accE[0]))
		emit("VPADDQ %s, %s, %s", z(accE[0]), z(accE[1]), z(accE[1]))
		accE = append(accE[1:], accE[0])
		accO = append(accO[1:], accO[0])
		if i < limbs-1 {
			emit("VPXORQ %s, %s, %s", z(accE[5]), z(accE[5]), z(accE[5]))
			emit("VPXORQ %s, %s, %s", z(accO[5]), z(accO[5]), z(accO[5]))
		}
	}
	for j := 0; j < limbs; j++ {
		emit("VPADDQ %s, %s, %s", z(accO[j]), z(accE[j]), z(accE[j]))
	}
	return accE
}

// normalize propagates carries so that every limb but the last is below 2^52.
func normalize(r []int) {
	for j := 0; j < limbs-1; j++ {
		emit("VPSRLQ $52, %s, %s", z(r[j]), scratch)
		emit("VPANDQ %s, %s, %s", mask, z(r[j]), z(r[j]))
		emit("VPADDQ %s, %s, %s", scratch, z(r[j+1]), z(r[j+1]))
	}
}

// addConst sets dst = src + c, normalized.
func addConst(dst, src vec, c cst) {
	r := []int{0, 1, 2, 3, 4}
	for j := 0; j < limbs; j++ {
		emit("VMOVDQU64 %s, %s", src.limb(j), z(r[j]))
		emit("VPADDQ.BCST %s, %s, %s", c.limb(j), z(r[j]), z(r[j]))
	}
	normalize(r)
	for j := 0; j < limbs; j++ {
		emit("VMOVDQU64 %s, %s", z(r[j]), dst.limb(j))
	}
}

func copyVec(dst, src vec) {
	for j := 0; j < limbs; j++ {
		emit("VMOVDQU64 %s, Z0", src.limb(j))
		emit("VMOVDQU64 Z0, %s", dst.limb(j))
	}
}

// square sets dst = a²/2^260 mod q (below 2q for a below 3q, as dot),
// normalized: the product first, each cross product a_i·a_j (i < j) once,
// the sums doubled and the squares a_i² added (30 products instead of 50),
// then five Montgomery steps on the ten-limb product.
func square(dst, a vec) {
	ar := func(i int) string { return z(firstA + i) }
	p := []int{0, 1, 2, 3, 4, 5, 12, 13, 14, 15} // product limbs 0..9
	for j := 0; j < limbs; j++ {
		emit("VMOVDQU64 %s, %s", a.limb(j), ar(j))
	}
	for _, r := range p {
		emit("VPXORQ %s, %s, %s", z(r), z(r), z(r))
	}
	for i := 0; i < limbs; i++ {
		for j := i + 1; j < limbs; j++ {
			emit("VPMADD52LUQ %s, %s, %s", ar(j), ar(i), z(p[i+j]))
			emit("VPMADD52HUQ %s, %s, %s", ar(j), ar(i), z(p[i+j+1]))
		}
	}
	for k := 1; k < 2*limbs; k++ { // p[0] holds no cross product
		emit("VPADDQ %s, %s, %s", z(p[k]), z(p[k]), z(p[k]))
	}
	for i := 0; i < limbs; i++ {
		emit("VPMADD52LUQ %s, %s, %s", ar(i), ar(i), z(p[2*i]))
		emit("VPMADD52HUQ %s, %s, %s", ar(i), ar(i), z(p[2*i+1]))
	}
	for i := 0; i < limbs; i++ {
		emit("VPXORQ %s, %s, %s", mreg, mreg, mreg)
		emit("VPMADD52LUQ.BCST ·k52(SB), %s, %s", z(p[i]), mreg)
		for j := 0; j < limbs; j++ {
			emit("VPMADD52LUQ.BCST ·q52+%d(SB), %s, %s", 8*j, mreg, z(p[i+j]))
			emit("VPMADD52HUQ.BCST ·q52+%d(SB), %s, %s", 8*j, mreg, z(p[i+j+1]))
		}
		emit("VPSRLQ $52, %s, %s", z(p[i]), z(p[i]))
		emit("VPADDQ %s, %s, %s", z(p[i]), z(p[i+1]), z(p[i+1]))
	}
	r := p[limbs:]
	normalize(r)
	for j := 0; j < limbs; j++ {
		emit("VMOVDQU64 %s, %s", z(r[j]), dst.limb(j))
	}
}

// sbox sets x = x⁵ + c (c nil: no constant), using x2 and x4 as scratch.
func sbox(x, x2, x4 vec, c *cst) {
	square(x2, x)
	square(x4, x2)
	dot(x, []term{{a: x, bv: &x4}}, c)
}

// loops says whether each emits loops (the t=17 kernel, whose rounds
// unrolled would be hundreds of kilobytes of code) or unrolls (t=3, t=4).
var loops bool

// labels counts each's loops, for their labels.
var labels int

// condSub says whether the partial rounds' sparse updates keep state[k]
// below 2q with a conditional subtraction (dotAdd: the t=17 kernel) or by
// recomputing it as a term one·state[k] of the update's dot (t=3, t=4).
var condSub bool

// each emits body(x, k) for i = 0..n-1 with x = v.at(i) and k = c.at(stride·i)
// (c nil: k is unused). Unrolled, x and k are those; as a loop, x is based on
// BX and k on R14, advanced each time, and CX counts down.
func each(n int, v vec, c *cst, stride int, body func(x vec, k cst)) {
	if !loops {
		for i := 0; i < n; i++ {
			var k cst
			if c != nil {
				k = c.at(stride * i)
			}
			body(v.at(i), k)
		}
		return
	}
	labels++
	l := fmt.Sprintf("each%d", labels)
	emit("LEAQ %s, BX", v.limb(0))
	if c != nil {
		emit("LEAQ %s, R14", c.limb(0))
	}
	emit("MOVQ $%d, CX", n)
	label(l)
	body(vec{"BX", 0}, cst{"R14", 0})
	emit("ADDQ $%d, BX", vecSize)
	if c != nil {
		emit("ADDQ $%d, R14", cstSize*stride)
	}
	emit("DECQ CX")
	emit("JNZ %s", l)
}

// kernel emits permute<t>x8(st *[t·5·8]uint64, sched *uint64): st holds t
// elements of eight lanes; on return st[0] holds the eight outputs (below
// 2q). The schedule is buildSchedule8's, each constant as five limbs. The
// inputs must be below q (limbs52's form).
func kernel(t, nP int) {
	s := vec{"AX", 0}
	tmp := vec{"SP", 0}
	x2 := tmp.at(t)
	x4 := tmp.at(t + 1)
	cnt := fmt.Sprintf("%d(SP)", vecSize*(t+2))
	frame := vecSize*(t+2) + 8
	c := cst{"R15", 0}
	name := fmt.Sprintf("permute%dx8", t)

	loops, condSub, wide = t > 4, t > 4, t > 4
	sparse := t > 4
	labels = 0

	if !sparse {
		fmt.Fprintf(&out, "\n// func %s(st *[%d]uint64, sched *uint64)\n", name, t*limbs*8)
		fmt.Fprintf(&out, "TEXT ·%s(SB), 0, $%d-16\n", name, frame)
	} else {
		fmt.Fprintf(&out, "\n// func %s(st *[%d]uint64, sched, sparse *uint64, n int)\n", name, t*limbs*8)
		fmt.Fprintf(&out, "TEXT ·%s(SB), 0, $%d-32\n", name, frame)
	}
	emit("MOVQ st+0(FP), AX")
	emit("MOVQ sched+8(FP), R15")
	emit("VPBROADCASTQ ·mask52(SB), %s", mask)
	if sparse {
		emit("MOVQ n+24(FP), DX")
		for n := 1; n <= sparseMax; n++ {
			emit("CMPQ DX, $%d", n)
			emit("JEQ %s_sparse%d", name, n)
		}
	}

	comment("initial round constants")
	each(t, s, &c, 1, func(x vec, k cst) { addConst(x, x, k) })
	emit("ADDQ $%d, R15", cstSize*t)

	fullRound := func(rows int) {
		comment("full round: x^5 + c on every element, then the matrix")
		each(t, s, &c, 1, func(x vec, k cst) { sbox(x, x2, x4, &k) })
		row0 := c.at(t)
		each(rows, tmp, &row0, t, func(x vec, k cst) {
			var ts []term
			for j := 0; j < t; j++ {
				m := k.at(j)
				ts = append(ts, term{a: s.at(j), bc: &m})
			}
			dot(x, ts, nil)
		})
		for i := 0; i < rows; i++ {
			copyVec(s.at(i), tmp.at(i))
		}
		emit("ADDQ $%d, R15", cstSize*(t+t*t))
	}

	emit("MOVQ $4, %s", cnt)
	label(name + "_first")
	fullRound(t)
	emit("DECQ %s", cnt)
	emit("JNZ %s_first", name)

	b := partialBlocks[t]
	if b == 2 {
		comment("partial rounds in pairs (see buildSchedule8)")
	} else {
		comment(fmt.Sprintf("partial rounds in blocks of %d (see buildSchedule8)", b))
	}
	emit("MOVQ $%d, %s", nP/b, cnt)
	label(name + "_partial")
	// x(d) is round d's S-box output (plus its constant): state[0] for the
	// first, then the new state[0] of the round before; tmp.at(0) takes the
	// last round's new state[0] (the next block's).
	x := func(d int) vec {
		if d == 0 {
			return s
		}
		return tmp.at(d)
	}
	{
		cr := c.at(0)
		sbox(s, x2, x4, &cr)
		off := 0 // round d's constants
		for d := 0; d < b; d++ {
			w0 := c.at(off + 1)
			ts := []term{{a: x(d), bc: &w0}}
			for j := 1; j < t; j++ {
				w := c.at(off + 1 + j)
				ts = append(ts, term{a: s.at(j), bc: &w})
			}
			for j := 0; j < d; j++ {
				bj := c.at(off + 1 + t + j)
				ts = append(ts, term{a: x(j), bc: &bj})
			}
			off += 1 + t + d
			if d == b-1 {
				dot(tmp, ts, nil)
				break
			}
			dot(x(d+1), ts, nil)
			cn := c.at(off)
			sbox(x(d+1), x2, x4, &cn)
		}
		v0 := c.at(off) // v_0 of state[1], then v_1 of it t-1 constants on, …
		each(t-1, s.at(1), &v0, 1, func(sk vec, v cst) {
			var ts []term
			if !condSub {
				ts = append(ts, term{a: sk, bc: &one52})
			}
			for d := 0; d < b; d++ {
				vd := v.at(d * (t - 1))
				ts = append(ts, term{a: x(d), bc: &vd})
			}
			if condSub {
				dotAdd(sk, ts, sk)
			} else {
				dot(sk, ts, nil)
			}
		})
		copyVec(s, tmp)
		emit("ADDQ $%d, R15", cstSize*(off+b*(t-1)))
	}
	emit("DECQ %s", cnt)
	emit("JNZ %s_partial", name)

	switch {
	case nP%b > 1:
		log.Fatalf("t=%d: %d partial rounds in blocks of %d", t, nP, b)
	case nP%b == 1:
		comment("the last partial round")
		c0 := c.at(0)
		sbox(s, x2, x4, &c0)
		var ts []term
		for j := 0; j < t; j++ {
			w := c.at(1 + j)
			ts = append(ts, term{a: s.at(j), bc: &w})
		}
		dot(tmp, ts, nil)
		v1 := c.at(t + 1)
		each(t-1, s.at(1), &v1, 1, func(x vec, v cst) {
			dot(x, []term{{a: s, bc: &v}, {a: x, bc: &one52}}, nil)
		})
		copyVec(s, tmp)
		emit("ADDQ $%d, R15", cstSize*2*t)
	}

	emit("MOVQ $3, %s", cnt)
	label(name + "_last")
	fullRound(t)
	emit("DECQ %s", cnt)
	emit("JNZ %s_last", name)

	comment("final round: x^5 on every element, row 0 of the matrix")
	each(t, s, nil, 0, func(x vec, _ cst) { sbox(x, x2, x4, nil) })
	emit("ADDQ $%d, R15", cstSize*t) // the round's zero constants
	var fs []term
	for j := 0; j < t; j++ {
		m := c.at(j)
		fs = append(fs, term{a: s.at(j), bc: &m})
	}
	dot(s, fs, nil)
	emit("VZEROUPPER")
	emit("RET")

	if !sparse {
		return
	}
	// The first full round of a state [0, y_1..y_n, 0, …, 0]: only y_1..y_n
	// go through the S-box; the other elements' S-box outputs are constants,
	// their share of row i of the matrix Q_i (buildSparse17), added to the
	// dot of the row's n weights of y'_1..y'_n. The rows (n weights, Q_i)
	// are sparse's. The result is below 2q + q: a dot plus a constant, as an
	// S-box output plus its round constant, which is what the next round's
	// S-box takes.
	for n := 1; n <= sparseMax; n++ {
		comment(fmt.Sprintf("the first full round of a state zero past element %d", n))
		label(fmt.Sprintf("%s_sparse%d", name, n))
		emit("MOVQ sparse+16(FP), R13")
		c1 := c.at(1)
		each(n, s.at(1), &c1, 1, func(x vec, k cst) { addConst(x, x, k) })
		c1 = c.at(t + 1) // round 1's constants
		each(n, s.at(1), &c1, 1, func(x vec, k cst) { sbox(x, x2, x4, &k) })
		rows := cst{"R13", 0}
		each(t, tmp, &rows, n+1, func(x vec, k cst) {
			var ts []term
			for j := 1; j <= n; j++ {
				m := k.at(j - 1)
				ts = append(ts, term{a: s.at(j), bc: &m})
			}
			q := k.at(n)
			dot(x, ts, &q)
		})
		for i := 0; i < t; i++ {
			copyVec(s.at(i), tmp.at(i))
		}
		emit("ADDQ $%d, R15", cstSize*(t+t+t*t)) // initial constants, round 1
		emit("MOVQ $3, %s", cnt)
		emit("JMP %s_first", name)
	}
}

func main() {
	q, _ := new(big.Int).SetString("21888242871839275222246405745257275088548364400416034343698204186575808495617", 10)
	r52 := new(big.Int).Lsh(big.NewInt(1), 52)
	k := new(big.Int).ModInverse(q, r52)
	k.Sub(r52, k)
	m52 := new(big.Int).Sub(r52, big.NewInt(1))

	out.WriteString("// Code generated by gen_ifma.go. DO NOT EDIT.\n\n")
	out.WriteString("//go:build amd64 && !purego\n\n")
	out.WriteString("#include \"textflag.h\"\n\n")
	out.WriteString("// q52 is the modulus in 52-bit limbs, k52 = −q⁻¹ mod 2^52, mask52 = 2^52−1,\n")
	out.WriteString("// one52 = 2^260 mod q (one in the kernels' Montgomery form) in 52-bit limbs.\n")
	qb := new(big.Int).Set(q)
	for i := 0; i < limbs; i++ {
		fmt.Fprintf(&out, "DATA ·q52+%d(SB)/8, $0x%013x\n", 8*i, new(big.Int).And(qb, m52))
		qb.Rsh(qb, 52)
	}
	out.WriteString("GLOBL ·q52(SB), RODATA|NOPTR, $40\n")
	fmt.Fprintf(&out, "DATA ·k52+0(SB)/8, $0x%013x\n", k)
	out.WriteString("GLOBL ·k52(SB), RODATA|NOPTR, $8\n")
	fmt.Fprintf(&out, "DATA ·mask52+0(SB)/8, $0x%013x\n", m52)
	out.WriteString("GLOBL ·mask52(SB), RODATA|NOPTR, $8\n")
	one := new(big.Int).Lsh(big.NewInt(1), 260)
	one.Mod(one, q)
	for i := 0; i < limbs; i++ {
		fmt.Fprintf(&out, "DATA ·one52+%d(SB)/8, $0x%013x\n", 8*i, new(big.Int).And(one, m52))
		one.Rsh(one, 52)
	}
	out.WriteString("GLOBL ·one52(SB), RODATA|NOPTR, $40\n")
	out.WriteString("// twoq52 is 2q in 52-bit limbs (dotAdd's conditional subtraction).\n")
	twoq := new(big.Int).Lsh(q, 1)
	for i := 0; i < limbs; i++ {
		fmt.Fprintf(&out, "DATA ·twoq52+%d(SB)/8, $0x%013x\n", 8*i, new(big.Int).And(twoq, m52))
		twoq.Rsh(twoq, 52)
	}
	out.WriteString("GLOBL ·twoq52(SB), RODATA|NOPTR, $40\n")

	for _, t := range []int{3, 4, 17} {
		kernel(t, partialRounds[t])
	}
	if err := os.WriteFile("permute_ifma_amd64.s", out.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}
