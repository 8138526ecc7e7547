package loadgen

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/rustorium/rustorium/node/tx"
)

// Signed is a workload's signed transactions by send index: all of them
// signed before the run (Presigned), or signed while it runs, a bounded
// lead ahead of the sends (Stream).
type Signed interface {
	// Len is the number of sends.
	Len() int
	// Tx returns send i's encoding, waiting (until ctx ends) for it to be
	// signed. A run takes each send once, in about send order.
	Tx(ctx context.Context, i uint64) ([]byte, error)
	// Skip says send i will not be taken (the open loop dropped it), so
	// that its room in a Stream's buffer is freed.
	Skip(i uint64)
}

// Errors of a Signed.
var (
	// ErrNoSend is returned by Tx for an index beyond Len.
	ErrNoSend = errors.New("loadgen: no such send")
	// ErrStreamClosed is returned by a Stream's Tx after Close.
	ErrStreamClosed = errors.New("loadgen: stream closed")
)

// Presigned is a Signed whose transactions were all signed beforehand.
type Presigned [][]byte

// Len implements Signed.
func (p Presigned) Len() int { return len(p) }

// Tx implements Signed.
func (p Presigned) Tx(_ context.Context, i uint64) ([]byte, error) {
	if i >= uint64(len(p)) {
		return nil, fmt.Errorf("%w: %d of %d", ErrNoSend, i, len(p))
	}
	return p[i], nil
}

// Skip implements Signed.
func (Presigned) Skip(uint64) {}

// StreamOptions configures a Stream.
type StreamOptions struct {
	// Lead bounds the transactions signed and not yet taken, and so the
	// stream's memory. Zero means 4096.
	Lead int
	// Workers sign in parallel. Zero means GOMAXPROCS.
	Workers int
	// OnSigned, if set, is called with each transaction as it is signed,
	// before Tx can return it (from a signing goroutine).
	OnSigned func(i uint64, raw []byte)
}

// Stream is a Signed that signs a workload's transactions while it runs,
// in chunks, at most Lead ahead of the sends taken so far: its memory does
// not grow with the run's length. One goroutine builds the chunks in send
// order (the key draws are sequential); Workers goroutines sign them.
// Close stops them.
type Stream struct {
	n       int
	chunk   int
	slots   []streamSlot // chunk k lives in slots[k % len]
	changed chan struct{}
	mu      sync.Mutex
	skips   map[int][]int // chunk → the sends skipped before it was signed

	work   chan int // chunk numbers to sign
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// streamSlot holds one chunk: unsigned, then signed, then taken.
type streamSlot struct {
	k      int // the chunk it holds; -1: free
	txs    []*tx.Tx
	keys   []ed25519.PrivateKey
	raws   [][]byte
	signed bool
	taken  int
}

// Stream returns the Split's share of the n puts of the whole load, signed
// as the run takes them. p.Keys must be fresh (nothing drawn from it yet);
// Plan sets Of beforehand.
func (p *Puts) Stream(n int, opts StreamOptions) *Stream {
	own := 0
	for i := range n {
		if p.Split.Owns(uint64(i)) {
			own++
		}
	}
	return newStream(own, p.iter(n, nil), opts)
}

// Stream returns the Split's share of the n transfers of the whole load,
// signed as the run takes them. t.Keys must be fresh; Plan sets Senders
// and Of beforehand (with a Keys of its own).
func (t *Transfers) Stream(n int, opts StreamOptions) (*Stream, error) {
	it, err := t.iter(n, nil)
	if err != nil {
		return nil, err
	}
	return newStream(len(t.Of), it, opts), nil
}

func newStream(n int, it txIter, opts StreamOptions) *Stream {
	lead, workers := opts.Lead, opts.Workers
	if lead <= 0 {
		lead = 4096
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	chunk := min(256, max(1, lead/4))
	nslots := max(2, (lead+chunk-1)/chunk)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Stream{n: n, chunk: chunk, slots: make([]streamSlot, nslots), changed: make(chan struct{}), work: make(chan int, nslots), cancel: cancel}
	for i := range s.slots {
		s.slots[i].k = -1
	}
	s.wg.Add(1 + workers)
	go s.build(ctx, it)
	for range workers {
		go s.sign(ctx, opts.OnSigned)
	}
	return s
}

// Len implements Signed.
func (s *Stream) Len() int { return s.n }

// build fills free slots with the next chunks, in order, and hands them to
// the signers.
func (s *Stream) build(ctx context.Context, it txIter) {
	defer s.wg.Done()
	defer close(s.work)
	for k := 0; k*s.chunk < s.n; k++ {
		slot := &s.slots[k%len(s.slots)]
		if !s.wait(ctx, func() bool { return slot.k < 0 }) {
			return
		}
		m := min(s.chunk, s.n-k*s.chunk)
		txs, keys := make([]*tx.Tx, 0, m), make([]ed25519.PrivateKey, 0, m)
		for range m {
			t, key, ok := it()
			if !ok {
				break // cannot happen: n counted the iterator's sends
			}
			txs, keys = append(txs, t), append(keys, key)
		}
		s.mu.Lock()
		*slot = streamSlot{k: k, txs: txs, keys: keys}
		s.mu.Unlock()
		select {
		case s.work <- k:
		case <-ctx.Done():
			return
		}
	}
}

// sign signs the chunks build hands over.
func (s *Stream) sign(ctx context.Context, onSigned func(uint64, []byte)) {
	defer s.wg.Done()
	for k := range s.work {
		slot := &s.slots[k%len(s.slots)]
		s.mu.Lock()
		txs, keys := slot.txs, slot.keys
		s.mu.Unlock()
		raws := make([][]byte, len(txs))
		for j, t := range txs {
			if ctx.Err() != nil {
				return
			}
			t.Sign(keys[j])
			raws[j] = t.Encode()
			if onSigned != nil {
				onSigned(uint64(k*s.chunk+j), raws[j])
			}
		}
		s.mu.Lock()
		slot.txs, slot.keys, slot.raws, slot.signed = nil, nil, raws, true
		for _, j := range s.skips[k] {
			s.takeLocked(slot, j)
		}
		delete(s.skips, k)
		s.notifyLocked()
		s.mu.Unlock()
	}
}

// Tx implements Signed.
func (s *Stream) Tx(ctx context.Context, i uint64) ([]byte, error) {
	if i >= uint64(s.n) {
		return nil, fmt.Errorf("%w: %d of %d", ErrNoSend, i, s.n)
	}
	return s.take(ctx, i)
}

// Skip implements Signed. It does not wait: a send skipped before it is
// signed is let go when its chunk is.
func (s *Stream) Skip(i uint64) {
	if i >= uint64(s.n) {
		return
	}
	k, j := int(i)/s.chunk, int(i)%s.chunk
	slot := &s.slots[k%len(s.slots)]
	s.mu.Lock()
	defer s.mu.Unlock()
	if slot.k == k && slot.signed {
		s.takeLocked(slot, j)
		return
	}
	if s.skips == nil {
		s.skips = map[int][]int{}
	}
	s.skips[k] = append(s.skips[k], j)
}

// takeLocked takes send j of the signed chunk in slot, freeing the slot
// when it was the chunk's last.
func (s *Stream) takeLocked(slot *streamSlot, j int) []byte {
	raw := slot.raws[j]
	slot.raws[j] = nil
	if slot.taken++; slot.taken == len(slot.raws) {
		*slot = streamSlot{k: -1}
		s.notifyLocked()
	}
	return raw
}

func (s *Stream) take(ctx context.Context, i uint64) ([]byte, error) {
	k, j := int(i)/s.chunk, int(i)%s.chunk
	slot := &s.slots[k%len(s.slots)]
	var raw []byte
	ok := s.wait(ctx, func() bool {
		if slot.k != k || !slot.signed {
			return false
		}
		raw = s.takeLocked(slot, j)
		return true
	})
	if !ok {
		if err := context.Cause(ctx); err != nil {
			return nil, err
		}
		return nil, ErrStreamClosed
	}
	if raw == nil {
		return nil, fmt.Errorf("loadgen: send %d taken twice", i)
	}
	return raw, nil
}

// wait calls cond under the lock until it holds (true) or ctx ends or the
// stream closes (false).
func (s *Stream) wait(ctx context.Context, cond func() bool) bool {
	for {
		s.mu.Lock()
		if s.changed == nil {
			s.mu.Unlock()
			return false
		}
		if cond() {
			s.mu.Unlock()
			return true
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// notifyLocked wakes every waiter to look again.
func (s *Stream) notifyLocked() {
	if s.changed != nil {
		close(s.changed)
		s.changed = make(chan struct{})
	}
}

// Close stops the stream's goroutines and fails the Tx calls waiting on
// it. Safe to call more than once.
func (s *Stream) Close() {
	s.once.Do(func() {
		s.cancel()
		s.mu.Lock()
		close(s.changed)
		s.changed = nil
		s.mu.Unlock()
		s.wg.Wait()
	})
}
