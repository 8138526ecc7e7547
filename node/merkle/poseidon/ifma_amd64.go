//go:build amd64 && !purego

package poseidon

import (
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"golang.org/x/sys/cpu"
)

//go:generate go run gen_ifma.go

// useIFMA selects the 8-lane AVX-512 IFMA kernels (permute_ifma_amd64.s)
// for HashMany2, HashMany3 and HashBytesMany (the t=17 kernel also uses an
// AVX-512DQ instruction, VPMOVQ2M, which every CPU with IFMA has).
var useIFMA = cpu.X86.HasAVX512F && cpu.X86.HasAVX512IFMA && cpu.X86.HasAVX512DQ

// sched52[t] is buildSchedule8(tables[t]) in the IFMA kernels' form (see
// limbs52).
var sched52 = func() (s [5][]uint64) {
	for t := 3; t <= 4; t++ {
		s[t] = schedule52(tables[t])
	}
	return s
}()

// schedule52 is buildSchedule8(p) in the IFMA kernels' form.
func schedule52(p *params) []uint64 {
	var s []uint64
	for _, c := range buildSchedule8(p) {
		l := limbs52(&c)
		s = append(s, l[:]...)
	}
	return s
}

// sched17 holds the t=17 kernel's constants in its form, built on first
// use as the t=17 constants are (see table): s is schedule52 of them, and
// sparse[n] their sparse first rounds (params.sparse).
var sched17 struct {
	once   sync.Once
	s      []uint64
	sparse [sparseMax + 1][]uint64
}

// schedule17 returns permute17x8's schedule and, for a state zero past
// element n (1 ≤ n ≤ sparseMax), its sparse first round; nil otherwise.
func schedule17(n int) (sched, sparse *uint64) {
	sched17.once.Do(func() {
		p := table(MaxInputs + 1)
		sched17.s = schedule52(p)
		for n := 1; n <= sparseMax; n++ {
			for _, c := range p.sparse[n] {
				l := limbs52(&c)
				sched17.sparse[n] = append(sched17.sparse[n], l[:]...)
			}
		}
	})
	if n >= 1 && n <= sparseMax {
		sparse = &sched17.sparse[n][0]
	}
	return &sched17.s[0], sparse
}

// hashBytesMany hashes the inputs of one permutation eight at a time in
// their order (a group's state is zero past its longest input: a sparse
// first round for up to sparseMax chunks), a last group of fewer than
// minLanes and longer inputs one at a time.
func hashBytesMany(out []fr.Element, in [][]byte) {
	if !useIFMA {
		hashBytesManyScalar(out, in)
		return
	}
	var (
		st    [(MaxInputs + 1) * lanes * 5]uint64
		group [lanes]int // indexes of the inputs in the next kernel call
		n     int
	)
	run := func() {
		chunks := 0 // the most of a lane: the state is zero past it
		for i := 0; i < lanes; i++ {
			var b []byte
			if i < n {
				b = in[group[i]]
				chunks = max(chunks, (len(b)+spongeChunk-1)/spongeChunk)
			}
			setLaneBytes(st[:], i, b)
		}
		sched, sparse := schedule17(chunks)
		if sparse == nil {
			chunks = 0
		}
		permute17x8(&st, sched, sparse, chunks)
		for i := 0; i < n; i++ {
			out[group[i]] = getLane(st[:5*lanes], i)
		}
		n = 0
	}
	for i, b := range in {
		switch {
		case len(b) == 0:
			out[i] = fr.Element{}
		case len(b) > maxFrameBytes:
			out[i], _ = HashBytes(b)
		default:
			group[n] = i
			if n++; n == lanes {
				run()
			}
		}
	}
	if n >= minLanes {
		run()
		return
	}
	for _, i := range group[:n] {
		out[i], _ = HashBytes(in[i])
	}
}

func hashMany2(out, a, b []fr.Element) {
	if !useIFMA {
		hashMany2Scalar(out, a, b)
		return
	}
	var st [3 * lanes * 5]uint64
	for lo := 0; lo < len(out); lo += lanes {
		n := min(lanes, len(out)-lo)
		if n < minLanes {
			hashMany2Scalar(out[lo:], a[lo:], b[lo:])
			return
		}
		clear(st[:5*lanes]) // the capacity element
		for i := 0; i < n; i++ {
			setLane(st[1*5*lanes:], i, &a[lo+i])
			setLane(st[2*5*lanes:], i, &b[lo+i])
		}
		for i := n; i < lanes; i++ {
			zeroLane(st[1*5*lanes:], i)
			zeroLane(st[2*5*lanes:], i)
		}
		permute3x8(&st, &sched52[3][0])
		for i := 0; i < n; i++ {
			out[lo+i] = getLane(st[:5*lanes], i)
		}
	}
}

func hashMany3(out, a, b, c []fr.Element) {
	if !useIFMA {
		hashMany3Scalar(out, a, b, c)
		return
	}
	var st [4 * lanes * 5]uint64
	for lo := 0; lo < len(out); lo += lanes {
		n := min(lanes, len(out)-lo)
		if n < minLanes {
			hashMany3Scalar(out[lo:], a[lo:], b[lo:], c[lo:])
			return
		}
		clear(st[:5*lanes])
		for i := 0; i < n; i++ {
			setLane(st[1*5*lanes:], i, &a[lo+i])
			setLane(st[2*5*lanes:], i, &b[lo+i])
			setLane(st[3*5*lanes:], i, &c[lo+i])
		}
		for i := n; i < lanes; i++ {
			zeroLane(st[1*5*lanes:], i)
			zeroLane(st[2*5*lanes:], i)
			zeroLane(st[3*5*lanes:], i)
		}
		permute4x8(&st, &sched52[4][0])
		for i := 0; i < n; i++ {
			out[lo+i] = getLane(st[:5*lanes], i)
		}
	}
}

//go:noescape
func permute3x8(st *[3 * lanes * 5]uint64, sched *uint64)

//go:noescape
func permute4x8(st *[4 * lanes * 5]uint64, sched *uint64)

// permute17x8 runs the t=17 permutation on eight states (st: 17 elements
// of eight lanes) and leaves the outputs in element 0. With 1 ≤ n ≤
// sparseMax, element 0 and elements past n must be zero in every lane and
// sparse is schedule17(n)'s (the first round is then cheaper); n = 0 assumes
// nothing.
//
//go:noescape
func permute17x8(st *[(MaxInputs + 1) * lanes * 5]uint64, sched, sparse *uint64, n int)
