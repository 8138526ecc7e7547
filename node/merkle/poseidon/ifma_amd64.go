//go:build amd64 && !purego

package poseidon

import (
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"golang.org/x/sys/cpu"
)

//go:generate go run gen_ifma.go

// useIFMA selects the 8-lane AVX-512 IFMA kernels (permute_ifma_amd64.s)
// for HashMany2 and HashMany3.
var useIFMA = cpu.X86.HasAVX512F && cpu.X86.HasAVX512IFMA

// sched52[t] is buildSchedule8(tables[t]) in the IFMA kernels' form (see
// limbs52).
var sched52 = func() (s [5][]uint64) {
	for t := 3; t <= 4; t++ {
		for _, c := range buildSchedule8(tables[t]) {
			l := limbs52(&c)
			s[t] = append(s[t], l[:]...)
		}
	}
	return s
}()

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
