package poseidon

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	iden3 "github.com/iden3/go-iden3-crypto/poseidon"
)

// TestHashManyMatchesHash checks HashMany2 and HashMany3 (the 8-lane IFMA
// kernels where the CPU has them, with their limb conversions and partial
// last groups) against Hash2 and Hash3 — themselves checked against
// go-iden3-crypto — on edge values and seeded random elements, for every
// length up to 40.
func TestHashManyMatchesHash(t *testing.T) {
	t.Run("native", func(t *testing.T) { testHashMany(t) })
	if useIFMA { // also the path of CPUs without IFMA
		t.Run("scalar", func(t *testing.T) {
			useIFMA = false
			defer func() { useIFMA = true }()
			testHashMany(t)
		})
	}
}

func testHashMany(t *testing.T) {
	t.Logf("IFMA kernels: %v", useIFMA)
	rng := rand.New(rand.NewPCG(8, 8))
	var pool []fr.Element
	for _, v := range edgeValues() {
		var e fr.Element
		e.SetBigInt(v)
		pool = append(pool, e)
	}
	for range 200 {
		var e fr.Element
		e.SetBigInt(randomValue(rng))
		pool = append(pool, e)
	}
	pick := func() fr.Element { return pool[rng.IntN(len(pool))] }
	for n := 0; n <= 40; n++ {
		for rep := 0; rep < 3; rep++ {
			a, b, c := make([]fr.Element, n), make([]fr.Element, n), make([]fr.Element, n)
			for i := range a {
				a[i], b[i], c[i] = pick(), pick(), pick()
			}
			out2, out3 := make([]fr.Element, n), make([]fr.Element, n)
			HashMany2(out2, a, b)
			HashMany3(out3, a, b, c)
			for i := range a {
				if w := Hash2(&a[i], &b[i]); !out2[i].Equal(&w) {
					t.Fatalf("n=%d lane %d: HashMany2 %s, Hash2 %s", n, i, out2[i].String(), w.String())
				}
				if w := Hash3(&a[i], &b[i], &c[i]); !out3[i].Equal(&w) {
					t.Fatalf("n=%d lane %d: HashMany3 %s, Hash3 %s", n, i, out3[i].String(), w.String())
				}
			}
		}
	}
}

// TestLimbs52RoundTrip checks the conversion to the kernels' form and back
// (fromLimbs52 also reduces values in [q, 2q)), on edge and random values.
func TestLimbs52RoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	q := fr.Modulus()
	r260 := new(big.Int).Lsh(big.NewInt(1), 260)
	for i := 0; i < 2000; i++ {
		var e fr.Element
		if i < len(edgeValues()) {
			e.SetBigInt(edgeValues()[i])
		} else {
			e.SetBigInt(randomValue(rng))
		}
		l := limbs52(&e)
		// the limbs must be x·2^260 mod q
		v := new(big.Int)
		for j := 4; j >= 0; j-- {
			if l[j] >= 1<<52 {
				t.Fatalf("limb %d not normalized", j)
			}
			v.Lsh(v, 52).Or(v, new(big.Int).SetUint64(l[j]))
		}
		x := e.BigInt(new(big.Int))
		if want := new(big.Int).Mod(new(big.Int).Mul(x, r260), q); v.Cmp(want) != 0 {
			t.Fatalf("%s: limbs %s, want %s", x, v, want)
		}
		if back := fromLimbs52(&l); !back.Equal(&e) {
			t.Fatalf("%s: round trip %s", x, back.String())
		}
		// the same value plus q (a kernel output in [q, 2q)) converts too
		v.Add(v, q)
		var l2 [5]uint64
		for j := 0; j < 5; j++ {
			l2[j] = new(big.Int).And(new(big.Int).Rsh(v, uint(52*j)), big.NewInt(1<<52-1)).Uint64()
		}
		if back := fromLimbs52(&l2); !back.Equal(&e) {
			t.Fatalf("%s + q: round trip %s", x, back.String())
		}
	}
}

// FuzzHashMany checks HashMany2 and HashMany3 against go-iden3-crypto's
// big.Int Poseidon directly: data is cut into 32-byte big-endian numbers
// reduced mod q (a short last one as is), lane i hashing numbers 3i..3i+2
// (numbers past the end are 0), for n+1 lanes (1 to 17: the 8-lane kernels,
// their padded last group and the one-at-a-time tail).
func FuzzHashMany(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint8(0))
	f.Add(fr.Modulus().Bytes(), uint8(7))
	f.Add(append(fr.Modulus().Bytes(), make([]byte, 300)...), uint8(16))
	f.Add(bytesOf(0xff, 32*24), uint8(9))
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		lanes := int(n%17) + 1
		q := fr.Modulus()
		num := func(i int) *big.Int {
			if 32*i >= len(data) {
				return new(big.Int)
			}
			return new(big.Int).Mod(new(big.Int).SetBytes(data[32*i:min(len(data), 32*i+32)]), q)
		}
		var in [3][]fr.Element
		var bigs [3][]*big.Int
		for i := 0; i < lanes; i++ {
			for k := 0; k < 3; k++ {
				b := num(3*i + k)
				var e fr.Element
				e.SetBigInt(b)
				in[k] = append(in[k], e)
				bigs[k] = append(bigs[k], b)
			}
		}
		out2, out3 := make([]fr.Element, lanes), make([]fr.Element, lanes)
		HashMany2(out2, in[0], in[1])
		HashMany3(out3, in[0], in[1], in[2])
		for i := 0; i < lanes; i++ {
			w2, err := iden3.Hash([]*big.Int{bigs[0][i], bigs[1][i]})
			if err != nil {
				t.Fatal(err)
			}
			w3, err := iden3.Hash([]*big.Int{bigs[0][i], bigs[1][i], bigs[2][i]})
			if err != nil {
				t.Fatal(err)
			}
			if out2[i].BigInt(new(big.Int)).Cmp(w2) != 0 || out3[i].BigInt(new(big.Int)).Cmp(w3) != 0 {
				t.Fatalf("lane %d of %d: HashMany2 %s (iden3 %s), HashMany3 %s (iden3 %s)", i, lanes, out2[i].String(), w2, out3[i].String(), w3)
			}
		}
	})
}

func bytesOf(b byte, n int) []byte {
	s := make([]byte, n)
	for i := range s {
		s[i] = b
	}
	return s
}
