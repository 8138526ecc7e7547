package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/rustorium/rustorium/node/tx"
)

// settledSpill is how many settled transactions the checker holds in
// memory before it moves them to disk (settledSet): about 40 MiB of map.
var settledSpill = 1 << 18

// settledSet holds the transactions the checker has seen both accepted and
// committed once, by id, with their shard: what it still needs of them is
// a second commit (a duplicate) and, at the end, their place in the nodes'
// indexes. The latest settledSpill of them are in memory; older ones go to
// a Pebble store in a temporary folder, so that the checker's memory does
// not grow with the run's length. close removes the folder.
type settledSet struct {
	mem   map[tx.ID]uint32
	db    *pebble.DB // nil until the first spill
	dir   string
	n     int64 // settled in all
	err   error // the first disk error: the set then stays in memory
	spill int
}

func newSettledSet(spill int) *settledSet {
	return &settledSet{mem: map[tx.ID]uint32{}, spill: spill}
}

// add settles id, committed on shard.
func (s *settledSet) add(id tx.ID, shard uint32) {
	s.mem[id] = shard
	s.n++
	if len(s.mem) >= s.spill && s.err == nil {
		s.err = s.flush()
	}
}

// has reports whether id is settled.
func (s *settledSet) has(id tx.ID) bool {
	if _, ok := s.mem[id]; ok {
		return true
	}
	if s.db == nil {
		return false
	}
	_, closer, err := s.db.Get(id[:])
	if err != nil {
		return false
	}
	closer.Close()
	return true
}

// each calls fn with every settled transaction, until fn returns false.
func (s *settledSet) each(fn func(id tx.ID, shard uint32) bool) error {
	for id, sh := range s.mem {
		if !fn(id, sh) {
			return nil
		}
	}
	if s.db == nil {
		return nil
	}
	it, err := s.db.NewIter(nil)
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		var id tx.ID
		copy(id[:], it.Key())
		if !fn(id, binary.BigEndian.Uint32(it.Value())) {
			break
		}
	}
	return it.Error()
}

// flush moves the in-memory part to the store, opening it on first use.
func (s *settledSet) flush() error {
	if s.db == nil {
		dir, err := os.MkdirTemp("", "rustorium-checker-")
		if err != nil {
			return fmt.Errorf("checker: spilling settled transactions: %w", err)
		}
		cache := pebble.NewCache(8 << 20)
		defer cache.Unref()
		opts := &pebble.Options{DisableWAL: true, MemTableSize: 4 << 20, Cache: cache, Logger: quietPebble{}}
		opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10) // has() is mostly a miss
		db, err := pebble.Open(dir, opts)
		if err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("checker: spilling settled transactions: %w", err)
		}
		s.db, s.dir = db, dir
	}
	b := s.db.NewBatch()
	defer b.Close()
	var v [4]byte
	for id, sh := range s.mem {
		binary.BigEndian.PutUint32(v[:], sh)
		if err := b.Set(id[:], v[:], nil); err != nil {
			return err
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("checker: spilling settled transactions: %w", err)
	}
	s.mem = map[tx.ID]uint32{}
	return nil
}

// close removes the store. Safe to call twice.
func (s *settledSet) close() error {
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return errors.Join(err, os.RemoveAll(s.dir))
}

// quietPebble drops Pebble's informational lines; errors reach the checker
// as errors.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("checker store: "+format, args...))
}
