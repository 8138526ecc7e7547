package merkle_test

import (
	"context"
	"errors"
	"math/big"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	iden3 "github.com/iden3/go-merkletree-sql/v2"
	"github.com/iden3/go-merkletree-sql/v2/db/memory"

	"github.com/rustorium/rustorium/node/merkle"
)

const levels = 64

// oracle is a go-merkletree-sql tree fed the same writes.
type oracle struct {
	t  testing.TB
	mt *iden3.MerkleTree
}

func newOracle(t testing.TB, maxLevels int) *oracle {
	t.Helper()
	mt, err := iden3.NewMerkleTree(context.Background(), memory.NewMemoryStorage(), maxLevels)
	if err != nil {
		t.Fatal(err)
	}
	return &oracle{t: t, mt: mt}
}

func big_(e fr.Element) *big.Int { return e.BigInt(new(big.Int)) }

// set adds or updates k.
func (o *oracle) set(k, v fr.Element) error {
	ctx := context.Background()
	err := o.mt.Add(ctx, big_(k), big_(v))
	if errors.Is(err, iden3.ErrEntryIndexAlreadyExists) {
		_, err = o.mt.Update(ctx, big_(k), big_(v))
	}
	return err
}

func (o *oracle) del(k fr.Element) error { return o.mt.Delete(context.Background(), big_(k)) }

func (o *oracle) root() fr.Element {
	e, err := merkle.ElementFromBigInt(o.mt.Root().BigInt())
	if err != nil {
		o.t.Fatal(err)
	}
	return e
}

// ours is our tree over an in-memory store.
type ours struct {
	t  testing.TB
	db merkle.MapReader
	tr *merkle.Tree
}

func newOurs(t testing.TB, opts merkle.Options) *ours {
	t.Helper()
	db := merkle.MapReader{}
	tr, err := merkle.New(db, fr.Element{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &ours{t: t, db: db, tr: tr}
}

func (o *ours) apply(kvs []merkle.KV) error {
	u, err := o.tr.Apply(kvs)
	if err != nil {
		return err
	}
	o.db.Put(u)
	return o.tr.Commit(u)
}

func elem(u uint64) fr.Element { return fr.NewElement(u) }

func randElem(r *rand.Rand) fr.Element {
	var b [32]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	var e fr.Element
	e.SetBytes(b[:]) // reduces mod p
	return e
}

// keyGen returns a key generator of a given flavour.
func keyGen(kind string, r *rand.Rand) func() fr.Element {
	switch kind {
	case "small": // many repeats, short paths
		return func() fr.Element { return elem(r.Uint64N(300)) }
	case "prefix": // keys sharing their low 40 bits
		base := r.Uint64() & (1<<40 - 1)
		return func() fr.Element {
			var e fr.Element
			b := new(big.Int).Lsh(new(big.Int).SetUint64(r.Uint64N(1<<20)), 40)
			b.Or(b, new(big.Int).SetUint64(base))
			e.SetBigInt(b)
			return e
		}
	default: // uniform field elements
		return func() fr.Element { return randElem(r) }
	}
}

func seeded(t *testing.T) (*rand.Rand, uint64) {
	seed := rand.Uint64()
	if s := os.Getenv("MERKLE_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("MERKLE_SEED: %v", err)
		}
		seed = v
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed: %d (rerun with MERKLE_SEED=%d)", seed, seed)
		}
	})
	return rand.New(rand.NewPCG(seed, 0x5eed)), seed
}
