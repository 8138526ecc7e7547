package ordering

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer appends records to the shards' transactions topics with acks=all
// and franz-go's idempotent producer, so a retried request never duplicates
// or reorders a record within a shard. It is safe for concurrent use.
//
// A caller's context only bounds how long that caller waits; it is never
// attached to the record itself. (franz-go fails every buffered record of a
// partition when the first record's context ends, so one impatient client
// would otherwise fail its neighbours' transactions.) Records stop being
// retried at Close or after Config.DeliveryTimeout.
type Producer struct {
	cfg Config
	cl  *kgo.Client

	// slots bounds records handed to cl and not yet acknowledged, so that
	// waiting for room honours the caller's context.
	slots chan struct{}

	// inflight counts records handed to cl and not yet acknowledged or
	// failed; progress is the time (unix ns) of the last answer, or of the
	// enqueue that found none in flight (Stalled).
	inflight atomic.Int64
	progress atomic.Int64

	// ctx is the records' context: canceled by Close.
	ctx    context.Context
	cancel context.CancelFunc

	closeOnce sync.Once
}

// Open connects a Producer to the cluster in cfg. It checks that a broker
// answers (within ctx) but not that the topics exist: call EnsureTopics
// first.
func Open(ctx context.Context, cfg Config) (*Producer, error) {
	cfg, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	opts := append(cfg.clientOpts(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(cfg.Linger),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		// One record more than our own bound, so franz-go never blocks
		// in Produce (slots block first, honouring the caller's ctx).
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords+1),
	)
	if !cfg.Compression {
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	}
	if cfg.DeliveryTimeout > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(cfg.DeliveryTimeout))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, brokerErr("connecting producer", err)
	}
	p := &Producer{
		cfg:   cfg,
		cl:    cl,
		slots: make(chan struct{}, cfg.MaxBufferedRecords),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p, nil
}

// Config returns the producer's defaulted config.
func (p *Producer) Config() Config { return p.cfg }

// Append appends one record to shard's transactions topic and returns its
// offset once the broker has acknowledged it (acks=all). If ctx ends first,
// Append returns an error wrapping both ErrOutcomeUnknown and ctx.Err():
// the record stays in flight and may still be appended.
func (p *Producer) Append(ctx context.Context, shard uint32, key, value []byte) (int64, error) {
	type result struct {
		off int64
		err error
	}
	done := make(chan result, 1)
	if err := p.enqueue(ctx, shard, key, value, func(off int64, err error) {
		done <- result{off, err}
	}); err != nil {
		return -1, err
	}
	select {
	case r := <-done:
		return r.off, r.err
	case <-ctx.Done():
		return -1, fmt.Errorf("%w: shard %d: %w", ErrOutcomeUnknown, shard, ctx.Err())
	}
}

// AppendAsync hands one record to the producer and returns; done is called
// exactly once with the record's offset, or with -1 and an error. done runs
// on the producer's single callback goroutine, records of one shard in
// offset order: it must be quick and must not call Append, Flush or Close.
//
// AppendAsync blocks while Config.MaxBufferedRecords records are in flight.
// If ctx ends while it waits, or the shard is out of range, or the producer
// is closed, done is called before AppendAsync returns. Once AppendAsync has
// returned without calling done, ctx no longer matters.
func (p *Producer) AppendAsync(ctx context.Context, shard uint32, key, value []byte, done func(offset int64, err error)) {
	if err := p.enqueue(ctx, shard, key, value, done); err != nil {
		done(-1, err)
	}
}

// enqueue hands the record to franz-go, or returns why it did not (without
// calling done).
func (p *Producer) enqueue(ctx context.Context, shard uint32, key, value []byte, done func(int64, error)) error {
	if err := p.cfg.checkShard(shard); err != nil {
		return err
	}
	select {
	case <-p.ctx.Done():
		return fmt.Errorf("%w: producer", ErrClosed)
	default:
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("ordering: waiting for producer buffer space on shard %d: %w", shard, ctx.Err())
	case <-p.ctx.Done():
		return fmt.Errorf("%w: producer", ErrClosed)
	}
	rec := &kgo.Record{
		Topic:     p.cfg.Topic(Transactions, shard),
		Partition: 0,
		Key:       key,
		Value:     value,
	}
	if p.inflight.Add(1) == 1 {
		p.progress.Store(time.Now().UnixNano())
	}
	p.cl.Produce(p.ctx, rec, func(r *kgo.Record, err error) {
		p.progress.Store(time.Now().UnixNano())
		p.inflight.Add(-1)
		<-p.slots
		if err != nil {
			if p.ctx.Err() != nil {
				err = fmt.Errorf("%w: appending to shard %d: %w", ErrClosed, shard, err)
			} else {
				err = brokerErr(fmt.Sprintf("appending to shard %d", shard), err)
			}
			done(-1, err)
			return
		}
		done(r.Offset, nil)
	})
	return nil
}

// Stalled reports whether records are in flight and the broker has
// answered none of them (acknowledged or failed) for longer than d: the
// log takes no appends. It also returns how many and for how long.
func (p *Producer) Stalled(d time.Duration) (inflight int64, since time.Duration, stalled bool) {
	inflight = p.inflight.Load()
	if inflight <= 0 {
		return 0, 0, false
	}
	since = time.Since(time.Unix(0, p.progress.Load()))
	return inflight, since, since > d
}

// Ping checks that a broker answers within ctx.
func (p *Producer) Ping(ctx context.Context) error {
	if err := p.cl.Ping(ctx); err != nil {
		return brokerErr("ping", err)
	}
	return nil
}

// Flush waits until every record handed to the producer so far has been
// acknowledged or failed, or ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return brokerErr("flushing producer", err)
	}
	return nil
}

// Close stops the producer. Records not yet acknowledged are failed with
// ErrClosed (unless the broker already has them in flight, see franz-go's
// idempotency rules; those get an answer or ErrClosed). Call Flush first to
// wait for them instead. Close is safe to call more than once.
func (p *Producer) Close() {
	p.closeOnce.Do(func() {
		p.cancel()
		p.cl.Close()
	})
}
