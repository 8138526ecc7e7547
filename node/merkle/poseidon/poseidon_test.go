package poseidon

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	iden3 "github.com/iden3/go-iden3-crypto/poseidon"
)

// edgeValues are field elements near the interesting boundaries: 0, 1, small
// values, p-1, p-2, 2^253 and 2^254 reduced, and all-ones patterns reduced.
func edgeValues() []*big.Int {
	p := fr.Modulus()
	one := big.NewInt(1)
	vals := []*big.Int{
		big.NewInt(0), big.NewInt(1), big.NewInt(2), big.NewInt(5),
		new(big.Int).Sub(p, one),
		new(big.Int).Sub(p, big.NewInt(2)),
		new(big.Int).Sub(p, big.NewInt(1<<32)),
		new(big.Int).Rsh(p, 1),
		new(big.Int).Lsh(one, 253),
		new(big.Int).Mod(new(big.Int).Lsh(one, 254), p),
		new(big.Int).Mod(new(big.Int).Sub(new(big.Int).Lsh(one, 256), one), p),
		new(big.Int).Sub(new(big.Int).Lsh(one, 64), one),
		new(big.Int).Lsh(one, 192),
	}
	return vals
}

// randomValue draws a field element: uniform, small, or within 2^20 of p.
func randomValue(rng *rand.Rand) *big.Int {
	p := fr.Modulus()
	switch rng.IntN(4) {
	case 0:
		return new(big.Int).SetUint64(rng.Uint64N(1 << 20))
	case 1:
		return new(big.Int).Sub(p, new(big.Int).SetUint64(1+rng.Uint64N(1<<20)))
	default:
		var buf [32]byte
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		return new(big.Int).Mod(new(big.Int).SetBytes(buf[:]), p)
	}
}

func toFr(t *testing.T, v *big.Int) fr.Element {
	t.Helper()
	var e fr.Element
	e.SetBigInt(v)
	var back big.Int
	if e.BigInt(&back).Cmp(v) != 0 {
		t.Fatalf("conversion of %v is not exact", v)
	}
	return e
}

// check compares our Hash (and Hash2/Hash3 for their widths) with iden3.
func check(t *testing.T, in []*big.Int) {
	t.Helper()
	want, err := iden3.Hash(in)
	if err != nil {
		t.Fatalf("iden3 Hash(%v): %v", in, err)
	}
	els := make([]fr.Element, len(in))
	for i, v := range in {
		els[i] = toFr(t, v)
	}
	got, err := Hash(els)
	if err != nil {
		t.Fatalf("Hash(%v): %v", in, err)
	}
	var gotB big.Int
	if got.BigInt(&gotB).Cmp(want) != 0 {
		t.Fatalf("Hash(%v) = %v, iden3 = %v", in, &gotB, want)
	}
	// The portable Go permutation (the fallback, and the assembly kernels'
	// reference on amd64) must agree too.
	st := make([]fr.Element, len(in)+1)
	copy(st[1:], els)
	if ref := permute(st, table(len(in)+1)); ref != got {
		t.Fatalf("portable permute and Hash disagree for %v", in)
	}
	var direct fr.Element
	switch len(in) {
	case 2:
		direct = Hash2(&els[0], &els[1])
	case 3:
		direct = Hash3(&els[0], &els[1], &els[2])
	default:
		return
	}
	if direct != got {
		direct.BigInt(&gotB)
		t.Fatalf("Hash%d(%v) = %v, iden3 = %v", len(in), in, &gotB, want)
	}
}

func TestMatchesIden3Edges(t *testing.T) {
	edges := edgeValues()
	for _, a := range edges {
		check(t, []*big.Int{a})
		for _, b := range edges {
			check(t, []*big.Int{a, b})
			for _, c := range edges[:6] {
				check(t, []*big.Int{a, b, c})
			}
		}
	}
	// Wider inputs: every edge value everywhere, and alone at the front or
	// the back with zeros elsewhere (trailing zeros take the sparse first
	// round at 16 inputs).
	zero := big.NewInt(0)
	for w := 4; w <= MaxInputs; w++ {
		for _, e := range edges {
			all, first, last := make([]*big.Int, w), make([]*big.Int, w), make([]*big.Int, w)
			for j := range all {
				all[j], first[j], last[j] = e, zero, zero
			}
			first[0], last[w-1] = e, e
			check(t, all)
			check(t, first)
			check(t, last)
		}
	}
}

func TestMatchesIden3Random(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Widths 1 to 3 are the tree's hot path; the wider ones cost iden3 (the
	// oracle) up to 0.2 ms a hash, so they get fewer cases.
	narrow, wide := 2000, 100
	if testing.Short() {
		narrow, wide = 200, 10
	}
	for w := 1; w <= MaxInputs; w++ {
		n := narrow
		if w > 3 {
			n = wide
		}
		for i := 0; i < n; i++ {
			in := make([]*big.Int, w)
			for j := range in {
				in[j] = randomValue(rng)
			}
			// Zero a random tail now and then (the sparse first round).
			if w == MaxInputs && i%2 == 1 {
				for j := 1 + rng.IntN(w); j < w; j++ {
					in[j] = big.NewInt(0)
				}
			}
			check(t, in)
		}
	}
}

// TestKnownVectors pins outputs published in go-iden3-crypto's own test
// suite (poseidon_test.go), independent of the oracle at test time.
func TestKnownVectors(t *testing.T) {
	cases := []struct {
		in   []uint64
		want string
	}{
		{[]uint64{1}, "18586133768512220936620570745912940619677854269274689475585506675881198879027"},
		{[]uint64{1, 2}, "7853200120776062878684798364095072458815029376092732009249414926327459813530"},
	}
	for _, c := range cases {
		in := make([]fr.Element, len(c.in))
		for i, v := range c.in {
			in[i].SetUint64(v)
		}
		got, err := Hash(in)
		if err != nil {
			t.Fatal(err)
		}
		if got.String() != c.want {
			t.Errorf("Hash(%v) = %s, want %s", c.in, got.String(), c.want)
		}
	}
}

func TestInputCount(t *testing.T) {
	for _, n := range []int{0, MaxInputs + 1, 100} {
		_, err := Hash(make([]fr.Element, n))
		if !errors.Is(err, ErrInputCount) {
			t.Errorf("Hash with %d inputs: err = %v, want ErrInputCount", n, err)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	var a, b, c fr.Element
	a.SetUint64(3)
	b.SetString("12345678901234567890123456789")
	c.SetOne()
	in := make([]fr.Element, MaxInputs)
	for i := range in {
		in[i].SetUint64(uint64(i) * 0x9e3779b97f4a7c15)
	}
	in[0], in[1], in[2] = a, b, c
	bytes := make([]byte, 600)
	for i := range bytes {
		bytes[i] = byte(i * 7)
	}
	var sink fr.Element
	for name, f := range map[string]func(){
		"Hash2":          func() { sink = Hash2(&a, &b) },
		"Hash3":          func() { sink = Hash3(&a, &b, &c) },
		"Hash1":          func() { sink, _ = Hash(in[:1]) },
		"Hash":           func() { sink, _ = Hash(in[:3]) },
		"Hash7":          func() { sink, _ = Hash(in[:7]) },
		"Hash16":         func() { sink, _ = Hash(in) },
		"HashBytes(32)":  func() { sink, _ = HashBytes(bytes[:32]) },
		"HashBytes(64)":  func() { sink, _ = HashBytes(bytes[:64]) },
		"HashBytes(600)": func() { sink, _ = HashBytes(bytes) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
	_ = sink
}

// FuzzHash checks arbitrary inputs (byte strings read big-endian and reduced
// into the field; input i ≥ 3 is input i mod 3 with byte i appended) against
// go-iden3-crypto, for 1 to MaxInputs inputs.
func FuzzHash(f *testing.F) {
	f.Add([]byte{}, []byte{1}, []byte{2}, uint8(2))
	f.Add([]byte{0xff, 0xff}, []byte{}, []byte{1}, uint8(3))
	f.Add(fr.Modulus().Bytes(), []byte{7}, []byte{}, uint8(1))
	f.Add([]byte{1, 2, 3}, []byte{4}, []byte{5, 6}, uint8(MaxInputs))
	f.Add([]byte{9}, []byte{}, []byte{}, uint8(7))
	f.Fuzz(func(t *testing.T, a, b, c []byte, n uint8) {
		w := int(n%MaxInputs) + 1
		p := fr.Modulus()
		raws := [][]byte{a, b, c}
		in := make([]*big.Int, 0, w)
		for i := 0; i < w; i++ {
			raw := raws[i%3]
			if i >= 3 {
				raw = append(append([]byte(nil), raw...), byte(i))
			}
			in = append(in, new(big.Int).Mod(new(big.Int).SetBytes(raw), p))
		}
		check(t, in)
	})
}
