package ordering

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestHangingDecision: an open transaction is hanging when its producer is
// silent for longer than the grace and its coordinator does not count it
// as ongoing on that partition; one the coordinator still runs there, or
// one it cannot describe, is left alone.
func TestHangingDecision(t *testing.T) {
	now := time.UnixMilli(1_000_000)
	old := now.Add(-time.Minute).UnixMilli()
	open := func(topic string, pid int64, epoch int16, last int64) kadm.DescribedProducer {
		return kadm.DescribedProducer{Topic: topic, Partition: 0, ProducerID: pid, ProducerEpoch: epoch, LastTimestamp: last, CurrentTxnStartOffset: 7, CoordinatorEpoch: 3}
	}
	listed := map[int64]kadm.ListedTransaction{
		2: {TxnID: "moved", ProducerID: 2}, 3: {TxnID: "bumped", ProducerID: 3}, 4: {TxnID: "done", ProducerID: 4},
		5: {TxnID: "ongoing", ProducerID: 5}, 6: {TxnID: "elsewhere", ProducerID: 6}, 7: {TxnID: "unknown", ProducerID: 7},
		8: {TxnID: "young", ProducerID: 8},
	}
	described := kadm.DescribedTransactions{
		"moved":     {TxnID: "moved", ProducerID: 20, ProducerEpoch: 1, State: "Ongoing"},
		"bumped":    {TxnID: "bumped", ProducerID: 3, ProducerEpoch: 22, State: "CompleteCommit"},
		"done":      {TxnID: "done", ProducerID: 4, ProducerEpoch: 21, State: "CompleteAbort"},
		"ongoing":   {TxnID: "ongoing", ProducerID: 5, ProducerEpoch: 21, State: "Ongoing", Topics: kadm.TopicsSet{"t5": {0: {}}}},
		"elsewhere": {TxnID: "elsewhere", ProducerID: 6, ProducerEpoch: 21, State: "Ongoing", Topics: kadm.TopicsSet{"other": {0: {}}}},
		"young":     {TxnID: "young", ProducerID: 8, ProducerEpoch: 21, State: "CompleteCommit"},
	}
	ps := []kadm.DescribedProducer{
		open("t1", 1, 21, old),                               // no coordinator lists producer 1
		open("t2", 2, 21, old),                               // its id moved to another producer
		open("t3", 3, 21, old),                               // its id is at a newer epoch: the restart case
		open("t4", 4, 21, old),                               // same epoch, ended
		open("t5", 5, 21, old),                               // ongoing on this partition: not ours to abort
		open("t6", 6, 21, old),                               // ongoing, but without this partition
		open("t7", 7, 21, old),                               // listed, not described: cannot tell
		open("t8", 8, 21, now.Add(-time.Second).UnixMilli()), // within the grace
		{Topic: "t9", ProducerID: 9, LastTimestamp: old, CurrentTxnStartOffset: -1}, // no open transaction
	}
	got := hanging(ps, listed, described, now, 10*time.Second)
	var topics []string
	for _, h := range got {
		topics = append(topics, h.Topic)
		if h.StartOffset != 7 || h.CoordinatorEpoch != 3 || h.ProducerEpoch != 21 || h.Why == "" {
			t.Errorf("%+v", h)
		}
	}
	want := []string{"t1", "t2", "t3", "t4", "t6"}
	if len(topics) != len(want) {
		t.Fatalf("hanging on %v, want %v", topics, want)
	}
	for i := range want {
		if topics[i] != want[i] {
			t.Fatalf("hanging on %v, want %v", topics, want)
		}
	}
	if got[2].Why != "transactional id bumped is at epoch 22, CompleteCommit" {
		t.Errorf("why: %q", got[2].Why)
	}
}

// TestStillOpen: a transaction found hanging stays so only if the
// partitions' leaders, asked again after its coordinator, still hold it
// open from the same offset at the same epoch; one that ended meanwhile
// (a leader's round whose coordinator had just committed it, which the
// first look caught open: CI's TestAbortHangingOffsets once took another
// test's leader for hanging so), moved on, or whose partition could not
// be described, is left alone.
func TestStillOpen(t *testing.T) {
	h := func(topic string, pid int64, epoch int16, start int64) HangingTxn {
		return HangingTxn{Topic: topic, ProducerID: pid, ProducerEpoch: epoch, StartOffset: start}
	}
	found := []HangingTxn{h("kept", 1, 21, 7), h("ended", 2, 67, 1671), h("bumped", 3, 21, 7), h("moved", 4, 21, 7), h("failed", 5, 21, 7)}
	producer := func(topic string, pid int64, epoch int16, start int64) kadm.DescribedProducers {
		return kadm.DescribedProducers{pid: {Topic: topic, ProducerID: pid, ProducerEpoch: epoch, CurrentTxnStartOffset: start}}
	}
	part := func(topic string, ps kadm.DescribedProducers) kadm.DescribedProducersTopic {
		return kadm.DescribedProducersTopic{Topic: topic, Partitions: kadm.DescribedProducersPartitions{0: {Topic: topic, ActiveProducers: ps}}}
	}
	again := kadm.DescribedProducersTopics{
		"kept":   part("kept", producer("kept", 1, 21, 7)),
		"ended":  part("ended", producer("ended", 2, 68, -1)),  // no open transaction now
		"bumped": part("bumped", producer("bumped", 3, 22, 9)), // a newer transaction of the producer
		"moved":  part("moved", producer("moved", 4, 21, 12)),  // another transaction, from a later offset
		"failed": {Topic: "failed", Partitions: kadm.DescribedProducersPartitions{0: {Topic: "failed", Err: errors.New("not leader")}}},
	}
	got := stillOpen(found, again)
	if len(got) != 1 || got[0].Topic != "kept" {
		t.Fatalf("still open: %+v, want the kept one alone", got)
	}
}

// TestGroupPartition: a group's offsets partition is Kafka's
// Utils.abs(group.hashCode()) % partitions; the expected values come from
// Java 17 (String.hashCode over UTF-16 code units, MIN_VALUE's abs 0).
func TestGroupPartition(t *testing.T) {
	for _, c := range []struct {
		group   string
		p50, p8 int32
	}{
		{"rustorium-leaders", 39, 1},
		{"x-rustorium-leaders", 30, 6},
		{"polygenelubricants", 0, 0}, // hashCode is Integer.MIN_VALUE
		{"héllo-wörld-😀", 0, 4},      // a surrogate pair
		{"", 0, 0},
	} {
		if p := groupPartition(c.group, 50); p != c.p50 {
			t.Errorf("%q of 50: %d, want %d", c.group, p, c.p50)
		}
		if p := groupPartition(c.group, 8); p != c.p8 {
			t.Errorf("%q of 8: %d, want %d", c.group, p, c.p8)
		}
	}
}
