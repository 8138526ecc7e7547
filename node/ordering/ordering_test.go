package ordering_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/node/ordering"
)

// testCfg returns a layout with a prefix unique to t, its topics created.
func testCfg(t *testing.T, brokers []string, shards int) ordering.Config {
	t.Helper()
	cfg := ordering.Config{Brokers: brokers, TopicPrefix: kafkatest.Prefix(t), Shards: shards}
	if _, err := ordering.EnsureTopics(ctxT(t, 60*time.Second), cfg); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	return cfg
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func openProducer(t *testing.T, cfg ordering.Config) *ordering.Producer {
	t.Helper()
	p, err := ordering.Open(ctxT(t, 30*time.Second), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

func openConsumer(t *testing.T, cfg ordering.Config, shard uint32, from int64) *ordering.Consumer {
	t.Helper()
	c, err := ordering.OpenConsumer(ctxT(t, 30*time.Second), cfg, ordering.Transactions, shard, from)
	if err != nil {
		t.Fatalf("OpenConsumer: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// readN polls until it has n records, failing the test after 30 s or on an
// error.
func readN(t *testing.T, c *ordering.Consumer, n int) []ordering.Record {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	var out []ordering.Record
	for len(out) < n {
		recs, err := c.PollMax(ctx, n-len(out))
		if err != nil {
			t.Fatalf("after %d of %d records: Poll: %v", len(out), n, err)
		}
		out = append(out, recs...)
	}
	return out
}

// expectNoMore checks that nothing else arrives within a short wait.
func expectNoMore(t *testing.T, c *ordering.Consumer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	recs, err := c.Poll(ctx)
	if len(recs) > 0 {
		t.Fatalf("unexpected extra records from offset %d (%d of them)", recs[0].Offset, len(recs))
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Poll after the last record: %v, want deadline exceeded", err)
	}
}

func val(shard uint32, i int) []byte { return fmt.Appendf(nil, "shard-%d-rec-%d", shard, i) }

func TestEnsureTopicsIdempotent(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		ctx := ctxT(t, 60*time.Second)
		cfg := ordering.Config{Brokers: brokers, TopicPrefix: kafkatest.Prefix(t), Shards: 3}

		created, err := ordering.EnsureTopics(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := cfg.Topics()
		slices.Sort(want)
		if !slices.Equal(created, want) {
			t.Fatalf("first EnsureTopics created %v, want %v", created, want)
		}
		again, err := ordering.EnsureTopics(ctx, cfg)
		if err != nil {
			t.Fatalf("second EnsureTopics: %v", err)
		}
		if len(again) != 0 {
			t.Fatalf("second EnsureTopics created %v, want nothing", again)
		}

		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		details, err := kadm.NewClient(cl).ListTopics(ctx, want...)
		if err != nil {
			t.Fatal(err)
		}
		for _, topic := range want {
			d := details[topic]
			if d.Err != nil || len(d.Partitions) != 1 {
				t.Errorf("topic %s: err %v, %d partitions; want 1 partition", topic, d.Err, len(d.Partitions))
			}
		}
		if got := cfg.Topic(ordering.Transactions, 2); got != cfg.TopicPrefix+"transactions-2" {
			t.Errorf("Topic(Transactions, 2) = %q", got)
		}

		// DeleteTopics removes the layout, and a second call (nothing
		// left) is no error.
		for i := range 2 {
			if err := ordering.DeleteTopics(ctx, cfg); err != nil {
				t.Fatalf("DeleteTopics #%d: %v", i+1, err)
			}
		}
		// A broker deletes topics in the background (Apache Kafka lists
		// them for a moment after it answered): wait until none is listed,
		// asking afresh each time (cl's metadata cache would answer).
		cl2, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.MetadataMinAge(10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer cl2.Close()
		for {
			details, err = kadm.NewClient(cl2).ListTopics(ctx, want...)
			if err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, topic := range want {
				if d, ok := details[topic]; ok && d.Err == nil {
					left = append(left, topic)
				}
			}
			if len(left) == 0 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("topics %v still listed after DeleteTopics", left)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func TestEnsureTopicsConcurrent(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		ctx := ctxT(t, 60*time.Second)
		cfg := ordering.Config{Brokers: brokers, TopicPrefix: kafkatest.Prefix(t), Shards: 4}
		const nodes = 3
		var wg sync.WaitGroup
		created := make([][]string, nodes)
		errs := make([]error, nodes)
		for i := range nodes {
			wg.Go(func() { created[i], errs[i] = ordering.EnsureTopics(ctx, cfg) })
		}
		wg.Wait()
		var all []string
		for i := range nodes {
			if errs[i] != nil {
				t.Fatalf("node %d: %v", i, errs[i])
			}
			all = append(all, created[i]...)
		}
		slices.Sort(all)
		want := cfg.Topics()
		slices.Sort(want)
		if !slices.Equal(all, want) {
			t.Fatalf("topics created across nodes: %v, want each of %v exactly once", all, want)
		}
	})
}

func TestEnsureTopicsLayoutMismatch(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		ctx := ctxT(t, 60*time.Second)
		cfg := ordering.Config{Brokers: brokers, TopicPrefix: kafkatest.Prefix(t), Shards: 2}
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		bad := cfg.Topic(ordering.Transactions, 1)
		resp, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, nil, bad)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("creating a 2-partition topic: %v", err)
		}
		if _, err := ordering.EnsureTopics(ctx, cfg); !errors.Is(err, ordering.ErrTopicLayout) {
			t.Fatalf("EnsureTopics with a 2-partition %s: %v, want ErrTopicLayout", bad, err)
		}
	})
}

func TestAppendOffsetsIncreasePerShard(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		const shards, per = 3, 15
		cfg := testCfg(t, brokers, shards)
		p := openProducer(t, cfg)
		ctx := ctxT(t, 60*time.Second)
		next := make([]int64, shards)
		for i := range per {
			for s := range uint32(shards) {
				off, err := p.Append(ctx, s, []byte("k"), val(s, i))
				if err != nil {
					t.Fatalf("Append shard %d #%d: %v", s, i, err)
				}
				// Fresh single-partition topics written without Kafka
				// transactions: offsets are 0, 1, 2, ... per shard.
				if off != next[s] {
					t.Fatalf("shard %d #%d: offset %d, want %d", s, i, off, next[s])
				}
				next[s]++
			}
		}
	})
}

func TestAppendAsyncOrderAndCompleteness(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		const shards, total = 4, 2000
		cfg := testCfg(t, brokers, shards)
		cfg.MaxBufferedRecords = 64 // exercise the back-pressure path
		p := openProducer(t, cfg)
		ctx := ctxT(t, 60*time.Second)

		type ack struct {
			seq int
			off int64
		}
		var mu sync.Mutex
		acks := make([][]ack, shards)
		var failed atomic.Int64
		var wg sync.WaitGroup
		for i := range total {
			s := uint32(i % shards)
			wg.Add(1)
			p.AppendAsync(ctx, s, nil, val(s, i), func(off int64, err error) {
				defer wg.Done()
				if err != nil {
					failed.Add(1)
					t.Errorf("record %d: %v", i, err)
					return
				}
				mu.Lock()
				acks[s] = append(acks[s], ack{i, off})
				mu.Unlock()
			})
		}
		wg.Wait()
		if failed.Load() > 0 {
			t.FailNow()
		}
		for s := range uint32(shards) {
			// Callbacks of one shard come in offset order, and the
			// offsets follow the order of the AppendAsync calls.
			for j, a := range acks[s] {
				if a.off != int64(j) {
					t.Fatalf("shard %d: callback %d has offset %d", s, j, a.off)
				}
				if j > 0 && a.seq < acks[s][j-1].seq {
					t.Fatalf("shard %d: record %d got offset %d after record %d", s, a.seq, a.off, acks[s][j-1].seq)
				}
			}
			if len(acks[s]) != total/shards {
				t.Fatalf("shard %d: %d acks, want %d", s, len(acks[s]), total/shards)
			}
			// And the log holds exactly those records in that order.
			recs := readN(t, openConsumer(t, cfg, s, 0), total/shards)
			for j, r := range recs {
				if r.Offset != int64(j) || string(r.Value) != string(val(s, acks[s][j].seq)) {
					t.Fatalf("shard %d offset %d: got (%d, %q), want %q", s, j, r.Offset, r.Value, val(s, acks[s][j].seq))
				}
			}
		}
	})
}

func TestConsumeFromOffset(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		cfg := testCfg(t, brokers, 2)
		p := openProducer(t, cfg)
		ctx := ctxT(t, 60*time.Second)
		const shard, n, from = 1, 50, 20
		for i := range n {
			if _, err := p.Append(ctx, shard, fmt.Appendf(nil, "key-%d", i), val(shard, i)); err != nil {
				t.Fatal(err)
			}
		}
		c := openConsumer(t, cfg, shard, from)
		if c.Next() != from {
			t.Fatalf("Next before polling = %d, want %d", c.Next(), from)
		}
		recs := readN(t, c, n-from)
		for j, r := range recs {
			i := from + j
			if r.Offset != int64(i) || string(r.Key) != fmt.Sprintf("key-%d", i) || string(r.Value) != string(val(shard, i)) {
				t.Fatalf("record %d: offset %d key %q value %q", i, r.Offset, r.Key, r.Value)
			}
			if r.Timestamp.IsZero() {
				t.Fatalf("record %d has no timestamp", i)
			}
		}
		if c.Next() != n {
			t.Fatalf("Next = %d, want %d", c.Next(), n)
		}
		expectNoMore(t, c)

		// The other shard's log is untouched.
		other := openConsumer(t, cfg, 0, ordering.FromStart)
		expectNoMore(t, other)

		// A record appended now is delivered to the waiting consumer.
		if _, err := p.Append(ctx, shard, nil, []byte("late")); err != nil {
			t.Fatal(err)
		}
		if late := readN(t, c, 1); late[0].Offset != n || string(late[0].Value) != "late" {
			t.Fatalf("late record: %+v", late[0])
		}
	})
}

// TestSetNext skips a consumer ahead past records it fetched and never
// returned (as a replica does that got a block's range from its own
// leader), and back: each Poll after a SetNext starts exactly at its offset.
func TestSetNext(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		cfg := testCfg(t, brokers, 1)
		p := openProducer(t, cfg)
		ctx := ctxT(t, 60*time.Second)
		const n = 40
		for i := range n {
			if _, err := p.Append(ctx, 0, nil, val(0, i)); err != nil {
				t.Fatal(err)
			}
		}
		c := openConsumer(t, cfg, 0, 0)
		if got := readN(t, c, 5); got[4].Offset != 4 {
			t.Fatalf("first read ends at %d, want 4", got[4].Offset)
		}
		// The consumer has fetched ahead of what it returned: a
		// SetNext drops that, forward and backward.
		for _, to := range []int64{30, 10, 39} {
			if err := c.SetNext(to); err != nil {
				t.Fatal(err)
			}
			if c.Next() != to {
				t.Fatalf("Next after SetNext(%d) = %d", to, c.Next())
			}
			got := readN(t, c, 1)
			if got[0].Offset != to || string(got[0].Value) != string(val(0, int(to))) {
				t.Fatalf("after SetNext(%d): record at %d %q", to, got[0].Offset, got[0].Value)
			}
		}
		expectNoMore(t, c)
		if err := c.SetNext(-1); !errors.Is(err, ordering.ErrConfig) {
			t.Fatalf("SetNext(-1) = %v, want ErrConfig", err)
		}
	})
}

// TestResumeAfterRestart appends, consumes part, closes both ends, and
// resumes from the stored Next: the two consumers together see every
// record exactly once, in order.
func TestResumeAfterRestart(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		cfg := testCfg(t, brokers, 1)
		ctx := ctxT(t, 60*time.Second)
		const shard = 0
		var got []ordering.Record
		var resume int64
		produced := 0
		for round := range 3 {
			p, err := ordering.Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for range 25 {
				if _, err := p.Append(ctx, shard, nil, val(shard, produced)); err != nil {
					t.Fatal(err)
				}
				produced++
			}
			p.Close()
			p.Close() // idempotent

			c, err := ordering.OpenConsumer(ctx, cfg, ordering.Transactions, shard, resume)
			if err != nil {
				t.Fatal(err)
			}
			// Read some but not all of what is there; the rest is
			// left for the next round's consumer.
			n := produced - len(got) - 7
			if round == 2 {
				n = produced - len(got)
			}
			got = append(got, readN(t, c, n)...)
			resume = c.Next()
			c.Close()
			c.Close()
		}
		if len(got) != produced {
			t.Fatalf("read %d records, produced %d", len(got), produced)
		}
		for i, r := range got {
			if r.Offset != int64(i) || string(r.Value) != string(val(shard, i)) {
				t.Fatalf("record %d: offset %d value %q", i, r.Offset, r.Value)
			}
		}
	})
}

func TestConsumeBeyondEndFails(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		cfg := testCfg(t, brokers, 1)
		p := openProducer(t, cfg)
		ctx := ctxT(t, 60*time.Second)
		for i := range 3 {
			if _, err := p.Append(ctx, 0, nil, val(0, i)); err != nil {
				t.Fatal(err)
			}
		}
		// Resuming at the end (offset 3) is fine: nothing to read yet.
		expectNoMore(t, openConsumer(t, cfg, 0, 3))

		// Resuming past the end means the log lost records we had
		// seen: that must surface, not silently restart elsewhere.
		c := openConsumer(t, cfg, 0, 1000)
		recs, err := c.Poll(ctx)
		if !errors.Is(err, ordering.ErrOffsetOutOfRange) {
			t.Fatalf("Poll from 1000 of a 3-record log: %d records, err %v; want ErrOffsetOutOfRange", len(recs), err)
		}
		if _, err := c.Poll(ctx); !errors.Is(err, ordering.ErrOffsetOutOfRange) {
			t.Fatalf("second Poll: %v, want the sticky ErrOffsetOutOfRange", err)
		}
	})
}

func TestProducerErrors(t *testing.T) {
	brokers := kafkatest.Embedded(t)
	cfg := testCfg(t, brokers, 2)
	ctx := ctxT(t, 30*time.Second)
	p := openProducer(t, cfg)

	if _, err := p.Append(ctx, 2, nil, nil); !errors.Is(err, ordering.ErrShardOutOfRange) {
		t.Errorf("Append to shard 2 of 2: %v, want ErrShardOutOfRange", err)
	}
	var asyncErr error
	p.AppendAsync(ctx, 7, nil, nil, func(_ int64, err error) { asyncErr = err })
	if !errors.Is(asyncErr, ordering.ErrShardOutOfRange) {
		t.Errorf("AppendAsync to shard 7: %v, want ErrShardOutOfRange (synchronously)", asyncErr)
	}
	if _, err := ordering.OpenConsumer(ctx, cfg, ordering.Transactions, 2, 0); !errors.Is(err, ordering.ErrShardOutOfRange) {
		t.Errorf("OpenConsumer shard 2 of 2: %v, want ErrShardOutOfRange", err)
	}
	if _, err := ordering.OpenConsumer(ctx, cfg, ordering.Transactions, 0, -5); !errors.Is(err, ordering.ErrConfig) {
		t.Errorf("OpenConsumer from -5: %v, want ErrConfig", err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Errorf("Flush: %v", err)
	}

	p.Close()
	if _, err := p.Append(ctx, 0, nil, nil); !errors.Is(err, ordering.ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	asyncErr = nil
	p.AppendAsync(ctx, 0, nil, nil, func(_ int64, err error) { asyncErr = err })
	if !errors.Is(asyncErr, ordering.ErrClosed) {
		t.Errorf("AppendAsync after Close: %v, want ErrClosed", asyncErr)
	}

	// Nothing listens here: Open fails within its context, typed.
	dead := cfg
	dead.Brokers = []string{deadAddr(t)}
	short, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := ordering.Open(short, dead); err == nil {
		t.Error("Open against a closed port succeeded")
	}
}

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// dialGate is a Config.Dialer that can cut every connection and hold new
// dials until reopened: a broker that is briefly unreachable.
type dialGate struct {
	mu    sync.Mutex
	open  chan struct{} // closed while dials may proceed
	conns []net.Conn
}

func newDialGate() *dialGate {
	g := &dialGate{open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *dialGate) dial(ctx context.Context, network, host string) (net.Conn, error) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, host)
	if err == nil {
		g.mu.Lock()
		g.conns = append(g.conns, c)
		g.mu.Unlock()
	}
	return c, err
}

// cut closes every connection and holds new dials.
func (g *dialGate) cut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
	for _, c := range g.conns {
		c.Close()
	}
	g.conns = nil
}

// reopen lets dials through again; a no-op when open.
func (g *dialGate) reopen() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

// TestCallerContextDoesNotFailOthers buffers records while the broker is
// unreachable (before the producer has its producer id) and cancels the
// first record's context. franz-go would then fail every buffered record of
// the partition, since the head record's context decides; the producer must
// not: every record lands, in order, and a synchronous Append that gave up
// reports ErrOutcomeUnknown while its record still lands.
func TestCallerContextDoesNotFailOthers(t *testing.T) {
	brokers := kafkatest.Embedded(t)
	cfg := testCfg(t, brokers, 1)
	gate := newDialGate()
	cfg.Dialer = gate.dial
	p := openProducer(t, cfg)
	ctx := ctxT(t, 30*time.Second)

	gate.cut()
	results := make(chan string, 4)
	report := func(name string) func(int64, error) {
		return func(off int64, err error) { results <- fmt.Sprintf("%s:%d:%v", name, off, err) }
	}
	aCtx, cancelA := context.WithCancel(ctx)
	p.AppendAsync(aCtx, 0, nil, []byte("a"), report("a"))
	p.AppendAsync(ctx, 0, nil, []byte("b"), report("b"))
	// A synchronous Append that gives up while its record is buffered.
	syncCtx, cancelSync := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelSync()
	if _, err := p.Append(syncCtx, 0, nil, []byte("s")); !errors.Is(err, ordering.ErrOutcomeUnknown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Append whose ctx expired while buffered: %v, want ErrOutcomeUnknown and DeadlineExceeded", err)
	}
	cancelA()
	gate.reopen()

	for _, want := range []string{"a:0:<nil>", "b:1:<nil>"} {
		if got := <-results; got != want {
			t.Fatalf("callback %s, want %s", got, want)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recs := readN(t, openConsumer(t, cfg, 0, 0), 3)
	var vals []string
	for _, r := range recs {
		vals = append(vals, string(r.Value))
	}
	if !slices.Equal(vals, []string{"a", "b", "s"}) {
		t.Fatalf("log holds %q", vals)
	}
}

// TestProducerStalled: records the broker does not answer make the
// producer report a stall; its answer ends it.
func TestProducerStalled(t *testing.T) {
	cfg := testCfg(t, kafkatest.Embedded(t), 1)
	gate := newDialGate()
	cfg.Dialer = gate.dial
	p := openProducer(t, cfg)
	ctx := ctxT(t, 30*time.Second)
	if _, _, stalled := p.Stalled(0); stalled {
		t.Fatal("stalled with nothing in flight")
	}
	gate.cut()
	done := make(chan error, 1)
	p.AppendAsync(ctx, 0, nil, []byte("a"), func(_ int64, err error) { done <- err })
	time.Sleep(100 * time.Millisecond)
	if n, since, stalled := p.Stalled(50 * time.Millisecond); !stalled || n != 1 || since < 100*time.Millisecond {
		t.Fatalf("with the broker cut: %d in flight for %v, stalled %v", n, since, stalled)
	}
	gate.reopen()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n, _, stalled := p.Stalled(0); stalled || n != 0 {
		t.Fatalf("after the answer: %d in flight, stalled %v", n, stalled)
	}
}

// TestDialerIsUsed checks that every broker connection goes through
// Config.Dialer (how netem impairs the broker path).
func TestDialerIsUsed(t *testing.T) {
	brokers := kafkatest.Embedded(t)
	var dials atomic.Int64
	cfg := testCfg(t, brokers, 1)
	cfg.Dialer = func(ctx context.Context, network, host string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, host)
	}
	p := openProducer(t, cfg)
	ctx := ctxT(t, 30*time.Second)
	if _, err := p.Append(ctx, 0, nil, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if readN(t, openConsumer(t, cfg, 0, 0), 1)[0].Offset != 0 {
		t.Fatal("wrong record")
	}
	if _, err := ordering.EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if dials.Load() < 3 {
		t.Fatalf("dialer used %d times, want every client to dial through it", dials.Load())
	}
}

func TestStartEmbedded(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	e, err := ordering.StartEmbedded(ctx, ordering.EmbeddedOptions{Topics: []string{"seeded"}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if len(e.Addrs()) != 1 {
		t.Fatalf("Addrs = %v, want one", e.Addrs())
	}
	cfg := ordering.Config{Brokers: e.Addrs(), Shards: 2}
	if _, err := ordering.EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	p, err := ordering.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if off, err := p.Append(ctx, 1, nil, []byte("x")); err != nil || off != 0 {
		t.Fatalf("Append = %d, %v", off, err)
	}
	p.Close()
	e.Close()
	e.Close() // idempotent

	if _, err := ordering.StartEmbedded(ctx, ordering.EmbeddedOptions{Brokers: 2, Ports: []int{1}}); !errors.Is(err, ordering.ErrConfig) {
		t.Errorf("2 brokers, 1 port: %v, want ErrConfig", err)
	}
	if _, err := ordering.StartEmbedded(ctx, ordering.EmbeddedOptions{Topics: []string{"bad/name"}}); !errors.Is(err, ordering.ErrConfig) {
		t.Errorf("bad topic name: %v, want ErrConfig", err)
	}
}

// TestEmbeddedDialsInMemory: Embedded.Dial reaches its brokers in memory
// (a memnet connection, not TCP), a producer and a consumer work through
// it while a TCP client of the same broker sees their records, an address
// that is not the cluster's is dialled over TCP, and a closed cluster
// refuses (ECONNREFUSED) as its closed port does.
func TestEmbeddedDialsInMemory(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	e, err := ordering.StartEmbedded(ctx, ordering.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	addr := e.Addrs()[0]
	c, err := e.Dial(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if c.LocalAddr().Network() != "memnet" || c.RemoteAddr().String() != addr {
		t.Fatalf("Dial(%s) gave %s %v -> %v, want an in-memory connection", addr, c.LocalAddr().Network(), c.LocalAddr(), c.RemoteAddr())
	}
	c.Close()

	var dials atomic.Int64
	cfg := testCfg(t, e.Addrs(), 1)
	cfg.Dialer = func(ctx context.Context, network, host string) (net.Conn, error) {
		dials.Add(1)
		return e.Dial(ctx, network, host)
	}
	p := openProducer(t, cfg)
	if _, err := p.Append(ctx, 0, nil, []byte("in memory")); err != nil {
		t.Fatal(err)
	}
	if r := readN(t, openConsumer(t, cfg, 0, 0), 1)[0]; string(r.Value) != "in memory" {
		t.Fatalf("read %q back in memory", r.Value)
	}
	tcpCfg := cfg
	tcpCfg.Dialer = nil
	if r := readN(t, openConsumer(t, tcpCfg, 0, 0), 1)[0]; string(r.Value) != "in memory" {
		t.Fatalf("read %q back over TCP", r.Value)
	}
	if dials.Load() < 2 {
		t.Fatalf("dialed %d times through Embedded.Dial", dials.Load())
	}

	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c, err = e.Dial(ctx, "tcp", other.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if c.LocalAddr().Network() != "tcp" {
		t.Fatalf("a foreign address was dialed over %s", c.LocalAddr().Network())
	}
	c.Close()

	p.Close()
	e.Close()
	if c, err := e.Dial(ctx, "tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial after Close: %v, want ECONNREFUSED", err)
	}
}

// TestEmbeddedPersists restarts an embedded broker on the same DataDir and
// finds the log where it was.
func TestEmbeddedPersists(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	dir := t.TempDir()
	start := func() (*ordering.Embedded, ordering.Config) {
		e, err := ordering.StartEmbedded(ctx, ordering.EmbeddedOptions{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return e, ordering.Config{Brokers: e.Addrs(), Shards: 1}
	}
	e, cfg := start()
	if _, err := ordering.EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	p := openProducer(t, cfg)
	for i := range 5 {
		if _, err := p.Append(ctx, 0, nil, val(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	e.Close()

	e, cfg = start()
	defer e.Close()
	if created, err := ordering.EnsureTopics(ctx, cfg); err != nil || len(created) != 0 {
		t.Fatalf("EnsureTopics after restart: created %v, %v", created, err)
	}
	recs := readN(t, openConsumer(t, cfg, 0, 2), 3)
	if string(recs[2].Value) != string(val(0, 4)) {
		t.Fatalf("after restart, offset 4 holds %q", recs[2].Value)
	}
}
