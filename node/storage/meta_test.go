package storage

import (
	"bytes"
	"errors"
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
