package calib

import (
	"cmp"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/rustorium/rustorium/node/storage"
)

// background measures Pebble's work behind the node's writes (Ops.
// PebbleBackground): on one core, a Pebble with the node's table options
// (no compression, bloom filters) and memtable size, in a directory of
// Options.Dir (its tables are files, as the node's are; until session 34
// in memory, which made the CPU per MiB a fifth less) and without its WAL
// (the commits' own cost is PebbleCommit's), takes batches of fresh
// 32-byte keys and values (as the Merkle tree's nodes are) until 2
// (quick) or 8 memtables came in; the process's CPU beyond the commits,
// until the flushes and compactions are done, per MiB they wrote: the
// median of three such measurements, each in a fresh directory.
// calibrate's end-to-end runs replace its flush schedule with the node's
// own (InBytesPerFlush, FlushedPerIn, FlushesPerCompaction) and, when
// they sampled enough of it, its CPU per MiB with the node's (NsPerMiB).
func (m *measurer) background(context.Context) error {
	dir, err := os.MkdirTemp(m.opts.Dir, "rustorium-calib-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	return oneCore(func() error {
		// The median of three (quick: one): on disk one measurement's CPU
		// per MiB moved between 1.58 and 1.97 ms from one to the next on
		// session 34's host, and a three-node cluster's tails with it.
		var bs []*PebbleBackground
		for i := range m.n(1, 3) {
			b, err := pebbleBackground(vfs.Default, filepath.Join(dir, strconv.Itoa(i)), m.n(2, 8), m.opts.Seed+uint64(i))
			if err != nil {
				return err
			}
			bs = append(bs, b)
		}
		slices.SortFunc(bs, func(a, b *PebbleBackground) int { return cmp.Compare(a.NsPerMiB, b.NsPerMiB) })
		m.c.Ops.PebbleBackground = bs[len(bs)/2]
		return nil
	})
}

func pebbleBackground(fs vfs.FS, dir string, memtables int, seed uint64) (*PebbleBackground, error) {
	var so storage.Options
	so.EnsureDefaults()
	po := &pebble.Options{FS: fs, MemTableSize: so.MemTableBytes, DisableWAL: true, Logger: quietLogger{}}
	// What the flushes took from the memtables (their arenas' bytes in
	// use) and the rounds of L0 compactions, counted as the node counts
	// them (storage's WriteStats).
	var flushes storage.FlushCounter
	po.EventListener = flushes.Listen(&pebble.EventListener{})
	po.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	po.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	po.EnsureDefaults() // for LBaseMaxBytes below
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	r := rand.New(rand.NewPCG(seed, 17))
	target := uint64(memtables) * so.MemTableBytes
	kv := make([]byte, 64)
	var in uint64
	var commits time.Duration
	c0 := cpuClock()
	for in < target {
		b := db.NewBatch()
		for range 100 { // about a block of a few puts' tree nodes
			for i := 0; i < len(kv); i += 8 {
				v := r.Uint64()
				for j := range 8 {
					kv[i+j] = byte(v >> (8 * j))
				}
			}
			if err := b.Set(kv[:32], kv[32:], nil); err != nil {
				return nil, err
			}
			in += 64
		}
		t0 := cpuClock()
		err := b.Commit(pebble.NoSync)
		commits += cpuClock() - t0
		_ = b.Close()
		if err != nil {
			return nil, err
		}
	}
	// Flush the last, partly filled memtable too, so that every byte that
	// came in went through a flush.
	if err := db.Flush(); err != nil { // its work is background CPU, below
		return nil, err
	}
	// Let the flushes and compactions finish (this goroutine sleeping
	// gives them the core): nothing in progress and nothing more written
	// over 100 ms, at most 30 s.
	var written uint64
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		mt := db.Metrics()
		t := mt.Total()
		w := t.TableBytesFlushed + t.TableBytesCompacted
		if mt.Compact.NumInProgress == 0 && mt.Flush.NumInProgress == 0 && w == written && w > 0 {
			break
		}
		written = w
	}
	mt := db.Metrics()
	t := mt.Total()
	flushed, compacted := t.TableBytesFlushed, t.TableBytesCompacted
	rounds := max(flushes.L0Rounds(), 1)
	bg := cpuClock() - c0 - commits
	out := max(flushed+compacted, 1)
	// Memtables' worth flushed: not the flush jobs, since a job behind
	// its queue flushes several memtables at once, nor rotations counted
	// with the last partial one as whole, but the arena bytes the
	// flushes took over a full memtable's.
	memtablesFlushed := max(float64(flushes.ArenaBytes())/float64(so.MemTableBytes), 1)
	return &PebbleBackground{
		MemtableBytes: int64(so.MemTableBytes),
		NsPerMiB:      max(float64(bg.Nanoseconds())/(float64(out)/(1<<20)), 1),
		WriteAmp:      max(float64(flushed+compacted)/float64(max(flushed, 1)), 1),
		// The flushes' schedule: what came in per full memtable (less
		// than its size: the arena holds each entry with its skiplist
		// node), what a flush wrote per byte in, memtables flushed per
		// round of L0 compactions (Pebble's compaction count also holds
		// the rounds' later steps and moves: with 16 MiB memtables it
		// counted more compactions than flushes).
		InBytesPerFlush:      float64(in) / memtablesFlushed,
		FlushedPerIn:         float64(flushed) / float64(max(in, 1)),
		FlushesPerCompaction: memtablesFlushed / float64(rounds),
		BaseMaxBytes:         po.LBaseMaxBytes, // the node's: Pebble's default
	}, nil
}
