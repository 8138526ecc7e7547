package bench

import (
	"context"
	"crypto/ed25519"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/tx"
)

// tipView is a NodeView whose tips are set by the test.
type tipView struct {
	name string
	next map[uint32]int64
}

func (v tipView) Name() string { return v.name }
func (v tipView) Tip(s uint32) (Tip, error) {
	o, ok := v.next[s]
	if !ok {
		return Tip{}, errors.New("no tip")
	}
	return Tip{NextOffset: o}, nil
}
func (tipView) TxShard(tx.ID) (uint32, bool, error)             { return 0, false, nil }
func (tipView) Balance(ed25519.PublicKey) (uint64, bool, error) { return 0, false, nil }
func (tipView) Halted(uint32) bool                              { return false }

// TestLogTrimmerLowWater: the trimmer deletes below the lowest offset any
// node of the cluster resumes from, a round late; a down node holds the
// mark where it last stood, and a shard some node never showed is kept.
func TestLogTrimmerLowWater(t *testing.T) {
	var running []NodeView
	var got []map[uint32]int64
	tr := newLogTrimmer([]string{"node-1", "node-2"}, 2, func() []NodeView { return running }, func(m map[uint32]int64) {
		got = append(got, maps.Clone(m))
	})
	n1 := tipView{"node-1", map[uint32]int64{0: 100, 1: 50}}
	n2 := tipView{"node-2", map[uint32]int64{0: 80}} // shard 1 unknown
	running = []NodeView{n1, n2}
	tr.round() // marks: shard 0 at 80; shard 1 unknown (node-2)
	if len(got) != 0 {
		t.Fatalf("first round deleted %v: it must wait a round", got)
	}
	n1.next[0], n2.next[0], n2.next[1] = 200, 150, 70
	tr.round() // deletes below the first round's marks
	if len(got) != 1 || len(got[0]) != 1 || got[0][0] != 80 {
		t.Fatalf("second round deleted %v, want shard 0 below 80 only", got)
	}
	running = []NodeView{n1} // node-2 is down: its last offsets hold
	n1.next[0], n1.next[1] = 500, 400
	tr.round() // deletes below the second round's marks: 150 and 50
	if len(got) != 2 || got[1][0] != 150 || got[1][1] != 50 {
		t.Fatalf("third round deleted %v, want shard 0 below 150, shard 1 below 50", got[1:])
	}
	tr.round() // node-2 still at 150/70: shard 0 is done, shard 1 moves to 70
	if len(got) != 3 || len(got[2]) != 1 || got[2][1] != 70 {
		t.Fatalf("fourth round deleted %v, want shard 1 below 70 only", got[2:])
	}
}

// TestDeleteBelowOnEmbeddedBroker: ordering.DeleteBelow moves the embedded
// broker's log start, so the records below it are gone and those above
// stay readable.
func TestDeleteBelowOnEmbeddedBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := ordering.Config{Brokers: kafkatest.Embedded(t), TopicPrefix: "trim-", Shards: 2}
	if _, err := ordering.EnsureTopics(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := cfg.Topic(ordering.Transactions, 1)
	for i := range 100 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := ordering.DeleteBelow(ctx, cfg, ordering.Transactions, map[uint32]int64{1: 60}); err != nil {
		t.Fatal(err)
	}
	starts, err := kadm.NewClient(cl).ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup(topic, 0); o.Offset != 60 {
		t.Fatalf("log start %d after deleting below 60", o.Offset)
	}
	// Deleting below an offset already deleted is not an error.
	if err := ordering.DeleteBelow(ctx, cfg, ordering.Transactions, map[uint32]int64{1: 30, 0: 0}); err != nil {
		t.Fatalf("deleting below the log start again: %v", err)
	}
}
