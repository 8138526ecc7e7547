package poseidon

import (
	"math/big"
	"math/rand/v2"
	"testing"

	iden3 "github.com/iden3/go-iden3-crypto/poseidon"
)

func TestQuickHashBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for n := 0; n <= 600; n++ {
		b := make([]byte, n)
		for i := range b { b[i] = byte(rng.Uint32()) }
		want, err := iden3.HashBytes(b)
		if err != nil { t.Fatal(err) }
		got, _ := HashBytes(b)
		if want == nil { want = new(big.Int) }
		if got.BigInt(new(big.Int)).Cmp(want) != 0 { t.Fatalf("len %d mismatch", n) }
	}
}

func BenchmarkQuickHB32(b *testing.B) {
	in := make([]byte, 32)
	in[3] = 7
	b.ReportAllocs()
	for b.Loop() { HashBytes(in) }
}
func BenchmarkQuickIden3HB32(b *testing.B) {
	in := make([]byte, 32)
	in[3] = 7
	b.ReportAllocs()
	for b.Loop() { iden3.HashBytes(in) }
}
