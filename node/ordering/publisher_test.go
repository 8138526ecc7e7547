package ordering_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/node/ordering"
)

// txnOffsetCommitKey is the Kafka API key of TxnOffsetCommit.
const txnOffsetCommitKey = 28

// trapDialer is a dialGate that cuts the node off the moment it writes a
// request with a given API key (franz-go writes each request in one Write):
// a leader dying in the middle of its transaction, after its block reached
// the broker but before its offsets did.
type trapDialer struct {
	*dialGate
	armed  atomic.Bool
	sprung chan struct{}
	key    uint16
}

func newTrapDialer(key uint16) *trapDialer {
	return &trapDialer{dialGate: newDialGate(), sprung: make(chan struct{}), key: key}
}

func (d *trapDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	c, err := d.dialGate.dial(ctx, network, host)
	if err != nil {
		return nil, err
	}
	return &trapConn{Conn: c, d: d}, nil
}

type trapConn struct {
	net.Conn
	d *trapDialer
}

func (c *trapConn) Write(b []byte) (int, error) {
	if len(b) >= 6 && binary.BigEndian.Uint16(b[4:6]) == c.d.key && c.d.armed.CompareAndSwap(true, false) {
		c.d.cut()
		close(c.d.sprung)
		return 0, net.ErrClosed
	}
	return c.Conn.Write(b)
}

// blockValue is the test's block: the tx offset range it covers.
func blockValue(first, last int64) []byte { return fmt.Appendf(nil, "%d-%d", first, last) }

// leaderRound polls once and publishes one block per shard covering every
// polled record. It returns whether it published anything and the result.
func leaderRound(ctx context.Context, pub *ordering.Publisher) (polled bool, committed bool, err error) {
	pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	batches, err := pub.Poll(pctx, 50)
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return false, false, nil
		}
		return false, false, err
	}
	var outs []ordering.Output
	for _, b := range batches {
		first, last := b.Records[0].Offset, b.Records[len(b.Records)-1].Offset
		outs = append(outs, ordering.Output{Stream: ordering.Blocks, Shard: b.Shard, Value: blockValue(first, last)})
	}
	committed, err = pub.Publish(ctx, outs)
	return true, committed, err
}

// coverage reads the committed blocks of every shard and checks that they
// cover tx offsets 0.. contiguously, each exactly once; it returns how far
// each shard is covered.
func coverage(t *testing.T, cfg ordering.Config, cons []*ordering.Consumer, covered []int64) {
	t.Helper()
	for s, c := range cons {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		recs, err := c.Poll(ctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("reading blocks of shard %d: %v", s, err)
		}
		for _, r := range recs {
			first, last, ok := strings.Cut(string(r.Value), "-")
			f, err1 := strconv.ParseInt(first, 10, 64)
			l, err2 := strconv.ParseInt(last, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				t.Fatalf("shard %d: bad block %q", s, r.Value)
			}
			if f != covered[s] || l < f {
				t.Fatalf("shard %d: block at offset %d covers txs %d-%d, but txs up to %d were already covered: lost or duplicated",
					s, r.Offset, f, l, covered[s]-1)
			}
			covered[s] = l + 1
		}
	}
}

func pubCfg(base ordering.Config, node string) ordering.PublisherConfig {
	return ordering.PublisherConfig{
		Config:             base,
		NodeID:             node,
		SessionTimeout:     time.Second,
		RebalanceTimeout:   5 * time.Second,
		TransactionTimeout: 3 * time.Second,
	}
}

// TestPublisherExactlyOnce runs one leader over two shards while txs keep
// arriving: every tx ends up in exactly one committed block, in order.
func TestPublisherExactlyOnce(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		const shards, perShard = 2, 120
		cfg := testCfg(t, brokers, shards)
		ctx := ctxT(t, 90*time.Second)
		var assigned atomic.Int32
		pc := pubCfg(cfg, "solo")
		pc.OnAssigned = func(s []uint32) { assigned.Add(int32(len(s))) }
		pub, err := ordering.OpenPublisher(ctx, pc)
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()

		p := openProducer(t, cfg)
		for i := range perShard {
			for s := range uint32(shards) {
				if _, err := p.Append(ctx, s, nil, val(s, i)); err != nil {
					t.Fatal(err)
				}
			}
		}
		cons := make([]*ordering.Consumer, shards)
		for s := range cons {
			cons[s], err = ordering.OpenConsumer(ctx, cfg, ordering.Blocks, uint32(s), 0)
			if err != nil {
				t.Fatal(err)
			}
			defer cons[s].Close()
		}
		covered := make([]int64, shards)
		for covered[0] < perShard || covered[1] < perShard {
			if ctx.Err() != nil {
				t.Fatalf("timed out with coverage %v", covered)
			}
			if _, _, err := leaderRound(ctx, pub); err != nil {
				t.Fatal(err)
			}
			coverage(t, cfg, cons, covered)
		}
		// A real broker may rebalance the one-member group more than once
		// (the callback then sees a shard again): each shard at least once.
		if got := pub.Assigned(); len(got) != shards || assigned.Load() < shards || assigned.Load()%shards != 0 {
			t.Fatalf("Assigned = %v (callback saw %d), want all %d shards", got, assigned.Load(), shards)
		}
		// The group's position is where the last block ends: every
		// appended tx of shard 0 was covered.
		if end, err := pub.ConsumedOffset(ctx, 0); err != nil || end < perShard {
			t.Fatalf("ConsumedOffset(0) = %d, %v; want at least %d", end, err, perShard)
		}
		if _, err := pub.Publish(ctx, []ordering.Output{{Stream: ordering.Blocks, Shard: 9}}); !errors.Is(err, ordering.ErrShardOutOfRange) {
			t.Fatalf("Publish to shard 9: %v, want ErrShardOutOfRange", err)
		}
	})
}

// leaderLoop runs a leader in the background the way a node does: rounds
// until stopped, and after an error (the Publisher is then unusable) a
// fresh Publisher with the same NodeID, which fences the old one.
type leaderLoop struct {
	pub     atomic.Pointer[ordering.Publisher]
	reopens atomic.Int32
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startLeader(ctx context.Context, t *testing.T, cfg ordering.PublisherConfig, pub *ordering.Publisher) *leaderLoop {
	l := &leaderLoop{stop: make(chan struct{})}
	l.pub.Store(pub)
	l.wg.Go(func() {
		defer func() { l.pub.Load().Close() }()
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			if _, _, err := leaderRound(ctx, l.pub.Load()); err != nil {
				if ctx.Err() != nil {
					return
				}
				t.Logf("leader %s: %v; reopening", cfg.NodeID, err)
				l.pub.Load().Close()
				np, err := ordering.OpenPublisher(ctx, cfg)
				if err != nil {
					t.Errorf("reopening leader %s: %v", cfg.NodeID, err)
					return
				}
				l.pub.Store(np)
				l.reopens.Add(1)
			}
		}
	})
	return l
}

func (l *leaderLoop) halt() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// TestPublisherFailoverFencesZombie runs two leaders, one shard each. Leader
// "a" is cut off in the middle of a transaction (its block already on the
// broker, its offsets not), so the group gives its shard to "b". b must
// redo a's work; a's half-done block must never become visible; and when a
// comes back, its transaction must not commit. a then restarts as a node
// would and rejoins. Every tx is covered by exactly one committed block.
func TestPublisherFailoverFencesZombie(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		const shards = 2
		cfg := testCfg(t, brokers, shards)
		ctx := ctxT(t, 120*time.Second)

		trap := newTrapDialer(txnOffsetCommitKey)
		aCfg := pubCfg(cfg, "a")
		aCfg.Dialer = trap.dial
		a, err := ordering.OpenPublisher(ctx, aCfg)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { a.Close() }()
		defer trap.reopen() // before a.Close, or Close waits on a held dial
		bCfg := pubCfg(cfg, "b")
		b0, err := ordering.OpenPublisher(ctx, bCfg)
		if err != nil {
			t.Fatal(err)
		}

		// Txs arrive steadily on both shards until told to stop.
		p := openProducer(t, cfg)
		var produced [shards]atomic.Int64
		stopTx := make(chan struct{})
		var txWG sync.WaitGroup
		txWG.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stopTx:
					return
				case <-time.After(2 * time.Millisecond):
				}
				for s := range uint32(shards) {
					if _, err := p.Append(ctx, s, nil, val(s, i)); err != nil {
						t.Errorf("append: %v", err)
						return
					}
					produced[s].Add(1)
				}
			}
		})
		stopTxs := sync.OnceFunc(func() { close(stopTx); txWG.Wait() })
		defer stopTxs()

		// b leads in the background for the whole test.
		b := startLeader(ctx, t, bCfg, b0)
		defer b.halt()

		// a leads until the group has given each node a shard and a
		// has committed a few blocks; then its next transaction is cut
		// off at TxnOffsetCommit.
		aCommits := 0
		for aCommits < 3 || len(a.Assigned()) != 1 || len(b.pub.Load().Assigned()) != 1 {
			if ctx.Err() != nil {
				t.Fatalf("group never settled: a leads %v, b leads %v", a.Assigned(), b.pub.Load().Assigned())
			}
			polled, committed, err := leaderRound(ctx, a)
			if err != nil {
				t.Logf("leader a: %v; reopening", err)
				a.Close()
				if a, err = ordering.OpenPublisher(ctx, aCfg); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if polled && committed {
				aCommits++
			}
		}
		aShard := a.Assigned()[0]
		trap.armed.Store(true)
		type result struct {
			committed bool
			err       error
		}
		aDone := make(chan result, 1)
		go func() {
			for {
				polled, committed, err := leaderRound(ctx, a)
				if polled || err != nil {
					aDone <- result{committed, err}
					return
				}
			}
		}()
		select {
		case <-trap.sprung:
		case r := <-aDone:
			t.Fatalf("leader a finished its transaction without reaching TxnOffsetCommit: %+v", r)
		case <-ctx.Done():
			t.Fatal("the trap never sprang")
		}
		t.Logf("%s: leader a cut off mid-transaction on shard %d", kind, aShard)

		// b takes over a's shard and catches up with everything.
		cons := make([]*ordering.Consumer, shards)
		for s := range cons {
			cons[s], err = ordering.OpenConsumer(ctx, cfg, ordering.Blocks, uint32(s), 0)
			if err != nil {
				t.Fatal(err)
			}
			defer cons[s].Close()
		}
		covered := make([]int64, shards)
		cutAt := time.Now()
		target := [shards]int64{produced[0].Load() + 20, produced[1].Load() + 20}
		for covered[0] < target[0] || covered[1] < target[1] {
			if ctx.Err() != nil {
				t.Fatalf("b never caught up: covered %v of %v; b leads %v", covered, target, b.pub.Load().Assigned())
			}
			coverage(t, cfg, cons, covered)
		}
		t.Logf("%s: shard %d covered again %v after the cut (b leads %v)", kind, aShard, time.Since(cutAt).Round(time.Millisecond), b.pub.Load().Assigned())

		// a comes back: its transaction must not commit.
		trap.reopen()
		select {
		case r := <-aDone:
			if r.committed {
				t.Fatalf("the cut-off leader's transaction committed")
			}
			t.Logf("%s: leader a's transaction ended: committed=false err=%v", kind, r.err)
			if r.err != nil {
				// As a node would: drop the broken Publisher and
				// rejoin with a fresh one.
				a.Close()
				if a, err = ordering.OpenPublisher(ctx, aCfg); err != nil {
					t.Fatal(err)
				}
			}
		case <-ctx.Done():
			t.Fatal("leader a's Publish never returned")
		}
		aLoop := startLeader(ctx, t, aCfg, a)
		a = nil
		defer aLoop.halt()
		defer func() { a = aLoop.pub.Load() }()

		// Let everything settle and check coverage once more: a's
		// aborted block must not have appeared in between.
		stopTxs()
		for covered[0] < produced[0].Load() || covered[1] < produced[1].Load() {
			if ctx.Err() != nil {
				t.Fatalf("final coverage %v of %d,%d; a leads %v, b leads %v", covered, produced[0].Load(), produced[1].Load(),
					aLoop.pub.Load().Assigned(), b.pub.Load().Assigned())
			}
			coverage(t, cfg, cons, covered)
		}
		// Nothing beyond the produced txs either.
		time.Sleep(300 * time.Millisecond)
		coverage(t, cfg, cons, covered)
		if covered[0] != produced[0].Load() || covered[1] != produced[1].Load() {
			t.Fatalf("covered %v, produced %d,%d", covered, produced[0].Load(), produced[1].Load())
		}
		t.Logf("%s: %d+%d txs, each in exactly one block; reopens: a %d, b %d", kind, covered[0], covered[1], aLoop.reopens.Load(), b.reopens.Load())
	})
}
