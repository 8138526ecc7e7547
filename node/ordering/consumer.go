package ordering

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Start positions for OpenConsumer besides an exact offset.
const (
	// FromEnd starts after the last record present when consuming begins.
	FromEnd int64 = -1
	// FromStart starts at the oldest record the broker still has.
	FromStart int64 = -2
)

// Record is one record read back from a shard's log.
type Record struct {
	Offset    int64
	Key       []byte
	Value     []byte
	Timestamp time.Time
}

// Consumer reads one shard's topic of one stream in offset order, starting
// at a given offset. It reads directly from the partition (no consumer
// group, nothing committed), with read_committed isolation: records of
// aborted or open Kafka transactions are never returned. The caller stores
// its own resume point (Next) and passes it to OpenConsumer after a restart.
//
// A Consumer is meant for one goroutine; Close may be called from any.
type Consumer struct {
	cl     *kgo.Client
	topic  string
	shard  uint32
	next   int64 // offset after the last returned record; -1 until known
	stash  error // non-fatal error seen alongside records, returned next
	fatal  error // sticky
	closed sync.Once
}

// OpenConsumer starts reading stream's topic of shard at offset from
// (>= 0, or FromStart / FromEnd). A from beyond the end of the log, or
// before its start, makes Poll fail with ErrOffsetOutOfRange instead of
// silently jumping. It checks that a broker answers within ctx.
func OpenConsumer(ctx context.Context, cfg Config, stream Stream, shard uint32, from int64) (*Consumer, error) {
	cfg, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	if err := cfg.checkShard(shard); err != nil {
		return nil, err
	}
	if stream != Transactions && stream != Blocks {
		return nil, fmt.Errorf("%w: unknown stream %v", ErrConfig, stream)
	}
	var start kgo.Offset
	switch {
	case from >= 0:
		start = kgo.NewOffset().At(from)
	case from == FromStart:
		start = kgo.NewOffset().AtStart()
	case from == FromEnd:
		start = kgo.NewOffset().AtEnd()
	default:
		return nil, fmt.Errorf("%w: start offset %d (want >= 0, FromStart or FromEnd)", ErrConfig, from)
	}
	topic := cfg.Topic(stream, shard)
	opts := append(cfg.clientOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: start}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Never jump on OFFSET_OUT_OF_RANGE: surface it.
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, brokerErr("connecting consumer", err)
	}
	next := from
	if from < 0 {
		next = -1
	}
	return &Consumer{cl: cl, topic: topic, shard: shard, next: next}, nil
}

// Topic returns the topic the consumer reads.
func (c *Consumer) Topic() string { return c.topic }

// Next returns the offset after the last record Poll returned: the resume
// point to store. Before the first record it is the start offset given to
// OpenConsumer, or -1 for FromStart / FromEnd.
func (c *Consumer) Next() int64 { return c.next }

// Poll waits until records are available, ctx ends, or the consumer is
// closed, and returns all buffered records in offset order. See PollMax.
func (c *Consumer) Poll(ctx context.Context) ([]Record, error) { return c.PollMax(ctx, 0) }

// PollMax is Poll returning at most max records (all buffered if max <= 0);
// the rest stay buffered for the next call. It returns records or an error,
// never both: an error seen together with records is returned by the next
// call. Errors: ctx's error (wrapped), ErrClosed, ErrOffsetOutOfRange (fatal:
// every later call returns it too), or ErrBroker for other fetch errors,
// after which polling may continue (franz-go keeps retrying).
func (c *Consumer) PollMax(ctx context.Context, max int) ([]Record, error) {
	if c.fatal != nil {
		return nil, c.fatal
	}
	if err := c.stash; err != nil {
		c.stash = nil
		return nil, err
	}
	fs := c.cl.PollRecords(ctx, max)
	var recs []Record
	fs.EachRecord(func(r *kgo.Record) {
		recs = append(recs, Record{Offset: r.Offset, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp})
	})
	var first error
	fs.EachError(func(topic string, _ int32, err error) {
		if first != nil {
			return
		}
		switch {
		case errors.Is(err, kgo.ErrClientClosed):
			first = fmt.Errorf("%w: consumer of %s", ErrClosed, c.topic)
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			first = fmt.Errorf("ordering: polling %s: %w", c.topic, err)
		case errors.Is(err, kerr.OffsetOutOfRange):
			first = fmt.Errorf("%w: %s from offset %d: %w", ErrOffsetOutOfRange, c.topic, c.next, err)
			c.fatal = first
		default:
			first = fmt.Errorf("%w: fetching %s: %w", ErrBroker, c.topic, err)
		}
	})
	if len(recs) > 0 {
		c.next = recs[len(recs)-1].Offset + 1
		if c.fatal == nil && first != nil && ctx.Err() == nil {
			c.stash = first
		}
		return recs, nil
	}
	if first == nil {
		// No records and no error: only possible when ctx ended
		// between franz-go's checks; report it.
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("ordering: polling %s: %w", c.topic, err)
		}
	}
	return nil, first
}

// SetNext makes the next Poll return records from offset (>= 0) on, dropping
// what was fetched before it, and sets Next to offset. It is for a reader
// that skipped records it got another way (a replica given a block's
// transactions by its own leader): after a fatal error it does nothing. Call
// it from the goroutine that polls.
func (c *Consumer) SetNext(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("%w: set next offset %d", ErrConfig, offset)
	}
	if c.fatal != nil {
		return c.fatal
	}
	c.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{c.topic: {0: {Epoch: -1, Offset: offset}}})
	c.next, c.stash = offset, nil
	return nil
}

// Close stops the consumer; a Poll in progress returns ErrClosed. Safe to
// call more than once.
func (c *Consumer) Close() {
	c.closed.Do(c.cl.Close)
}
