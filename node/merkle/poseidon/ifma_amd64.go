//go:build amd64 && !purego

package poseidon

import (
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"golang.org/x/sys/cpu"
)

//go:generate go run gen_ifma.go

// useIFMA selects the 8-lane AVX-512 IFMA kernels (permute_ifma_amd64.s)
// for HashMany2, HashMany3 and HashBytesMany.
var useIFMA = cpu.X86.HasAVX512F && cpu.X86.HasAVX512IFMA

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

// sched17 is schedule52 of the t=17 constants, built on first use as they
// are (see table).
var sched17 struct {
	once sync.Once
	s    []uint64
}

func schedule17() *uint64 {
	sched17.once.Do(func() { sched17.s = schedule52(table(MaxInputs + 1)) })
	return &sched17.s[0]
}

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
		for i := 0; i < lanes; i++ {
			var b []byte
			if i < n {
				b = in[group[i]]
			}
			setLaneBytes(st[:], i, b)
		}
		permute17x8(&st, schedule17())
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

//go:noescape
func permute17x8(st *[(MaxInputs + 1) * lanes * 5]uint64, sched *uint64)
