package ordering_test

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/internal/retry"
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

// TestAbortHangingOffsets on the real broker: a transaction that committed
// a group's offsets (TxnOffsetCommit, as every leader round does) and was
// left open holds the group's position unstable — a new leader's
// ConsumedOffset waits on UNSTABLE_OFFSET_COMMIT — and lives on the
// group's partition of __consumer_offsets, which GroupOffsetsPartition
// finds (the sweep covers it); an abort marker there releases the
// position. kfake keeps offsets in memory: it has no such partition.
func TestAbortHangingOffsets(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	ctx := ctxT(t, 60*time.Second)
	cfg := testCfg(t, brokers, 1)
	topic := cfg.Topic(ordering.Transactions, 0)
	group := cfg.LeadersGroup()
	txnID := cfg.TopicPrefix + "hanging-offsets"
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID(txnID), kgo.TransactionTimeout(time.Minute), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	// The group exists, with a position (a leader round committed one).
	first := kadm.Offsets{}
	first.AddOffset(topic, 0, 0, -1)
	resp, err := kadm.NewClient(prod).CommitOffsets(ctx, group, first)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("committing the group's first position: %v", err)
	}
	if err := prod.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("a block")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := prod.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = txnID, pid, epoch, group
	addResp, err := add.RequestWith(ctx, prod)
	if err == nil {
		err = kerr.ErrorForCode(addResp.ErrorCode)
	}
	if err != nil {
		t.Fatalf("AddOffsetsToTxn: %v", err)
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch, commit.Generation = txnID, group, pid, epoch, -1
	tds, err := kadm.NewClient(prod).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ct := kmsg.NewTxnOffsetCommitRequestTopic()
	ct.Topic, ct.TopicID = topic, tds[topic].ID // by name before v6, by id since
	cp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	cp.Partition, cp.Offset = 0, 1
	ct.Partitions = append(ct.Partitions, cp)
	commit.Topics = append(commit.Topics, ct)
	commitResp, err := commit.RequestWith(ctx, prod)
	if err == nil && len(commitResp.Topics) == 1 && len(commitResp.Topics[0].Partitions) == 1 {
		err = kerr.ErrorForCode(commitResp.Topics[0].Partitions[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("TxnOffsetCommit: %v", err)
	}

	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	fetch := func() error {
		offs, err := kadm.NewClient(adm).FetchOffsetsForTopics(kadm.RequireStable(ctx), group, topic)
		if err != nil {
			return err
		}
		o, _ := offs.Lookup(topic, 0)
		return o.Err
	}
	if err := fetch(); !errors.Is(err, kerr.UnstableOffsetCommit) {
		t.Fatalf("the group's position with the transaction open: %v, want UNSTABLE_OFFSET_COMMIT", err)
	}
	part, ok, err := ordering.GroupOffsetsPartition(ctx, adm, group)
	if err != nil || !ok {
		t.Fatalf("GroupOffsetsPartition: %d %v %v", part, ok, err)
	}
	set := kadm.TopicsSet{ordering.OffsetsTopic: {part: {}}}
	if hs, err := ordering.FindHangingIn(ctx, adm, set, 0); err != nil || len(hs) != 0 {
		t.Fatalf("a transaction its coordinator runs was taken for hanging: %v %v", hs, err)
	}
	prods, err := kadm.NewClient(adm).DescribeProducers(ctx, set)
	if err != nil {
		t.Fatal(err)
	}
	var open []ordering.HangingTxn
	prods.EachProducer(func(p kadm.DescribedProducer) {
		if p.CurrentTxnStartOffset >= 0 && p.ProducerID == pid {
			open = append(open, ordering.HangingTxn{Topic: p.Topic, Partition: p.Partition, ProducerID: p.ProducerID, ProducerEpoch: p.ProducerEpoch, CoordinatorEpoch: p.CoordinatorEpoch, StartOffset: p.CurrentTxnStartOffset})
		}
	})
	if len(open) != 1 {
		t.Fatalf("the producer's open transaction on %s/%d (the group's partition): %+v", ordering.OffsetsTopic, part, open)
	}
	if err := ordering.AbortHanging(ctx, adm, open); err != nil {
		t.Fatal(err)
	}
	if err := retry.Poll(ctx, 20*time.Millisecond, 10*time.Second, func() (bool, error) { return fetch() == nil, nil }); err != nil {
		t.Fatalf("the group's position after the abort marker: %v", fetch())
	}
}
