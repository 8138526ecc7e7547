package ordering_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/node/ordering"
)

// TestAbortHanging on both brokers: a transaction its producer left open
// holds the partition's last stable offset back; the sweep leaves it alone
// while its coordinator counts it as ongoing, and AbortHanging's marker
// (what the sweep writes for a hanging one) releases the partition.
func TestAbortHanging(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		ctx := ctxT(t, 60*time.Second)
		cfg := testCfg(t, brokers, 1)
		topic := cfg.Topic(ordering.Transactions, 0)
		prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(cfg.TopicPrefix+"hanging"), kgo.TransactionTimeout(time.Minute), kgo.DefaultProduceTopic(topic))
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("left open")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			t.Fatal(err)
		}
		defer adm.Close()
		stable := func() (lso, end int64) {
			t.Helper()
			ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			committed, err := kadm.NewClient(adm).ListCommittedOffsets(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			e, _ := ends.Lookup(topic, 0)
			c, _ := committed.Lookup(topic, 0)
			return c.Offset, e.Offset
		}
		if lso, end := stable(); lso >= end {
			t.Fatalf("an open transaction: last stable offset %d, end %d", lso, end)
		}
		hs, err := ordering.FindHanging(ctx, adm, []string{topic}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(hs) != 0 {
			t.Fatalf("a transaction its coordinator runs was taken for hanging: %v", hs)
		}
		// What DescribeProducers says of it is what the sweep would abort.
		prods, err := kadm.NewClient(adm).DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			t.Fatal(err)
		}
		var open []ordering.HangingTxn
		prods.EachProducer(func(p kadm.DescribedProducer) {
			if p.CurrentTxnStartOffset >= 0 {
				open = append(open, ordering.HangingTxn{Topic: p.Topic, Partition: p.Partition, ProducerID: p.ProducerID, ProducerEpoch: p.ProducerEpoch, CoordinatorEpoch: p.CoordinatorEpoch, StartOffset: p.CurrentTxnStartOffset})
			}
		})
		if len(open) != 1 {
			t.Fatalf("open transactions described: %+v", open)
		}
		if err := ordering.AbortHanging(ctx, adm, open); err != nil {
			t.Fatal(err)
		}
		if lso, end := stable(); lso != end {
			t.Fatalf("after the abort marker: last stable offset %d, end %d", lso, end)
		}
	})
}
