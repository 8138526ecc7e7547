package ordering

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rustorium/rustorium/internal/retry"
)

// PublisherConfig configures a Publisher. Zero values are documented
// defaults.
type PublisherConfig struct {
	Config

	// NodeID names this node. Its transactional id is
	// TopicPrefix + "rustorium-leader-" + NodeID, so it must be unique
	// among live nodes and stable across restarts of one node (a
	// restarted node then fences its previous incarnation at once).
	// Required; [a-zA-Z0-9._-] only.
	NodeID string

	// Group is the consumer group whose assignment decides which node
	// leads which shard. "" means TopicPrefix + "rustorium-leaders".
	Group string

	// SessionTimeout is how long a silent leader keeps its shards before
	// the group gives them to another node. 0 means 6 s. The broker bounds
	// it (Kafka's group.min.session.timeout.ms, 6 s by default;
	// scripts/kafka.sh lowers it to 500 ms).
	SessionTimeout time.Duration

	// RebalanceTimeout bounds a rebalance. 0 means 10 s.
	RebalanceTimeout time.Duration

	// TransactionTimeout is how long the broker lets a transaction stay
	// open. A leader that dies mid-transaction hides everything written
	// after that transaction's first record (read_committed) until the
	// broker aborts it, so this bounds fail-over time. 0 means 10 s.
	TransactionTimeout time.Duration

	// OnAssigned and OnRevoked, if set, are called with the shards this
	// node gained or lost (sorted), on franz-go's group goroutine: they
	// must be quick and must not call the Publisher. A revoked shard's
	// pending block must be dropped: the next Publish will not commit it.
	OnAssigned func(shards []uint32)
	OnRevoked  func(shards []uint32)
}

func (c *PublisherConfig) prepare() (PublisherConfig, error) {
	base, err := c.Config.prepare()
	if err != nil {
		return PublisherConfig{}, err
	}
	out := *c
	out.Config = base
	if out.NodeID == "" {
		return PublisherConfig{}, fmt.Errorf("%w: NodeID is empty", ErrConfig)
	}
	if err := validTopicName(out.NodeID); err != nil {
		return PublisherConfig{}, fmt.Errorf("%w: NodeID: %v", ErrConfig, err)
	}
	if out.Group == "" {
		out.Group = out.LeadersGroup()
	}
	if out.SessionTimeout == 0 {
		out.SessionTimeout = 6 * time.Second
	}
	if out.RebalanceTimeout == 0 {
		out.RebalanceTimeout = 10 * time.Second
	}
	if out.TransactionTimeout == 0 {
		out.TransactionTimeout = 10 * time.Second
	}
	if out.SessionTimeout < 0 || out.RebalanceTimeout < 0 || out.TransactionTimeout < 0 {
		return PublisherConfig{}, fmt.Errorf("%w: negative timeout", ErrConfig)
	}
	return out, nil
}

// TransactionalID returns the transactional id the Publisher uses.
func (c *PublisherConfig) TransactionalID() string {
	return c.TopicPrefix + "rustorium-leader-" + c.NodeID
}

// Batch is the records of one shard that a Poll returned, in offset order.
type Batch struct {
	Shard   uint32
	Records []Record
}

// Output is one record a Publish writes: a block to the Blocks stream of a
// shard this node leads, or a system transaction (such as a cross-shard
// credit) to the Transactions stream of any shard.
type Output struct {
	Stream Stream
	Shard  uint32
	Key    []byte
	Value  []byte
}

// Publisher is a shard leader's exactly-once loop over the log: it consumes
// the transactions topics of the shards the group assigned to this node and
// publishes outputs (blocks, credits) in a Kafka transaction that also
// commits how far it consumed. Each transaction either commits both the
// outputs and the consumer position, or neither.
//
// A leader that lost its shards is fenced: a Publish that spans a
// rebalance, or whose group generation is stale (a node that was cut off
// and evicted), aborts, so its outputs are never visible to read_committed
// readers, and the records it consumed are delivered again to whichever
// node now leads the shard. Built on franz-go's GroupTransactSession
// (KIP-447).
//
// The loop is: Poll, build outputs from every returned record, Publish.
// Every record Poll returned is counted as consumed by the next Publish, so
// a block must cover all of them. Not safe for concurrent use, except
// Close and Assigned.
type Publisher struct {
	cfg  PublisherConfig
	sess *kgo.GroupTransactSession

	mu       sync.Mutex
	assigned map[uint32]bool

	closeOnce sync.Once
}

// OpenPublisher joins the leaders' group. Shards arrive through OnAssigned
// and Poll once the group has balanced.
func OpenPublisher(ctx context.Context, cfg PublisherConfig) (*Publisher, error) {
	cfg, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	p := &Publisher{cfg: cfg, assigned: make(map[uint32]bool)}
	txTopics := make([]string, cfg.Shards)
	for i := range txTopics {
		txTopics[i] = cfg.Topic(Transactions, uint32(i))
	}
	opts := append(cfg.clientOpts(),
		kgo.TransactionalID(cfg.TransactionalID()),
		kgo.TransactionTimeout(cfg.TransactionTimeout),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(cfg.Linger),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(txTopics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.RequireStableFetchOffsets(),
		// A new group starts at the beginning (NoResetOffset alone
		// starts new partitions at the end, skipping txs that arrived
		// before the group formed); a committed offset outside the log
		// is an error, never a silent jump.
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		kgo.ConsumeResetOffset(kgo.NoResetOffset().AtStart()),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.HeartbeatInterval(cfg.SessionTimeout/3),
		kgo.RebalanceTimeout(cfg.RebalanceTimeout),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			p.change(m, true)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			p.change(m, false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			p.change(m, false)
		}),
	)
	if !cfg.Compression {
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	}
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := sess.Client().Ping(ctx); err != nil {
		sess.Close()
		return nil, brokerErr("connecting publisher", err)
	}
	p.sess = sess
	return p, nil
}

// change records gained or lost shards and tells the callbacks.
func (p *Publisher) change(m map[string][]int32, gained bool) {
	var shards []uint32
	p.mu.Lock()
	for topic := range m {
		s, ok := p.shardOf(topic)
		if !ok || p.assigned[s] == gained {
			continue
		}
		if gained {
			p.assigned[s] = true
		} else {
			delete(p.assigned, s)
		}
		shards = append(shards, s)
	}
	p.mu.Unlock()
	if len(shards) == 0 {
		return
	}
	sort.Slice(shards, func(i, j int) bool { return shards[i] < shards[j] })
	switch {
	case gained && p.cfg.OnAssigned != nil:
		p.cfg.OnAssigned(shards)
	case !gained && p.cfg.OnRevoked != nil:
		p.cfg.OnRevoked(shards)
	}
}

// shardOf parses a transactions topic name of this layout.
func (p *Publisher) shardOf(topic string) (uint32, bool) {
	rest, ok := strings.CutPrefix(topic, p.cfg.TopicPrefix+Transactions.String()+"-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 32)
	if err != nil || int64(n) >= int64(p.cfg.Shards) {
		return 0, false
	}
	return uint32(n), true
}

// Assigned returns the shards this node currently leads, sorted.
func (p *Publisher) Assigned() []uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]uint32, 0, len(p.assigned))
	for s := range p.assigned {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Poll waits for transactions on the shards this node leads and returns at
// most max records (all buffered if max <= 0), grouped by shard in shard
// order. Errors are as for Consumer.PollMax; records and an error are never
// returned together (the error is dropped in favour of the records, and
// franz-go reports a persisting one again).
func (p *Publisher) Poll(ctx context.Context, max int) ([]Batch, error) {
	fs := p.sess.PollRecords(ctx, max)
	var batches []Batch
	idx := make(map[uint32]int)
	fs.EachRecord(func(r *kgo.Record) {
		s, ok := p.shardOf(r.Topic)
		if !ok {
			return
		}
		i, seen := idx[s]
		if !seen {
			i = len(batches)
			idx[s] = i
			batches = append(batches, Batch{Shard: s})
		}
		batches[i].Records = append(batches[i].Records, Record{Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp})
	})
	if len(batches) > 0 {
		sort.Slice(batches, func(i, j int) bool { return batches[i].Shard < batches[j].Shard })
		return batches, nil
	}
	var first error
	fs.EachError(func(topic string, _ int32, err error) {
		if first != nil {
			return
		}
		switch {
		case errors.Is(err, kgo.ErrClientClosed):
			first = fmt.Errorf("%w: publisher", ErrClosed)
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			first = fmt.Errorf("ordering: publisher poll: %w", err)
		case errors.Is(err, kerr.OffsetOutOfRange):
			first = fmt.Errorf("%w: %s: %w", ErrOffsetOutOfRange, topic, err)
		default:
			first = fmt.Errorf("%w: publisher fetching %s: %w", ErrBroker, topic, err)
		}
	})
	if first == nil && ctx.Err() != nil {
		first = fmt.Errorf("ordering: publisher poll: %w", ctx.Err())
	}
	return nil, first
}

// Publish writes outs and commits the consumption of every record returned
// by Poll since the last Publish, atomically, in one Kafka transaction.
// Blocks may only go to shards this node leads.
//
// committed is false, with a nil error, when the transaction was aborted
// because the group rebalanced or this node was fenced: nothing of it is
// visible, the caller must drop the blocks it built (and the state they
// imply), and the next Poll delivers the uncommitted records again if this
// node still leads their shard. A non-nil error is not retryable: Close the
// Publisher and open a new one.
func (p *Publisher) Publish(ctx context.Context, outs []Output) (committed bool, err error) {
	for _, o := range outs {
		if err := p.cfg.checkShard(o.Shard); err != nil {
			return false, err
		}
		if o.Stream != Transactions && o.Stream != Blocks {
			return false, fmt.Errorf("%w: output to unknown stream %v", ErrConfig, o.Stream)
		}
	}
	if err := p.sess.Begin(); err != nil {
		return false, brokerErr("beginning transaction", err)
	}
	var (
		mu       sync.Mutex
		firstErr error // a produce failed: abort and report it
		lost     bool  // a block's shard was revoked since Poll: abort quietly
	)
	for _, o := range outs {
		if o.Stream == Blocks && !p.leads(o.Shard) {
			// Lost the shard since Poll: this transaction must not
			// commit; the new leader redoes the work.
			lost = true
			continue
		}
		rec := &kgo.Record{Topic: p.cfg.Topic(o.Stream, o.Shard), Partition: 0, Key: o.Key, Value: o.Value}
		p.sess.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	if err := p.sess.Client().Flush(ctx); err != nil {
		_, _ = p.sess.End(ctx, kgo.TryAbort)
		return false, brokerErr("flushing transaction", err)
	}
	mu.Lock()
	produceErr := firstErr
	mu.Unlock()
	committed, err = p.sess.End(ctx, kgo.TransactionEndTry(produceErr == nil && !lost))
	if err == nil && produceErr != nil {
		return false, brokerErr("producing in transaction (aborted)", produceErr)
	}
	if err != nil {
		if isFencing(err) {
			// Evicted or superseded while cut off: nothing
			// committed, and this session is done.
			return false, fmt.Errorf("%w: publisher fenced: %w", ErrBroker, err)
		}
		return false, brokerErr("ending transaction", err)
	}
	return committed, nil
}

func (p *Publisher) leads(shard uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.assigned[shard]
}

func isFencing(err error) bool {
	return errors.Is(err, kerr.ProducerFenced) || errors.Is(err, kerr.InvalidProducerEpoch) ||
		errors.Is(err, kerr.InvalidProducerIDMapping) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}

// Close leaves the group (so another node takes the shards at once) and
// stops the Publisher; an open transaction is aborted. Safe to call more
// than once.
func (p *Publisher) Close() {
	p.closeOnce.Do(p.sess.Close)
}

// ConsumedOffset returns the leaders' group's committed position in shard's
// transactions topic: the offset after the last record that a committed
// block transaction consumed, or -1 if no block was ever committed. The
// block committed in that transaction ends at this offset, so a new leader
// whose state ends there is caught up. It waits for a transaction still in
// flight to end (KIP-447 stable offsets).
func (p *Publisher) ConsumedOffset(ctx context.Context, shard uint32) (int64, error) {
	if err := p.cfg.checkShard(shard); err != nil {
		return -1, err
	}
	topic := p.cfg.Topic(Transactions, shard)
	adm := kadm.NewClient(p.sess.Client())
	backoff := retry.Backoff{Min: 10 * time.Millisecond, Max: time.Second}
	for {
		offs, err := adm.FetchOffsetsForTopics(kadm.RequireStable(ctx), p.cfg.Group, topic)
		if err == nil {
			o, ok := offs.Lookup(topic, 0)
			if !ok {
				return -1, nil
			}
			if err = o.Err; err == nil {
				return o.At, nil
			}
		}
		// Another leader's transaction is still open (it commits, or the
		// broker aborts it within the transaction timeout; one left
		// hanging on the group's offsets partition, which no timeout
		// ends, the nodes' sweep aborts: HangingSweeper): wait for it.
		if !errors.Is(err, kerr.UnstableOffsetCommit) {
			return -1, brokerErr("fetching the leaders' position in "+topic, err)
		}
		if err := backoff.Wait(ctx); err != nil {
			return -1, brokerErr("fetching the leaders' position in "+topic, ctx.Err())
		}
	}
}
