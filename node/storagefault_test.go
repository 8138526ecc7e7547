package node_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/health"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
)

// lineCounter is a slog handler that counts records by message.
type lineCounter struct {
	mu    *sync.Mutex
	lines map[string]int
	attrs map[string][]slog.Attr // the last record's attributes, by message
}

func newLineCounter() lineCounter {
	return lineCounter{mu: &sync.Mutex{}, lines: map[string]int{}, attrs: map[string][]slog.Attr{}}
}

func (h lineCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h lineCounter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h lineCounter) WithGroup(string) slog.Handler            { return h }
func (h lineCounter) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines[r.Message]++
	var as []slog.Attr
	r.Attrs(func(a slog.Attr) bool { as = append(as, a); return true })
	h.attrs[r.Message] = as
	return nil
}

// matching counts the lines whose message contains s.
func (h lineCounter) matching(s string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for m, k := range h.lines {
		if strings.Contains(m, s) {
			n += k
		}
	}
	return n
}

// counter is the sum of a counter's series in reg.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestDiskFull runs a node whose store's disk fills up (every Pebble
// write fails with ENOSPC, injected with Pebble's errorfs) while clients
// submit, then empties it. While full: transactions are still accepted
// (the log has them) but none gets a committed receipt, /readyz fails on
// "storage", rustorium_storage_errors_total grows, and the errors are
// logged at most about once a second. Once the disk has room, the node
// commits again without a restart: every accepted transaction commits
// with a proof, /readyz passes, and a store reopened afterwards holds the
// receipts of all of them. In the second run only syncs fail: a block's
// batch then reaches the disk although its commit failed, and the node
// finds it committed when the store reopens.
func TestDiskFull(t *testing.T) {
	for _, c := range []struct {
		name string
		ops  func(errorfs.Op) bool
	}{
		{"writes", func(op errorfs.Op) bool { return op.Kind.ReadOrWrite() == errorfs.OpIsWrite }},
		{"syncs", func(op errorfs.Op) bool { return op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData }},
	} {
		t.Run(c.name, func(t *testing.T) { diskFull(t, c.ops) })
	}
}

func diskFull(t *testing.T, ops func(errorfs.Op) bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	full := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if ops(op) {
			return fmt.Errorf("%w (injected)", syscall.ENOSPC)
		}
		return nil
	})}
	lines, reg := newLineCounter(), prometheus.NewRegistry()
	var seed [32]byte
	seed[0] = 1
	n, err := node.New(ctx, node.Config{
		ChainID: chain, Key: ed25519.NewKeyFromSeed(seed[:]), Shards: 2, DataDir: dir,
		Storage: storage.Options{FS: errorfs.Wrap(vfs.Default, full)}, Logger: slog.New(lines), Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := retry.Poll(ctx, 10*time.Millisecond, 10*time.Second, func() (bool, error) {
		return health.Failing(n.Ready(ctx)) == nil, nil
	}); err != nil {
		t.Fatalf("never ready: %v %+v", err, health.Failing(n.Ready(ctx)))
	}
	submitPuts(t, ctx, n, 20, "before")

	full.On()
	began := time.Now()
	c, err := p2p.Dial(ctx, n.Addr().String(), p2p.ClientConfig{ServerKey: n.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const during = 30
	var (
		wg        sync.WaitGroup
		recovered atomic.Bool // set once the disk has room again
		early     atomic.Int32
		errs      = make(chan error, during)
		accepted  = make(chan struct{}, during)
		ids       []tx.ID
	)
	for i := range during {
		x, raw := signedPut(100+i, "during")
		ids = append(ids, tx.IDOf(raw))
		wg.Add(1)
		go func() {
			defer wg.Done()
			call, err := c.Submit(ctx, raw)
			if err == nil {
				_, err = call.Accepted()
			}
			if err != nil {
				errs <- fmt.Errorf("submit while the disk is full: %w", err)
				return
			}
			accepted <- struct{}{}
			com, err := call.Committed()
			if !recovered.Load() {
				early.Add(1)
			}
			switch {
			case err != nil:
			case com.Status != p2p.StatusOK:
				err = fmt.Errorf("receipt %+v", com)
			case !com.Superseded:
				err = storage.VerifyProofBytes(com.Root, state.PutKey(x.Key), x.Value, com.Proof)
			}
			errs <- err
		}()
	}
	for range during {
		select {
		case <-accepted:
		case err := <-errs:
			t.Fatal(err)
		case <-ctx.Done():
			t.Fatal("transactions not accepted while the disk is full")
		}
	}
	// The store fails, /readyz says so, the errors are counted.
	if err := retry.Poll(ctx, 10*time.Millisecond, 10*time.Second, func() (bool, error) {
		return counter(t, reg, "rustorium_storage_errors_total") >= 10, nil
	}); err != nil {
		t.Fatalf("storage errors counted: %v", counter(t, reg, "rustorium_storage_errors_total"))
	}
	// The storage check fails naming the cause. (A shard may also be
	// "not led" for a moment: a leader whose store is down gives up its
	// shards and joins again.) No shard pipeline stops.
	failing := health.Failing(n.Ready(ctx))
	if len(failing) == 0 || failing[0].Name != "storage" || !strings.Contains(failing[0].Error, "no space left") {
		t.Fatalf("readiness with a full disk: failing %+v, want storage, naming the disk full", failing)
	}
	for _, c := range failing[1:] {
		if strings.Contains(c.Error, "stopped") {
			t.Fatalf("readiness with a full disk: %+v", failing)
		}
	}
	errCount := counter(t, reg, "rustorium_storage_errors_total")
	logged := lines.matching("storage failed")
	if limit := 3 * (int(time.Since(began)/time.Second) + 1); logged == 0 || logged > limit || float64(logged) >= errCount {
		t.Fatalf("%d storage error lines for %v errors in %v: want 1..%d, rate-limited", logged, errCount, time.Since(began), limit)
	}

	t.Logf("while full for %v: %v storage errors, %d lines logged; readiness: %+v", time.Since(began).Round(time.Millisecond), errCount, logged, failing)
	recovered.Store(true)
	full.Off()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if k := early.Load(); k > 0 {
		t.Fatalf("%d committed receipts (or ends) while the disk was full", k)
	}
	// Ready again (after Pebble's own errors, if it logged any, are 10s
	// old).
	if err := retry.Poll(ctx, 20*time.Millisecond, 15*time.Second, func() (bool, error) {
		return health.Failing(n.Ready(ctx)) == nil, nil
	}); err != nil {
		t.Fatalf("after recovery, failing %+v", health.Failing(n.Ready(ctx)))
	}
	if lines.matching("storage recovered") != 1 {
		t.Fatalf("recovery logged %d times, want once", lines.matching("storage recovered"))
	}
	t.Logf("blocks found committed on reopen although their commit failed: %d", lines.matching("reached the disk whole"))
	submitPuts(t, ctx, n, 10, "after")
	c.Close()
	n.Close()

	// Nothing acknowledged is lost: the store, reopened, holds every receipt.
	db, err := storage.Open(filepath.Join(dir, "state"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, id := range ids {
		if _, err := db.Receipt(id); err != nil {
			t.Fatalf("transaction %d, committed after the disk had room, not in the reopened store: %v", i, err)
		}
	}
}

// TestNoSyncWALStallRecovers fails the WAL writes of a node whose store
// does not sync (ENOSPC, injected with errorfs while the toggle is on).
// The store stalls instead of failing (its WAL writes are retried:
// storage.ErrStalled), so the node keeps running — it does not fail on Err
// as it did when the store wedged — while /readyz fails on "storage",
// naming the full disk, and the stall is counted in
// rustorium_storage_errors_total. Once the disk has room, the node is
// ready again without a restart and commits every transaction submitted
// during the stall and after it.
func TestNoSyncWALStallRecovers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	full := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		// Not a WAL's close, which the store cannot retry (it ignores its
		// failure): this test is about the writes.
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite && op.Kind != errorfs.OpFileClose && strings.HasSuffix(op.Path, ".log") {
			return fmt.Errorf("%w (injected)", syscall.ENOSPC)
		}
		return nil
	})}
	var seed [32]byte
	seed[0] = 2
	lines, reg := newLineCounter(), prometheus.NewRegistry()
	n, err := node.New(ctx, node.Config{
		ChainID: chain, Key: ed25519.NewKeyFromSeed(seed[:]), Shards: 1, DataDir: t.TempDir(),
		Storage: storage.Options{FS: errorfs.Wrap(vfs.Default, full), NoSync: true}, Logger: slog.New(lines), Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	submitPuts(t, ctx, n, 5, "before")
	nodeUp := func(when string) {
		t.Helper()
		select {
		case err := <-n.Err():
			t.Fatalf("%s: the node failed: %v", when, err)
		default:
		}
	}

	full.On()
	c, err := p2p.Dial(ctx, n.Addr().String(), p2p.ClientConfig{ServerKey: n.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const during = 20
	errs := make(chan error, during)
	for i := range during {
		x, raw := signedPut(200+i, "during")
		go func() { errs <- submitAndVerify(ctx, c, x, raw) }()
	}
	// The store stalls: /readyz fails on storage, naming the full disk.
	var failing []health.Check
	if err := retry.Poll(ctx, 10*time.Millisecond, 20*time.Second, func() (bool, error) {
		failing = health.Failing(n.Ready(ctx))
		return len(failing) > 0 && failing[0].Name == "storage", nil
	}); err != nil {
		t.Fatalf("readiness with the WAL failing: %+v, want storage failing", failing)
	}
	if !strings.Contains(failing[0].Error, "no space left") || !strings.Contains(failing[0].Error, "stalled") {
		t.Fatalf("readiness with the WAL failing: %+v, want a stall naming the full disk", failing)
	}
	if got := counter(t, reg, "rustorium_storage_errors_total"); got < 1 {
		t.Fatalf("storage errors counted while the WAL stalls: %v", got)
	}
	if lines.matching("storage stalled") == 0 {
		t.Fatal("the stall is not logged")
	}
	time.Sleep(200 * time.Millisecond) // the node does not fail meanwhile
	nodeUp("while the WAL stalls")
	t.Logf("while the WAL stalls: %+v", failing)

	full.Off() // space returns
	for range during {
		if err := <-errs; err != nil {
			t.Fatalf("a transaction submitted during the stall: %v", err)
		}
	}
	if err := retry.Poll(ctx, 20*time.Millisecond, 20*time.Second, func() (bool, error) {
		return health.Failing(n.Ready(ctx)) == nil, nil
	}); err != nil {
		t.Fatalf("after the disk has room, failing %+v", health.Failing(n.Ready(ctx)))
	}
	if lines.matching("storage recovered") != 1 {
		t.Fatalf("recovery logged %d times, want once", lines.matching("storage recovered"))
	}
	submitPuts(t, ctx, n, 10, "after")
	nodeUp("after the stall")
}
