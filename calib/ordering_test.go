package calib_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/node/ordering"
)

// TestOrderingCPU runs the log's rounds on the embedded broker and checks
// what they did: every round's records produced, one Kafka transaction a
// round committing its block with the consumed offset, the split adding up,
// and the floor's topics gone afterwards.
func TestOrderingCPU(t *testing.T) {
	c := kafkatest.EmbeddedCluster(t)
	var produced, ended, committed atomic.Int64
	count := func(key int16, n *atomic.Int64) {
		c.ControlKey(key, func(kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			n.Add(1)
			return nil, nil, false
		})
	}
	count(kmsg.Produce.Int16(), &produced)
	count(kmsg.EndTxn.Int16(), &ended)
	count(kmsg.TxnOffsetCommit.Int16(), &committed)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := ordering.Config{Brokers: c.ListenAddrs(), TopicPrefix: kafkatest.Prefix(t), Shards: 7}
	const rounds, reps, wide = 5, 2, 4
	o, err := calib.OrderingCPU(ctx, calib.OrderingOptions{Log: log, RecordSize: 300, WideTxs: wide, Rounds: rounds, Reps: reps})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", o)
	if o.Narrow <= 0 || o.Wide <= 0 || o.WideTxs != wide {
		t.Fatalf("measured %+v", o)
	}
	if o.Round+o.Tx != o.Narrow && o.Tx != 0 {
		t.Errorf("Round %v + Tx %v != Narrow %v", o.Round, o.Tx, o.Narrow)
	}
	if got := o.PerTx(1); got != o.Round+o.Tx {
		t.Errorf("PerTx(1) = %v, want Round+Tx %v", got, o.Round+o.Tx)
	}
	if got, want := o.PerTx(4), o.Tx+o.Round/4; got != want {
		t.Errorf("PerTx(4) = %v, want %v", got, want)
	}
	// Ten warm-up rounds of each kind, then reps × rounds of each.
	all := int64(10 + reps*rounds)
	if ended.Load() != 2*all || committed.Load() != 2*all {
		t.Errorf("%d EndTxn and %d TxnOffsetCommit requests, want one each a round: %d", ended.Load(), committed.Load(), 2*all)
	}
	// Each transaction appended, each block published: at least a
	// produce request a round for the block and one for the narrow
	// round's transaction.
	if produced.Load() < 3*all {
		t.Errorf("%d produce requests for %d rounds", produced.Load(), 2*all)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name := range topics {
		if strings.HasPrefix(name, log.TopicPrefix) {
			t.Errorf("topic %s left behind", name)
		}
	}
}

// TestOrderingCPUStops: a broker that is not there is an error within the
// timeout, not a hang.
func TestOrderingCPUStops(t *testing.T) {
	c := kafkatest.EmbeddedCluster(t)
	addrs := c.ListenAddrs() // a broker's address, closed below
	c.Close()
	t0 := time.Now()
	_, err := calib.OrderingCPU(context.Background(), calib.OrderingOptions{
		Log: ordering.Config{Brokers: addrs, TopicPrefix: kafkatest.Prefix(t)}, Timeout: 2 * time.Second})
	if err == nil {
		t.Fatal("no error without a broker")
	}
	if el := time.Since(t0); el > 20*time.Second {
		t.Errorf("took %v with a 2 s timeout", el)
	}
}

// TestCallCPU: n calls a repetition, reps repetitions, the first error or
// an ended context stops it.
func TestCallCPU(t *testing.T) {
	calls := 0
	d, err := calib.CallCPU(context.Background(), 7, 3, func() error {
		calls++
		for i := range 20000 { // some CPU to measure
			calls += i & 0
		}
		return nil
	})
	if err != nil || calls != 21 || d <= 0 {
		t.Fatalf("CallCPU: %v, %d calls, %v a call", err, calls, d)
	}
	boom := errors.New("boom")
	calls = 0
	if _, err := calib.CallCPU(context.Background(), 7, 3, func() error { calls++; return boom }); !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("an error: %v after %d calls", err, calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls = 0
	if _, err := calib.CallCPU(ctx, 7, 3, func() error {
		if calls++; calls == 2 {
			cancel()
		}
		return nil
	}); !errors.Is(err, context.Canceled) || calls != 2 {
		t.Fatalf("a cancelled context: %v after %d calls", err, calls)
	}
}
