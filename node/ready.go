package node

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rustorium/rustorium/node/health"
	"github.com/rustorium/rustorium/node/metrics"
	"github.com/rustorium/rustorium/node/storage"
)

// readiness is what the node's readiness checks read besides its parts:
// whether it runs, and the shards whose pipeline stopped.
type readiness struct {
	mu      sync.Mutex
	running bool
	ctx     context.Context // Start's: ended, the node no longer runs
	stopped map[uint32]error
}

func (r *readiness) start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running, r.ctx = true, ctx
}

func (r *readiness) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running = false
}

func (r *readiness) shardStopped(shard uint32, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped == nil {
		r.stopped = make(map[uint32]error)
	}
	r.stopped[shard] = err
}

// state is whether the node runs, and why a shard stopped (nil if it
// did not).
func (r *readiness) state(shard uint32) (running bool, stopped error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running && r.ctx.Err() == nil, r.stopped[shard]
}

// appendStall is how long appends may go unanswered before the broker
// check fails.
const appendStall = 10 * time.Second

// readyTimeout bounds the checks that ask the broker or the disk.
const readyTimeout = 2 * time.Second

// Ready runs the node's readiness checks: it can take writes when every
// one passes. They are, in order: "started" (Start ran, and neither Close
// nor the end of Start's context stopped it), "paused" (not Paused),
// "broker" (the producer's broker answers a ping, appends in flight were
// answered in the last 10s, and the last append answered in the last 10s
// did not fail), "storage" (the store takes a synced write, found no
// corrupted table, and Pebble reported no error in the last 10s) and, for
// every shard, "shard N" (its pipeline runs, it is not halted after a
// divergence, and, in a cluster of this node alone, the node leads it: no
// other node can). The broker and storage checks give up after 2s or when
// ctx ends. Failing lists the failed ones.
func (n *Node) Ready(ctx context.Context) []health.Check {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	check := func(name string, err error) health.Check {
		if err != nil {
			return health.Check{Name: name, Error: err.Error()}
		}
		return health.Check{Name: name, OK: true}
	}
	running, _ := n.ready.state(0)
	var checks []health.Check
	if running {
		checks = append(checks, check("started", nil))
	} else {
		checks = append(checks, check("started", fmt.Errorf("the node is not running")))
	}
	var paused error
	if n.gate.paused() {
		paused = fmt.Errorf("the node is paused")
	}
	broker := n.prod.Ping(ctx)
	if n, since, stalled := n.prod.Stalled(appendStall); broker == nil && stalled {
		broker = fmt.Errorf("%d appends unanswered for %v", n, since.Round(time.Millisecond))
	}
	if err := n.appends.failing(appendStall); broker == nil && err != nil {
		broker = err
	}
	checks = append(checks, check("paused", paused), check("broker", broker), check("storage", n.db.Probe()))
	alone := len(n.cfg.validators()) == 1
	leading := n.Leading()
	for s := range uint32(n.cfg.Shards) {
		_, stopped := n.ready.state(s)
		switch {
		case n.Halted(s):
			stopped = fmt.Errorf("halted: its state root diverged from the quorum's")
		case stopped != nil:
			stopped = fmt.Errorf("its pipeline stopped: %w", stopped)
		case alone && !slices.Contains(leading, s):
			stopped = fmt.Errorf("not led: this node, the only validator, does not lead it (yet)")
		}
		checks = append(checks, check("shard "+strconv.Itoa(int(s)), stopped))
	}
	if health.Failing(checks) == nil {
		n.metrics.Ready.Set(1)
	} else {
		n.metrics.Ready.Set(0)
	}
	return checks
}

// readyEvery is how often a running node refreshes its rustorium_ready
// gauge.
const readyEvery = 5 * time.Second

// watchStorage makes the store report its failures to the node: each
// counts in rustorium_storage_errors_total{op} and is logged at most once
// a second per op (a full disk fails every write; the next line says how
// many were suppressed), and the store's recovery (a reopen, or a stalled
// WAL written again) is logged once. OnError
// and OnRecover hooks already in opts are still called.
func (n *Node) watchStorage(opts *storage.Options) error {
	errs, err := metrics.NewStorageErrors(n.cfg.Registerer)
	if err != nil {
		return fmt.Errorf("node: metrics: %w", err)
	}
	onError, onRecover := opts.OnError, opts.OnRecover
	opts.OnError = func(op string, err error) {
		errs.WithLabelValues(op).Inc()
		switch op {
		case "pebble":
			n.rlog.logAt(slog.LevelError, "storage "+op, "pebble error", "err", err)
		case "corruption":
			n.rlog.logAt(slog.LevelError, "storage "+op, "ALARM: the store is corrupted: /readyz fails; restore the data directory", "err", err)
		case "wal":
			n.rlog.logAt(slog.LevelError, "storage "+op, "storage stalled: the store's WAL cannot be written (storage sync off); commits wait and /readyz fails until it can, retried", "err", err)
		default:
			n.rlog.logAt(slog.LevelError, "storage "+op, "storage failed: the node commits nothing and /readyz fails until the store takes writes again", "op", op, "err", err)
		}
		if onError != nil {
			onError(op, err)
		}
	}
	opts.OnRecover = func(cause error) {
		suppressed := 0
		for _, op := range metrics.StorageOps {
			suppressed += n.rlog.flush("storage " + op)
		}
		n.log.Warn("storage recovered: the store takes writes again", "cause", cause, "suppressed", suppressed)
		if onRecover != nil {
			onRecover(cause)
		}
	}
	return nil
}

// appendHealth remembers whether the log's last answer to an append was
// an error: a broker that answers pings but refuses every append (its
// disk is full: UNKNOWN_SERVER_ERROR) cannot take writes either.
type appendHealth struct {
	mu          sync.Mutex
	okAt, errAt time.Time
	err         error
	failedSince int // appends failed since the last that succeeded
}

func (a *appendHealth) done(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		a.okAt, a.failedSince = time.Now(), 0
		return
	}
	a.errAt, a.err = time.Now(), err
	a.failedSince++
}

// failing returns an error if the last append answered failed, less than
// within ago.
func (a *appendHealth) failing(within time.Duration) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err == nil || a.errAt.Before(a.okAt) || time.Since(a.errAt) > within {
		return nil
	}
	return fmt.Errorf("the last %d appends failed, the last %v ago: %w", a.failedSince, time.Since(a.errAt).Round(time.Millisecond), a.err)
}
