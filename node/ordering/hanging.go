package ordering

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf16"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A HangingTxn is a transaction left open on a partition although its
// coordinator no longer counts it as ongoing there: the transactional id
// moved on to a newer producer epoch, or ended, or never added the
// partition. Its records are neither committed nor aborted, so the
// partition's last stable offset stays at its first record for good, and
// a read_committed reader (a shard's leader, its replicas) sees nothing
// after it. A broker restarted while a transaction was being written can
// leave one (a real Kafka 4 broker did, in the broker-restart chaos
// scenario: a credit to shard 0 written in epoch 21 of a leader whose
// coordinator had committed epoch 22). KIP-664's remedy, which AbortHanging
// applies, is to write an abort marker for it.
type HangingTxn struct {
	Topic     string
	Partition int32
	// The producer that left it open, as the partition's leader knows it.
	ProducerID       int64
	ProducerEpoch    int16
	CoordinatorEpoch int32
	// StartOffset is the transaction's first offset on the partition: the
	// last stable offset it holds back.
	StartOffset int64
	// LastWrite is when the producer last wrote to the partition.
	LastWrite time.Time
	// TxnID is the producer's transactional id, "" when no coordinator
	// lists the producer.
	TxnID string
	// Why says what the coordinator knows instead.
	Why string
}

func (h HangingTxn) String() string {
	return fmt.Sprintf("%s/%d from offset %d: producer %d epoch %d (%s)", h.Topic, h.Partition, h.StartOffset, h.ProducerID, h.ProducerEpoch, h.Why)
}

// hanging decides which of the open transactions are hanging: open for
// longer than grace (at now) and not ongoing on their partition in their
// coordinator's view. listed maps producer ids to their transactional ids'
// listings and described those ids to their descriptions. It asks nobody:
// FindHanging gathers its input.
func hanging(open []kadm.DescribedProducer, listed map[int64]kadm.ListedTransaction, described kadm.DescribedTransactions, now time.Time, grace time.Duration) []HangingTxn {
	var out []HangingTxn
	for _, p := range open {
		if p.CurrentTxnStartOffset < 0 {
			continue
		}
		last := time.UnixMilli(p.LastTimestamp)
		if now.Sub(last) < grace {
			continue
		}
		h := HangingTxn{Topic: p.Topic, Partition: p.Partition, ProducerID: p.ProducerID, ProducerEpoch: p.ProducerEpoch,
			CoordinatorEpoch: p.CoordinatorEpoch, StartOffset: p.CurrentTxnStartOffset, LastWrite: last}
		l, ok := listed[p.ProducerID]
		if !ok {
			h.Why = "no coordinator lists the producer"
			out = append(out, h)
			continue
		}
		h.TxnID = l.TxnID
		d, ok := described[l.TxnID]
		switch {
		case !ok || d.Err != nil:
			continue // cannot tell: leave it for the next sweep
		case d.ProducerID != p.ProducerID:
			h.Why = fmt.Sprintf("transactional id %s moved to producer %d", l.TxnID, d.ProducerID)
		case d.ProducerEpoch > p.ProducerEpoch:
			h.Why = fmt.Sprintf("transactional id %s is at epoch %d, %s", l.TxnID, d.ProducerEpoch, d.State)
		case d.State != "Ongoing" && d.State != "PrepareCommit" && d.State != "PrepareAbort":
			h.Why = fmt.Sprintf("transactional id %s is %s", l.TxnID, d.State)
		default:
			if ps, ok := d.Topics[p.Topic]; ok {
				if _, ok := ps[p.Partition]; ok {
					continue // ongoing here: the coordinator ends it (or times it out)
				}
			}
			h.Why = fmt.Sprintf("transactional id %s is %s without this partition", l.TxnID, d.State)
		}
		out = append(out, h)
	}
	slices.SortFunc(out, func(a, b HangingTxn) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// FindHanging lists the hanging transactions on the topics' partition 0
// (every topic of ours has one partition) whose producer last wrote more
// than grace ago, asking the partitions' leaders (DescribeProducers), the
// transactions' coordinators (ListTransactions, DescribeTransactions), and
// the leaders again (stillOpen: only a transaction still open as it was
// after the coordinators answered is hanging).
func FindHanging(ctx context.Context, cl *kgo.Client, topics []string, grace time.Duration) ([]HangingTxn, error) {
	set := kadm.TopicsSet{}
	for _, t := range topics {
		set.Add(t, 0)
	}
	return FindHangingIn(ctx, cl, set, grace)
}

// FindHangingIn is FindHanging on the partitions of set.
func FindHangingIn(ctx context.Context, cl *kgo.Client, set kadm.TopicsSet, grace time.Duration) ([]HangingTxn, error) {
	adm := kadm.NewClient(cl)
	prods, err := adm.DescribeProducers(ctx, set)
	if err != nil {
		return nil, brokerErr("describing producers", err)
	}
	var (
		open []kadm.DescribedProducer
		pids []int64
	)
	prods.EachProducer(func(p kadm.DescribedProducer) {
		if p.CurrentTxnStartOffset >= 0 {
			open = append(open, p)
			pids = append(pids, p.ProducerID)
		}
	})
	if len(open) == 0 {
		return nil, nil
	}
	lts, err := adm.ListTransactions(ctx, pids, nil)
	if err != nil {
		return nil, brokerErr("listing transactions", err)
	}
	listed := map[int64]kadm.ListedTransaction{}
	var ids []string
	for _, l := range lts.Sorted() {
		listed[l.ProducerID] = l
		ids = append(ids, l.TxnID)
	}
	described := kadm.DescribedTransactions{}
	if len(ids) > 0 {
		if described, err = adm.DescribeTransactions(ctx, ids...); err != nil {
			return nil, brokerErr("describing transactions", err)
		}
	}
	hs := hanging(open, listed, described, time.Now(), grace)
	if len(hs) == 0 {
		return nil, nil
	}
	// The partitions' leaders were asked before the coordinators: a
	// transaction that ended in between (its coordinator at the next
	// epoch, CompleteCommit, its marker written) looks hanging. Only one
	// the leaders still hold open afterwards, as it was, is.
	again, err := adm.DescribeProducers(ctx, set)
	if err != nil {
		return nil, brokerErr("describing producers", err)
	}
	return stillOpen(hs, again), nil
}

// stillOpen keeps the transactions of hs that prods (the partitions'
// producers described after the coordinators were asked) still hold open
// from the same offset at the same producer epoch.
func stillOpen(hs []HangingTxn, prods kadm.DescribedProducersTopics) []HangingTxn {
	type key struct {
		topic      string
		partition  int32
		pid, start int64
		epoch      int16
	}
	open := map[key]bool{}
	prods.EachProducer(func(p kadm.DescribedProducer) {
		if p.CurrentTxnStartOffset >= 0 {
			open[key{p.Topic, p.Partition, p.ProducerID, p.CurrentTxnStartOffset, p.ProducerEpoch}] = true
		}
	})
	return slices.DeleteFunc(hs, func(h HangingTxn) bool {
		return !open[key{h.Topic, h.Partition, h.ProducerID, h.StartOffset, h.ProducerEpoch}]
	})
}

// AbortHanging writes an abort marker for each hanging transaction on its
// partition (WriteTxnMarkers, as KIP-664's tooling does), releasing the
// partition's last stable offset.
func AbortHanging(ctx context.Context, cl *kgo.Client, hs []HangingTxn) error {
	if len(hs) == 0 {
		return nil
	}
	adm := kadm.NewClient(cl)
	markers := make([]kadm.TxnMarkers, len(hs))
	for i, h := range hs {
		markers[i] = kadm.TxnMarkers{ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, CoordinatorEpoch: h.CoordinatorEpoch,
			Topics: kadm.TopicsSet{h.Topic: {h.Partition: {}}}}
	}
	resps, err := adm.WriteTxnMarkers(ctx, markers...)
	if err != nil {
		return brokerErr("writing abort markers", err)
	}
	for _, r := range resps {
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if p.Err != nil {
					return brokerErr(fmt.Sprintf("aborting producer %d's transaction on %s/%d", r.ProducerID, t.Topic, p.Partition), p.Err)
				}
			}
		}
	}
	return nil
}

// A HangingSweeper finds and aborts hanging transactions on the topics it
// is asked about, and on the partition of Kafka's offsets topic that holds
// its group's offsets, through a client of its own. Close releases it.
type HangingSweeper struct {
	cl    *kgo.Client
	grace time.Duration
	group string
	// offsets is the group's partition of OffsetsTopic, -1 until known
	// (and on a broker without that topic: kfake keeps offsets in memory).
	offsets int32
}

// OffsetsTopic is Kafka's internal topic of consumer groups' committed
// offsets. A leader's transaction commits its group's position there
// (TxnOffsetCommit), so a transaction left hanging there holds the group's
// position unstable: OffsetFetch with require_stable answers
// UNSTABLE_OFFSET_COMMIT for good, and a new leader waits on it forever
// (Publisher.ConsumedOffset).
const OffsetsTopic = "__consumer_offsets"

// NewHangingSweeper returns a sweeper on cfg's brokers that leaves alone a
// transaction whose producer wrote less than grace ago. group, if not "",
// is a consumer group whose offsets partition every sweep covers too.
func NewHangingSweeper(cfg Config, grace time.Duration, group string) (*HangingSweeper, error) {
	cfg, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(cfg.clientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("%w: hanging-transaction sweeper: %w", ErrConfig, err)
	}
	return &HangingSweeper{cl: cl, grace: grace, group: group, offsets: -1}, nil
}

// Sweep aborts the hanging transactions of topics (and of the group's
// offsets partition) and returns them.
func (s *HangingSweeper) Sweep(ctx context.Context, topics []string) ([]HangingTxn, error) {
	set := kadm.TopicsSet{}
	for _, t := range topics {
		set.Add(t, 0)
	}
	if s.group != "" && s.offsets < 0 {
		if p, ok, err := GroupOffsetsPartition(ctx, s.cl, s.group); err == nil && ok {
			s.offsets = p
		}
	}
	if s.offsets >= 0 {
		set.Add(OffsetsTopic, s.offsets)
	}
	if len(set) == 0 {
		return nil, nil
	}
	hs, err := FindHangingIn(ctx, s.cl, set, s.grace)
	if err != nil {
		return nil, err
	}
	if err := AbortHanging(ctx, s.cl, hs); err != nil {
		return nil, err
	}
	return hs, nil
}

// Close releases the sweeper's client. Safe to call twice.
func (s *HangingSweeper) Close() { s.cl.Close() }

// GroupOffsetsPartition returns the partition of OffsetsTopic that holds
// group's offsets, as Kafka places it: the absolute value of the group
// id's Java String hash code modulo the topic's partition count. ok is
// false when the broker lists no such topic (kfake).
func GroupOffsetsPartition(ctx context.Context, cl *kgo.Client, group string) (int32, bool, error) {
	tds, err := kadm.NewClient(cl).ListTopicsWithInternal(ctx, OffsetsTopic)
	if err != nil {
		return -1, false, brokerErr("listing "+OffsetsTopic, err)
	}
	td, ok := tds[OffsetsTopic]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		return -1, false, nil
	}
	return groupPartition(group, len(td.Partitions)), true, nil
}

// groupPartition is Kafka's Utils.abs(group.hashCode()) % partitions, with
// Java's String.hashCode over UTF-16 code units.
func groupPartition(group string, partitions int) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(group)) {
		h = 31*h + int32(u)
	}
	if h == math.MinInt32 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % int32(partitions)
}
