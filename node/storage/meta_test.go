package storage

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/rustorium/rustorium/node/merkle"
)

func FuzzDecodeMeta(f *testing.F) {
	m := Meta{Height: 7, BlockHash: [32]byte{1, 2}, NextOffset: 99, BlockOffset: 12}
	m.Root.SetUint64(12345)
	f.Add(m.encode())
	f.Add([]byte{})
	f.Add(make([]byte, metaLen))
	bad := m.encode()
	for i := 41; i < 73; i++ {
		bad[i] = 0xff // root out of the field
	}
	f.Add(bad)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(m.encode(), b) {
			t.Fatal("meta does not round trip")
		}
	})
}

func TestKeyCache(t *testing.T) {
	for _, size := range []int{-1, 1, 3, 100} {
		c := newKeyCache(size)
		for i := 0; i < 200; i++ {
			k := []byte{byte(i % 37), 'k'}
			got, want := c.key(k), merkle.KeyFromBytes(k)
			if !got.Equal(&want) {
				t.Fatalf("size %d key %x: cached tree key differs", size, k)
			}
		}
	}
}

// TestKeyCacheAdd checks that adding a key the cache holds (the same key
// twice in a block's batch) keeps it and evicts nothing, and that a full
// shard evicts one key for a new one.
func TestKeyCacheAdd(t *testing.T) {
	c := newKeyCache(16) // one key per shard
	k := []byte("key")
	if _, ok := c.lookup(k); ok {
		t.Fatal("empty cache holds a key")
	}
	e := merkle.KeyFromBytes(k)
	c.add(k, e)
	c.add(k, e)
	s := c.shard(k)
	if got, ok := c.lookup(k); !ok || !got.Equal(&e) || len(s.m) != 1 {
		t.Fatalf("after adding a key twice: %v %v, %d keys in its shard", got.String(), ok, len(s.m))
	}
	if p := c.perms.Load(); p != 2 {
		t.Fatalf("%d permutations counted for two hashes of a short key", p)
	}
	for i := 0; ; i++ { // another key of the same shard replaces it
		o := fmt.Appendf(nil, "other%d", i)
		if c.shard(o) != s {
			continue
		}
		c.add(o, merkle.KeyFromBytes(o))
		if _, ok := c.lookup(k); ok || len(s.m) != 1 {
			t.Fatalf("a full shard kept its key for a new one (%d keys)", len(s.m))
		}
		break
	}
}
