// Package ordering is the node's sharded log: transactions are appended to
// one single-partition Kafka topic per shard (transactions-<shard>) and read
// back in offset order, so the broker's offset is the order of a shard's
// transactions; shard leaders (Publisher) turn them into blocks-<shard>
// exactly once, in Kafka transactions. It wraps franz-go (kgo/kadm) for any
// Kafka-protocol cluster and can start franz-go's kfake in process as the
// default embedded broker.
package ordering

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Errors returned by this package, always wrapped with %w so that
// errors.Is works; the wrapping text names what was wrong.
var (
	// ErrConfig reports an invalid Config (from Validate and every
	// constructor that takes a Config).
	ErrConfig = errors.New("ordering: invalid config")
	// ErrShardOutOfRange reports a shard number >= Config.Shards.
	ErrShardOutOfRange = errors.New("ordering: shard out of range")
	// ErrClosed reports use of a Producer or Consumer after Close, and
	// records that Close failed before the broker acknowledged them.
	ErrClosed = errors.New("ordering: closed")
	// ErrOutcomeUnknown reports that Append stopped waiting (its context
	// ended) after handing the record to the client: the record may still
	// be appended. Flush waits for it.
	ErrOutcomeUnknown = errors.New("ordering: append outcome unknown")
	// ErrTopicLayout reports an existing topic that does not have exactly
	// one partition: the log's order would be lost across partitions.
	ErrTopicLayout = errors.New("ordering: topic layout mismatch")
	// ErrOffsetOutOfRange reports a consumer start offset outside the
	// partition's log (beyond its end, or already deleted). The consumer
	// does not silently jump: resuming elsewhere would lose or repeat txs.
	ErrOffsetOutOfRange = errors.New("ordering: offset out of range")
	// ErrBroker wraps any other error the broker or client reported.
	ErrBroker = errors.New("ordering: broker error")
)

// MaxShards bounds Config.Shards. Each shard costs two topics.
const MaxShards = 4096

// DefaultShards is the shard count of a node, a cluster file and a scenario
// that name none.
const DefaultShards = 4

// Config says how to reach the cluster and how the log is laid out. The zero
// value of every field except Brokers and Shards is a documented default;
// EnsureDefaults fills them in and Validate checks the result.
type Config struct {
	// Brokers are the seed host:port addresses. Required.
	Brokers []string

	// TopicPrefix is prepended to every topic name ("" by default), so
	// several clusters or test runs can share one broker.
	TopicPrefix string

	// Shards is the number of shards, 1..MaxShards. Required. It is part
	// of the data layout: changing it re-routes keys (see ShardOf).
	Shards int

	// ReplicationFactor is used by EnsureTopics for topics it creates.
	// 0 means 1; -1 means the broker's default.replication.factor.
	ReplicationFactor int16

	// Linger is how long the producer waits for more records before
	// sending a batch. The default is 0, not franz-go's 10 ms: the
	// accepted-latency path is one synchronous tx per client, and a
	// linger would be added to every such tx's latency in full. Under
	// load the producer batches anyway, because records that arrive while
	// a request is in flight wait for it (one in flight per broker).
	Linger time.Duration

	// MaxBufferedRecords bounds records handed to the producer and not yet
	// acknowledged; AppendAsync blocks (until its context ends) beyond it.
	// 0 means 10000.
	MaxBufferedRecords int

	// DeliveryTimeout fails records that the broker has not acknowledged
	// within it (only while it is safe to, see franz-go's
	// RecordDeliveryTimeout). 0 means no timeout: retry until Close.
	DeliveryTimeout time.Duration

	// Compression turns on snappy for produced batches. The default is
	// none: transactions are mostly signatures and hashes, which do not
	// compress, and the CPU would sit on the latency path.
	Compression bool

	// Dialer, if non-nil, opens every broker connection (it is passed to
	// kgo.Dialer); netem wraps the broker path through it. nil means a
	// plain net.Dialer with franz-go's 10 s timeout.
	Dialer func(ctx context.Context, network, host string) (net.Conn, error)

	// Wire, if set, counts the bytes every client made from this Config
	// writes to and reads from the brokers (see WireBytes). Nil counts
	// nothing.
	Wire *WireBytes

	// ClientID is the Kafka client id. "" means "rustorium".
	ClientID string

	// Logger receives franz-go's log lines at Warn and above, or all of
	// them when it is enabled for Debug (franz-go's Info level logs every
	// connection, too chatty for a node). nil means discard.
	Logger *slog.Logger
}

// EnsureDefaults fills zero-valued fields with their documented defaults.
func (c *Config) EnsureDefaults() {
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 1
	}
	if c.MaxBufferedRecords == 0 {
		c.MaxBufferedRecords = 10000
	}
	if c.ClientID == "" {
		c.ClientID = "rustorium"
	}
}

// Validate reports the first invalid field, wrapping ErrConfig.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%w: Brokers is empty", ErrConfig)
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("%w: broker %q is not host:port: %v", ErrConfig, b, err)
		}
	}
	if c.Shards < 1 || c.Shards > MaxShards {
		return fmt.Errorf("%w: Shards is %d, want 1..%d", ErrConfig, c.Shards, MaxShards)
	}
	if err := validTopicName(c.Topic(Transactions, uint32(c.Shards-1))); err != nil {
		return fmt.Errorf("%w: TopicPrefix %q: %v", ErrConfig, c.TopicPrefix, err)
	}
	if c.ReplicationFactor < -1 || c.ReplicationFactor == 0 {
		return fmt.Errorf("%w: ReplicationFactor is %d, want -1 or >= 1", ErrConfig, c.ReplicationFactor)
	}
	if c.Linger < 0 {
		return fmt.Errorf("%w: Linger is negative (%v)", ErrConfig, c.Linger)
	}
	if c.MaxBufferedRecords < 1 {
		return fmt.Errorf("%w: MaxBufferedRecords is %d, want >= 1", ErrConfig, c.MaxBufferedRecords)
	}
	if c.DeliveryTimeout < 0 {
		return fmt.Errorf("%w: DeliveryTimeout is negative (%v)", ErrConfig, c.DeliveryTimeout)
	}
	return nil
}

// prepare returns a defaulted, validated copy of c.
func (c Config) prepare() (Config, error) {
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	c.Brokers = append([]string(nil), c.Brokers...)
	return c, nil
}

// Stream names one of the two logs every shard has.
type Stream uint8

const (
	// Transactions is the shard's ordered transaction log,
	// <prefix>transactions-<shard>.
	Transactions Stream = iota
	// Blocks is the shard's block log, <prefix>blocks-<shard>.
	Blocks
)

// String returns the topic base name of s.
func (s Stream) String() string {
	switch s {
	case Transactions:
		return "transactions"
	case Blocks:
		return "blocks"
	default:
		return "stream(" + strconv.Itoa(int(s)) + ")"
	}
}

// LeadersGroup is the consumer group of the shards' leaders by default
// (PublisherConfig.Group): TopicPrefix + "rustorium-leaders".
func (c *Config) LeadersGroup() string { return c.TopicPrefix + "rustorium-leaders" }

// Topic returns the topic of stream s for shard: TopicPrefix + s + "-" + shard.
func (c *Config) Topic(s Stream, shard uint32) string {
	return c.TopicPrefix + s.String() + "-" + strconv.FormatUint(uint64(shard), 10)
}

// Topics returns every topic of the layout: the transactions topics of all
// shards in order, then the blocks topics.
func (c *Config) Topics() []string {
	ts := make([]string, 0, 2*c.Shards)
	for _, s := range []Stream{Transactions, Blocks} {
		for i := 0; i < c.Shards; i++ {
			ts = append(ts, c.Topic(s, uint32(i)))
		}
	}
	return ts
}

func (c *Config) checkShard(shard uint32) error {
	if int64(shard) >= int64(c.Shards) {
		return fmt.Errorf("%w: shard %d, have %d shards", ErrShardOutOfRange, shard, c.Shards)
	}
	return nil
}

// validTopicName applies Kafka's topic name rules.
func validTopicName(name string) error {
	if len(name) > 249 {
		return fmt.Errorf("topic name %q is longer than 249 characters", name)
	}
	if i := strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}); i >= 0 {
		return fmt.Errorf("topic name %q has %q; Kafka allows only [a-zA-Z0-9._-]", name, name[i])
	}
	return nil
}

// clientOpts are the kgo options every client of this package shares.
func (c *Config) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		// A topic created a moment ago may be missing from a real broker's
		// first metadata answer; franz-go then asks again only after
		// MetadataMinAge (5 s by default), which would stall a new node's
		// group join and first blocks for seconds.
		kgo.MetadataMinAge(100 * time.Millisecond),
	}
	if c.Dialer != nil {
		opts = append(opts, kgo.Dialer(c.Dialer))
	}
	if c.Logger != nil {
		opts = append(opts, kgo.WithLogger(slogAdapter{c.Logger}))
	}
	if c.Wire != nil {
		opts = append(opts, kgo.WithHooks(c.Wire))
	}
	return opts
}

// slogAdapter forwards franz-go's logs to a slog.Logger.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Level() kgo.LogLevel {
	ctx := context.Background()
	switch {
	case a.l.Enabled(ctx, slog.LevelDebug):
		return kgo.LogLevelDebug
	case a.l.Enabled(ctx, slog.LevelWarn):
		return kgo.LogLevelWarn
	default:
		return kgo.LogLevelError
	}
}

func (a slogAdapter) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var l slog.Level
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	case kgo.LogLevelInfo:
		l = slog.LevelInfo
	default:
		l = slog.LevelDebug
	}
	a.l.Log(context.Background(), l, msg, keyvals...)
}

// brokerErr wraps err as ErrBroker unless it already is one of ours or a
// context error.
func brokerErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("ordering: %s: %w", what, err)
	case errors.Is(err, kgo.ErrClientClosed):
		return fmt.Errorf("%w: %s: %w", ErrClosed, what, err)
	default:
		return fmt.Errorf("%w: %s: %w", ErrBroker, what, err)
	}
}
