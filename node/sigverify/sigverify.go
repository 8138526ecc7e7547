// Package sigverify checks ed25519 signatures the way a busy node should: in
// batches. Requests that arrive while a worker is busy are verified together
// with one multi-scalar multiplication (ed25519 batch verification): per
// signature, batches of 8 to 256 cost from three quarters down to half of a
// single check, a third to a half of crypto/ed25519's (BenchmarkCheck, on
// the project's 2-core machine: 41.5 to 27.7 µs against 55.7 single and
// 94.5 stdlib); a request that finds nothing queued and a slot free is
// checked alone at once, on its caller's goroutine, so batching never adds
// waiting. The slots are one per core by default, so on a machine whose
// cores are all busy a caller runs only when a check has ended and freed
// one, and checks its own: nearly every check is then alone (64 callers
// on 2 cores: 2903 of 2908 checks alone; a node at 5000/s: 730 of 732
// traced), and batches form only on more cores than callers keep busy.
//
// Signatures are checked under RFC 8032's cofactored equation with
// canonical point encodings (FIPS 186-5; curve25519-voi's preset of that
// name): the cofactored equation is the one under which a batch and a
// single check always agree, and canonical encodings of the key and of R
// keep a signature from being re-encoded into a second valid one (a
// second transaction id for the same transaction). It accepts every
// signature that crypto/ed25519 accepts under a canonically encoded key,
// and also signatures with a small-order component, which only a crafted
// signature has. Verify and Batch below are the same predicate; the tests
// check it.
package sigverify

import (
	"context"
	"crypto/ed25519"
	"errors"
	"runtime"
	"sync"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// ErrClosed is returned by Verifier.Verify after Close.
var ErrClosed = errors.New("sigverify: verifier closed")

var rules = &voi.Options{Verify: voi.VerifyOptionsFIPS_186_5}

// Verify reports whether sig is pub's signature of msg under these rules. Keys
// and signatures of the wrong length are invalid, never a panic.
func Verify(pub, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, rules)
}

// Item is one signature of a batch.
type Item struct {
	Pub, Msg, Sig []byte
}

// Batch verifies items together and reports each one's validity, the same
// answers as Verify on each. When every signature is valid it costs one
// batch equation; otherwise the batch falls back to checking each.
func Batch(items []Item) []bool {
	switch len(items) {
	case 0:
		return nil
	case 1:
		return []bool{Verify(items[0].Pub, items[0].Msg, items[0].Sig)}
	}
	bv := voi.NewBatchVerifierWithCapacity(len(items))
	for _, it := range items {
		// AddWithOptions marks a wrong-length key or signature invalid
		// instead of panicking, and the batch then checks each entry.
		bv.AddWithOptions(voi.PublicKey(it.Pub), it.Msg, it.Sig, rules)
	}
	_, valid := bv.Verify(nil)
	return valid
}

// Options configures a Verifier. The zero value is usable.
type Options struct {
	// Workers is the number of worker goroutines checking queued
	// signatures, and the bound on checks running at once (theirs and
	// those of callers checking their own). Default (0): GOMAXPROCS.
	Workers int
	// MaxBatch bounds how many waiting requests one worker checks together.
	// Default (0): 128; 1 disables batching.
	MaxBatch int
	// OnBatch, if set, is called with the size of every batch checked (for
	// metrics). Default: nil.
	OnBatch func(n int)
}

// EnsureDefaults sets zero fields to their defaults.
func (o *Options) EnsureDefaults() {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 128
	}
}

type request struct {
	item  Item
	done  chan bool
	batch int // the size of the batch it was checked in, set before done
}

// Verifier batches concurrent Verify calls over a few worker goroutines,
// which it owns: Close stops them. A call that finds nothing waiting and a
// worker's core free checks its signature at once on its own goroutine,
// sparing the two goroutine hand-offs of the queue (about 50 µs here on a
// busy node); the others queue and are checked in batches.
type Verifier struct {
	opts Options
	reqs chan *request
	quit chan struct{}
	// slots holds a token per signature check running, by a worker or by
	// a caller checking its own, at most Workers: a worker with a request
	// waits for one (and its batch grows meanwhile), a caller that cannot
	// take one at once queues.
	slots chan struct{}
	wg    sync.WaitGroup
	pool  sync.Pool // *request, each with its done channel

	// mu orders queuing against Close: Verify queues under RLock only
	// while open, so every queued request is there before the workers
	// drain the queue and stop.
	mu     sync.RWMutex
	closed bool
}

// New starts a Verifier.
func New(opts Options) *Verifier {
	opts.EnsureDefaults()
	v := &Verifier{
		opts:  opts,
		reqs:  make(chan *request, 4*opts.MaxBatch*opts.Workers),
		quit:  make(chan struct{}),
		slots: make(chan struct{}, opts.Workers),
	}
	v.pool.New = func() any { return &request{done: make(chan bool, 1)} }
	for range opts.Workers {
		v.wg.Add(1)
		go v.work()
	}
	return v
}

// Verify reports whether sig is pub's signature of msg (the predicate of
// the package-level Verify), checked in a batch with whatever else is
// waiting. It fails only when ctx ends or the Verifier is closed.
func (v *Verifier) Verify(ctx context.Context, pub, msg, sig []byte) (bool, error) {
	ok, _, err := v.VerifyBatch(ctx, pub, msg, sig)
	return ok, err
}

// VerifyBatch is Verify that also returns the size of the batch the
// signature was checked in (1 when alone; 0 on an error).
func (v *Verifier) VerifyBatch(ctx context.Context, pub, msg, sig []byte) (ok bool, batch int, err error) {
	v.mu.RLock()
	if v.closed {
		v.mu.RUnlock()
		return false, 0, ErrClosed
	}
	if len(v.reqs) == 0 {
		select {
		case v.slots <- struct{}{}:
			v.mu.RUnlock()
			ok = Verify(pub, msg, sig)
			if v.opts.OnBatch != nil {
				v.opts.OnBatch(1)
			}
			<-v.slots
			return ok, 1, nil
		default:
		}
	}
	r := v.pool.Get().(*request)
	r.item = Item{Pub: pub, Msg: msg, Sig: sig}
	select {
	case v.reqs <- r:
		v.mu.RUnlock()
	case <-ctx.Done():
		v.mu.RUnlock()
		v.pool.Put(r)
		return false, 0, ctx.Err()
	}
	// Once queued, the request is always answered (Close drains the
	// queue), so waiting for it cannot leak; only then is it reused.
	ok = <-r.done
	batch = r.batch
	r.item = Item{}
	v.pool.Put(r)
	return ok, batch, nil
}

// Close stops the workers after answering every queued request. It is safe
// to call more than once.
func (v *Verifier) Close() error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	v.mu.Unlock()
	close(v.quit)
	v.wg.Wait()
	return nil
}

func (v *Verifier) work() {
	defer v.wg.Done()
	batch := make([]*request, 0, v.opts.MaxBatch)
	items := make([]Item, 0, v.opts.MaxBatch)
	for {
		var first *request
		select {
		case first = <-v.reqs:
		case <-v.quit:
			// Answer what was queued before Close; Verify stops queuing.
			for {
				select {
				case r := <-v.reqs:
					r.batch = 1
					r.done <- Verify(r.item.Pub, r.item.Msg, r.item.Sig)
				default:
					return
				}
			}
		}
		held := true
		select {
		case v.slots <- struct{}{}:
		case <-v.quit:
			// Closing while the callers checking their own hold every
			// slot: first is answered without one.
			held = false
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < v.opts.MaxBatch {
			select {
			case r := <-v.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		items = items[:0]
		for _, r := range batch {
			items = append(items, r.item)
		}
		valid := Batch(items)
		if v.opts.OnBatch != nil {
			v.opts.OnBatch(len(batch))
		}
		if held {
			<-v.slots
		}
		for i, r := range batch {
			r.batch = len(batch)
			r.done <- valid[i]
		}
		clear(batch)
	}
}
