package poseidon

import (
	"bytes"
	"encoding/hex"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	iden3 "github.com/iden3/go-iden3-crypto/poseidon"
)

// checkBytes compares HashBytes(b) with go-iden3-crypto's HashBytes, which
// returns a nil hash for an empty b (HashBytes: zero).
func checkBytes(t *testing.T, b []byte) {
	t.Helper()
	orig := bytes.Clone(b)
	want, err := iden3.HashBytes(b)
	if err != nil {
		t.Fatalf("iden3 HashBytes(%d bytes): %v", len(b), err)
	}
	if want == nil {
		if len(b) != 0 {
			t.Fatalf("iden3 HashBytes(%d bytes) = nil", len(b))
		}
		want = new(big.Int)
	}
	got, err := HashBytes(b)
	if err != nil {
		t.Fatalf("HashBytes(%d bytes): %v", len(b), err)
	}
	var gotB big.Int
	if got.BigInt(&gotB).Cmp(want) != 0 {
		t.Fatalf("HashBytes(%x) (%d bytes) = %v, iden3 = %v", b, len(b), &gotB, want)
	}
	if !bytes.Equal(b, orig) {
		t.Fatalf("HashBytes modified its input")
	}
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestHashBytesMatchesIden3Random(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	perLen := 5
	if testing.Short() {
		perLen = 1
	}
	for n := 0; n <= 200; n++ {
		for i := 0; i < perLen; i++ {
			checkBytes(t, randomBytes(rng, n))
		}
	}
}

// TestHashBytesMatchesIden3Boundaries covers the sponge's edges: exact
// multiples of the 31-byte chunk, a first frame of exactly 16 chunks (496
// bytes) and later frames of 15 (496 + 465k bytes), one byte either side,
// and all-zero and all-0xff inputs (chunks of value 0 and 2^248-1).
func TestHashBytesMatchesIden3Boundaries(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	lens := map[int]bool{}
	for k := 1; k <= 17; k++ {
		lens[spongeChunk*k-1], lens[spongeChunk*k], lens[spongeChunk*k+1] = true, true, true
	}
	first := spongeChunk * spongeFrame       // 496
	later := spongeChunk * (spongeFrame - 1) // 465
	for f := 0; f < 4; f++ {
		n := first + f*later
		lens[n-1], lens[n], lens[n+1] = true, true, true
		lens[n-spongeChunk], lens[n+spongeChunk] = true, true
	}
	lens[2*first] = true // 992 = 31·16·2 (not a frame boundary after the first)
	lens[3*first] = true
	for n := range lens {
		checkBytes(t, randomBytes(rng, n))
		checkBytes(t, make([]byte, n))
		checkBytes(t, bytes.Repeat([]byte{0xff}, n))
	}
}

// TestHashBytesKnownVectors pins outputs published in go-iden3-crypto's own
// test suite (TestHashBytes), independent of the oracle at test time.
func TestHashBytesKnownVectors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"dead", "0244ec1a137a24c92404de9f9c39907be151026a4eb7f9cfea60a5740e8a73b7"},
		{"ce0e8e502600b14bb0a2c9689f7d93d10e9f5451f18f030ec3bb6c5001ea60", "03ace829d65dae7903fc9b22e904750ca0509b9a187cbeb004a4270e8322a2f4"},
		{"34665289b71a2cb8bf4c289ae6d17d845457c48bfc18623ca39e141b2e40c5d3", "144aa8e107a9fd8f8106016a8ff0fd1c265cdf31a40a8ef9ed44dfb4592cbbff"},
	}
	for _, c := range cases {
		in, err := hex.DecodeString(c.in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := HashBytes(in)
		if err != nil {
			t.Fatal(err)
		}
		b := got.Bytes()
		if hex.EncodeToString(b[:]) != c.want {
			t.Errorf("HashBytes(%s) = %x, want %s", c.in, b, c.want)
		}
	}
}

func TestHashBytesEmpty(t *testing.T) {
	for _, b := range [][]byte{nil, {}} {
		h, err := HashBytes(b)
		if err != nil || !h.IsZero() {
			t.Errorf("HashBytes(%#v) = %v, %v; want 0, nil", b, h.String(), err)
		}
	}
}

// TestPermute17Sparse checks the t=17 kernel's sparse first round (a state
// zero beyond element n) against its dense path and the portable permute.
func TestPermute17Sparse(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	p := table(MaxInputs + 1)
	for n := 0; n <= MaxInputs; n++ {
		for i := 0; i < 5; i++ {
			var st [MaxInputs + 1]fr.Element
			for j := 1; j <= n; j++ {
				st[j].SetBigInt(randomValue(rng))
			}
			if i == 0 && n > 0 {
				st[n].SetZero() // n is an upper bound: a zero inside is fine
			}
			ref, sparse, dense := st, st, st
			want := permute(ref[:], p)
			if got := permute17(&sparse, n); got != want {
				t.Fatalf("n=%d: sparse permute17 = %v, portable = %v", n, got.String(), want.String())
			}
			if got := permute17(&dense, 0); got != want {
				t.Fatalf("n=%d: dense permute17 = %v, portable = %v", n, got.String(), want.String())
			}
		}
	}
}

// FuzzHashBytes checks arbitrary byte strings against go-iden3-crypto.
func FuzzHashBytes(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0xde, 0xad})
	f.Add(bytes.Repeat([]byte{0xff}, 31))
	f.Add(bytes.Repeat([]byte{0x01}, 32))
	f.Add(bytes.Repeat([]byte{0x80}, 64))
	f.Add(make([]byte, 496))
	f.Add(bytes.Repeat([]byte{0x5a}, 497))
	f.Fuzz(func(t *testing.T, b []byte) {
		checkBytes(t, b)
	})
}

// TestBytesPermutations checks the count against the sponge's framing: the
// first frame takes 16 chunks of 31 bytes, every later one 15 (its first
// slot holds the previous frame's hash).
func TestBytesPermutations(t *testing.T) {
	for _, c := range []struct{ n, want int }{
		{0, 0}, {1, 1}, {31, 1}, {32, 1}, {16 * 31, 1}, {16*31 + 1, 2},
		{31 * 31, 2}, {31*31 + 1, 3}, {46 * 31, 3}, {46*31 + 1, 4},
	} {
		if got := BytesPermutations(c.n); got != c.want {
			t.Errorf("BytesPermutations(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}
