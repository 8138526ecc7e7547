//go:build amd64 && !purego

package poseidon

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// TestPermute17x8 checks the 8-lane t=17 kernel (permute17x8 through the
// limb conversions) against the portable permute and the t=17 assembly
// kernel on full random states, capacity included, with values at and near
// the modulus and zero: each lane of each call a different state.
func TestPermute17x8(t *testing.T) {
	if !useIFMA {
		t.Skip("no AVX-512 IFMA")
	}
	rng := rand.New(rand.NewPCG(17, 8))
	edges := edgeValues()
	p := table(MaxInputs + 1)
	calls := 40
	if testing.Short() {
		calls = 5
	}
	for c := 0; c < calls; c++ {
		var st8 [(MaxInputs + 1) * lanes * 5]uint64
		var states [lanes][MaxInputs + 1]fr.Element
		for l := range states {
			for j := range states[l] {
				var v *big.Int
				switch {
				case c == 0: // all lanes: the largest values
					v = new(big.Int).Sub(fr.Modulus(), big.NewInt(int64(1+l+j)))
				case c == 1 && l < len(edges):
					v = edges[(l+j)%len(edges)]
				case rng.IntN(8) == 0:
					v = edges[rng.IntN(len(edges))]
				default:
					v = randomValue(rng)
				}
				states[l][j].SetBigInt(v)
				setLane(st8[j*5*lanes:], l, &states[l][j])
			}
		}
		sched, _ := schedule17(0)
		permute17x8(&st8, sched, nil, 0)
		for l := range states {
			ref, asm := states[l], states[l]
			want := permute(ref[:], p)
			if got := permute17(&asm, 0); !got.Equal(&want) {
				t.Fatalf("call %d lane %d: permute17 %s, portable %s", c, l, got.String(), want.String())
			}
			if got := getLane(st8[:5*lanes], l); !got.Equal(&want) {
				t.Fatalf("call %d lane %d: permute17x8 %s, portable %s", c, l, got.String(), want.String())
			}
		}
	}
}

// TestPermute17x8Sparse checks permute17x8's sparse first rounds (states
// zero past element n in every lane, n = 1..sparseMax) against the portable
// permute, each lane with its own number of leading inputs up to n (zero
// inside too), with random values and values near the modulus.
func TestPermute17x8Sparse(t *testing.T) {
	if !useIFMA {
		t.Skip("no AVX-512 IFMA")
	}
	rng := rand.New(rand.NewPCG(17, 9))
	p := table(MaxInputs + 1)
	for n := 1; n <= sparseMax; n++ {
		for c := 0; c < 4; c++ {
			var st8 [(MaxInputs + 1) * lanes * 5]uint64
			var states [lanes][MaxInputs + 1]fr.Element
			for l := range states {
				m := n
				if l > 0 {
					m = rng.IntN(n + 1)
				}
				for j := 1; j <= m; j++ {
					v := randomValue(rng)
					if c == 0 {
						v = new(big.Int).Sub(fr.Modulus(), big.NewInt(int64(1+l+j)))
					}
					states[l][j].SetBigInt(v)
				}
				for j := range states[l] {
					setLane(st8[j*5*lanes:], l, &states[l][j])
				}
			}
			sched, sparse := schedule17(n)
			if sparse == nil {
				t.Fatalf("no sparse round for n=%d", n)
			}
			permute17x8(&st8, sched, sparse, n)
			for l := range states {
				ref := states[l]
				want := permute(ref[:], p)
				if got := getLane(st8[:5*lanes], l); !got.Equal(&want) {
					t.Fatalf("n=%d call %d lane %d: permute17x8 %s, portable %s", n, c, l, got.String(), want.String())
				}
			}
		}
	}
}
