package poseidon

import (
	"bytes"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	iden3 "github.com/iden3/go-iden3-crypto/poseidon"
)

// TestHashBytesManyMatchesHashBytes checks HashBytesMany against HashBytes
// and go-iden3-crypto's HashBytes on seeded random inputs of 0 to 600 bytes
// (31·k boundaries, 496 and 497 among them) in batches of 0 to 20: the
// 8-lane kernel where the CPU has it, and the scalar path.
func TestHashBytesManyMatchesHashBytes(t *testing.T) {
	t.Run("native", func(t *testing.T) { testHashBytesMany(t) })
	if useIFMA {
		t.Run("scalar", func(t *testing.T) {
			useIFMA = false
			defer func() { useIFMA = true }()
			testHashBytesMany(t)
		})
	}
}

func testHashBytesMany(t *testing.T) {
	t.Logf("IFMA kernels: %v", useIFMA)
	rng := rand.New(rand.NewPCG(17, 17))
	var lengths []int
	for k := 0; k <= 19; k++ {
		for _, d := range []int{-1, 0, 1} {
			if n := 31*k + d; n >= 0 {
				lengths = append(lengths, n)
			}
		}
	}
	lengths = append(lengths, 32, 64, 495, 496, 497, 527, 600)
	length := func() int {
		if rng.IntN(3) == 0 {
			return lengths[rng.IntN(len(lengths))]
		}
		switch rng.IntN(4) {
		case 0:
			return rng.IntN(601)
		case 1:
			return rng.IntN(64)
		default:
			return rng.IntN(497) // one permutation
		}
	}
	iden3Checked := map[int]bool{}
	reps := 6
	if testing.Short() {
		reps = 2
	}
	for size := 0; size <= 20; size++ {
		for rep := 0; rep < reps; rep++ {
			in := make([][]byte, size)
			for i := range in {
				in[i] = randomBytes(rng, length())
				if rng.IntN(16) == 0 {
					in[i] = nil
				}
			}
			orig := make([][]byte, size)
			for i := range in {
				orig[i] = bytes.Clone(in[i])
			}
			out := make([]fr.Element, size)
			for i := range out {
				out[i].SetUint64(12345) // must be overwritten, even for empty inputs
			}
			HashBytesMany(out, in)
			for i, b := range in {
				if !bytes.Equal(b, orig[i]) {
					t.Fatalf("HashBytesMany modified input %d", i)
				}
				want, _ := HashBytes(b)
				if !out[i].Equal(&want) {
					t.Fatalf("batch of %d, input %d (%d bytes): HashBytesMany %s, HashBytes %s", size, i, len(b), out[i].String(), want.String())
				}
				if !iden3Checked[len(b)] || rng.IntN(20) == 0 {
					iden3Checked[len(b)] = true
					w, err := iden3.HashBytes(b)
					if err != nil {
						t.Fatal(err)
					}
					if w == nil {
						w = new(big.Int)
					}
					if out[i].BigInt(new(big.Int)).Cmp(w) != 0 {
						t.Fatalf("batch of %d, input %d (%d bytes): HashBytesMany %s, iden3 %s", size, i, len(b), out[i].String(), w)
					}
				}
			}
		}
	}
}

func TestHashBytesManyLengths(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("HashBytesMany with slices of different lengths did not panic")
		}
	}()
	HashBytesMany(make([]fr.Element, 2), make([][]byte, 3))
}

// TestHashBytesManyAllocs checks that a batch allocates nothing once the
// t=17 constants are built.
func TestHashBytesManyAllocs(t *testing.T) {
	in := make([][]byte, 20)
	for i := range in {
		in[i] = bytesOf(byte(i), 10*i)
	}
	out := make([]fr.Element, len(in))
	HashBytesMany(out, in)
	if a := testing.AllocsPerRun(5, func() { HashBytesMany(out, in) }); a != 0 {
		t.Fatalf("HashBytesMany: %v allocations per call", a)
	}
}

// FuzzHashBytesMany checks HashBytesMany against HashBytes: data is cut into
// len(lens) inputs (up to 20), input i lens[i]·3 bytes (0 to 765) read
// cyclically from data.
func FuzzHashBytesMany(f *testing.F) {
	f.Add([]byte{1, 2, 3}, []byte{1})
	f.Add(bytes.Repeat([]byte{0xff}, 496), []byte{0, 10, 11, 165, 166, 255, 1, 2, 3})
	f.Add(fr.Modulus().Bytes(), bytes.Repeat([]byte{11}, 17))
	f.Fuzz(func(t *testing.T, data, lens []byte) {
		if len(lens) > 20 {
			lens = lens[:20]
		}
		in := make([][]byte, len(lens))
		off := 0
		for i, l := range lens {
			n := 3 * int(l)
			if len(data) == 0 {
				n = 0
			}
			b := make([]byte, n)
			for j := range b {
				b[j] = data[off%len(data)]
				off++
			}
			in[i] = b
		}
		out := make([]fr.Element, len(in))
		HashBytesMany(out, in)
		for i, b := range in {
			if want, _ := HashBytes(b); !out[i].Equal(&want) {
				t.Fatalf("input %d of %d (%d bytes): HashBytesMany %s, HashBytes %s", i, len(in), len(b), out[i].String(), want.String())
			}
		}
	})
}
