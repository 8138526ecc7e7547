package calib

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rustorium/rustorium/node/ordering"
)

// OrderingOptions configures OrderingCPU.
type OrderingOptions struct {
	// Log reaches the broker as a node does (brokers, dialer). Its
	// TopicPrefix is extended with "ordering-" and Shards set to 1, so the
	// rounds have topics, a leaders' group and a transactional id of
	// their own; the topics are deleted afterwards. Wire is not counted.
	Log ordering.Config
	// RecordSize is the size of a transaction's record in bytes. A block's
	// record holds its transactions' records and 200 bytes of header.
	RecordSize int
	// WideTxs is how many transactions the wide round holds. Zero means
	// 8; at least 2.
	WideTxs int
	// Rounds is how many rounds of each kind one repetition times. Zero
	// means 100.
	Rounds int
	// Reps is how many times each kind of rounds is timed, the kinds in
	// turn; the least CPU a round of each kind counts, since other work
	// in the process only adds to it. Zero means 3.
	Reps int
	// Timeout bounds the whole measurement, joining the leaders' group
	// included. Zero means 30 s.
	Timeout time.Duration
}

func (o *OrderingOptions) ensureDefaults() {
	if o.WideTxs == 0 {
		o.WideTxs = 8
	}
	o.WideTxs = max(o.WideTxs, 2)
	if o.Rounds <= 0 {
		o.Rounds = 100
	}
	if o.Reps <= 0 {
		o.Reps = 3
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
}

// Ordering is what OrderingCPU measured: the CPU the log's work costs a
// shard leader's round, split into what a round costs whatever it holds
// and what each transaction adds.
type Ordering struct {
	// Narrow and Wide are the CPU of a round of one transaction and of
	// WideTxs transactions (the least over the repetitions).
	Narrow, Wide time.Duration
	WideTxs      int
	// Round is the CPU a round costs beside its transactions, Tx what
	// each transaction adds (Narrow = Round + Tx, Wide = Round + WideTxs
	// × Tx; neither below zero).
	Round, Tx time.Duration
}

// PerTx is the CPU a transaction's share of the log's work costs in rounds
// of txsPerRound transactions on average (at least 1): Tx + Round /
// txsPerRound.
func (o Ordering) PerTx(txsPerRound float64) time.Duration {
	return o.Tx + time.Duration(float64(o.Round)/max(txsPerRound, 1))
}

// ErrOrderingRound reports a round of OrderingCPU that the broker aborted
// (its leaders' group rebalanced, or it was fenced).
var ErrOrderingRound = errors.New("calib: ordering round aborted")

// OrderingCPU measures the process CPU of the Kafka work a shard's
// transactions and blocks cost the way a node does it, with the node's own
// clients (ordering.Producer, ordering.Publisher): a round appends its
// transactions (each acknowledged, appended together), the leader polls
// them, and publishes one block holding them in a Kafka transaction that
// commits the consumed offset. The rounds run back to back, so the CPU is
// the work's, not the wake-ups of an idle process between paced rounds;
// with an embedded broker in this process the broker's work is in it, and
// the replica's read of the block is not (a node's replicas take their own
// leader's blocks in process). Rounds of one transaction and of
// opts.WideTxs separate a round's cost from a transaction's.
//
// Untimed: creating the topics, joining the leaders' group, ten rounds of
// each kind to warm the connections.
func OrderingCPU(ctx context.Context, opts OrderingOptions) (Ordering, error) {
	opts.ensureDefaults()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	cfg := opts.Log
	cfg.TopicPrefix += "ordering-"
	cfg.Shards, cfg.Wire = 1, nil
	if _, err := ordering.EnsureTopics(ctx, cfg); err != nil {
		return Ordering{}, err
	}
	defer func() {
		// Leave a real broker as it was; the topics are the floor's own.
		dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer dcancel()
		_ = ordering.DeleteTopics(dctx, cfg)
	}()
	prod, err := ordering.Open(ctx, cfg)
	if err != nil {
		return Ordering{}, err
	}
	defer prod.Close()
	assigned := make(chan struct{})
	var once sync.Once
	pub, err := ordering.OpenPublisher(ctx, ordering.PublisherConfig{Config: cfg, NodeID: "floor",
		OnAssigned: func([]uint32) { once.Do(func() { close(assigned) }) }})
	if err != nil {
		return Ordering{}, err
	}
	defer pub.Close()
	select {
	case <-assigned:
	case <-ctx.Done():
		return Ordering{}, fmt.Errorf("calib: ordering: joining the leaders' group: %w", ctx.Err())
	}

	record := make([]byte, max(opts.RecordSize, 1))
	round := func(txs int) error {
		var wg sync.WaitGroup
		errs := make([]error, txs)
		for i := range txs {
			wg.Add(1)
			prod.AppendAsync(ctx, 0, nil, record, func(_ int64, err error) {
				errs[i] = err
				wg.Done()
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		for got := 0; got < txs; {
			batches, err := pub.Poll(ctx, 0)
			if err != nil {
				return err
			}
			for _, b := range batches {
				got += len(b.Records)
			}
		}
		block := make([]byte, 200+txs*len(record))
		ok, err := pub.Publish(ctx, []ordering.Output{{Stream: ordering.Blocks, Value: block}})
		if err == nil && !ok {
			err = ErrOrderingRound
		}
		return err
	}
	out := Ordering{WideTxs: opts.WideTxs}
	for _, txs := range []int{1, opts.WideTxs} {
		warm := func() error { return round(txs) }
		if _, err := CallCPU(ctx, 10, 1, warm); err != nil {
			return Ordering{}, fmt.Errorf("calib: ordering: %w", err)
		}
	}
	// The kinds alternate, so that both see the process as it is.
	for r := range opts.Reps {
		n, err := CallCPU(ctx, opts.Rounds, 1, func() error { return round(1) })
		if err != nil {
			return Ordering{}, fmt.Errorf("calib: ordering: %w", err)
		}
		w, err := CallCPU(ctx, opts.Rounds, 1, func() error { return round(opts.WideTxs) })
		if err != nil {
			return Ordering{}, fmt.Errorf("calib: ordering: %w", err)
		}
		if r == 0 || n < out.Narrow {
			out.Narrow = n
		}
		if r == 0 || w < out.Wide {
			out.Wide = w
		}
	}
	out.Tx = max(0, (out.Wide-out.Narrow)/time.Duration(opts.WideTxs-1))
	out.Round = max(0, out.Narrow-out.Tx)
	return out, nil
}

// CallCPU calls call n times back to back, reps times over, and returns
// the least of the reps' mean process CPU time a call (user and system,
// every thread: the work of whatever goroutines the call sets going
// included; wall time where getrusage is missing). It stops at the first
// error, or when ctx ends. n and reps below 1 count as 1.
func CallCPU(ctx context.Context, n, reps int, call func() error) (time.Duration, error) {
	n, reps = max(n, 1), max(reps, 1)
	var least time.Duration
	for r := range reps {
		c0 := cpuClock()
		for range n {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			if err := call(); err != nil {
				return 0, err
			}
		}
		if d := (cpuClock() - c0) / time.Duration(n); r == 0 || d < least {
			least = d
		}
	}
	return least, nil
}
