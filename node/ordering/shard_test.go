package ordering_test

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/rustorium/rustorium/node/ordering"
)

// TestShardOfGolden pins the routing function: these values are part of the
// data layout, so a change here moves every key to another shard.
func TestShardOfGolden(t *testing.T) {
	for _, c := range []struct {
		key                  string
		s4, s16, s1000, s256 uint32
	}{
		{"", 1, 5, 37, 0x25},
		{"a", 0, 12, 996, 0x8c},
		{"alice", 3, 7, 183, 0x07},
		{"bob", 0, 4, 92, 0x54},
		{"account-0", 1, 9, 985, 0x09},
		{"account-1", 2, 6, 774, 0x56},
		{"\x00\xff", 0, 0, 88, 0x60},
	} {
		for _, g := range []struct {
			shards int
			want   uint32
		}{{4, c.s4}, {16, c.s16}, {1000, c.s1000}, {256, c.s256}, {1, 0}, {0, 0}, {-3, 0}} {
			if got := ordering.ShardOf([]byte(c.key), g.shards); got != g.want {
				t.Errorf("ShardOf(%q, %d) = %d, want %d", c.key, g.shards, got, g.want)
			}
		}
	}
}

// TestShardOfIsFNV1a64 cross-checks against the standard library on random
// keys.
func TestShardOfIsFNV1a64(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		key := make([]byte, rng.IntN(64))
		for i := range key {
			key[i] = byte(rng.Uint32())
		}
		shards := 1 + rng.IntN(ordering.MaxShards)
		h := fnv.New64a()
		h.Write(key)
		if want, got := uint32(h.Sum64()%uint64(shards)), ordering.ShardOf(key, shards); got != want {
			t.Fatalf("ShardOf(%x, %d) = %d, want %d", key, shards, got, want)
		}
	}
}

// TestShardOfDistribution checks that typical key sets (sequential account
// names, random 32-byte public keys) spread evenly: a chi-square test at a
// generous bound, and no shard off its fair share by more than 5%.
func TestShardOfDistribution(t *testing.T) {
	const n = 200000
	rng := rand.New(rand.NewPCG(3, 4))
	keySets := map[string]func(i int) []byte{
		"sequential": func(i int) []byte { return fmt.Appendf(nil, "account-%d", i) },
		"pubkeys": func(int) []byte {
			var k [32]byte
			for j := 0; j < 32; j += 8 {
				binary.LittleEndian.PutUint64(k[j:], rng.Uint64())
			}
			return k[:]
		},
		"uint64-be": func(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) },
	}
	for name, key := range keySets {
		for _, shards := range []int{2, 3, 4, 8, 16, 64} {
			counts := make([]int, shards)
			for i := range n {
				counts[ordering.ShardOf(key(i), shards)]++
			}
			exp := float64(n) / float64(shards)
			chi2 := 0.0
			for s, c := range counts {
				d := float64(c) - exp
				chi2 += d * d / exp
				if d > 0.05*exp || d < -0.05*exp {
					t.Errorf("%s, %d shards: shard %d has %d keys, fair share %.0f", name, shards, s, c, exp)
				}
			}
			// For k-1 degrees of freedom the chi-square mean is k-1
			// and its sd sqrt(2(k-1)); 6 sd above is far out.
			df := float64(shards - 1)
			if limit := df + 6*math.Sqrt(2*df); chi2 > limit {
				t.Errorf("%s, %d shards: chi-square %.1f > %.1f: %v", name, shards, chi2, limit, counts)
			}
		}
	}
}

func BenchmarkShardOf(b *testing.B) {
	key := make([]byte, 32)
	for b.Loop() {
		key[0]++
		_ = ordering.ShardOf(key, 16)
	}
}
