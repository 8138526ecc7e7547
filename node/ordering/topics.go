package ordering

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/rustorium/rustorium/internal/retry"
)

// topicsReadyTimeout bounds EnsureTopics' wait for leaders when ctx has no
// deadline of its own.
const topicsReadyTimeout = 30 * time.Second

// EnsureTopics creates the layout's missing topics (Config.Topics: one
// partition each, Config.ReplicationFactor replicas) and waits until every
// topic has a leader, so that producing right after it returns does not
// race the broker's metadata propagation. It returns the topics it created,
// sorted; a second call returns none.
//
// It is safe to run concurrently from several nodes: a topic another node
// created first (TOPIC_ALREADY_EXISTS) counts as present. An existing topic
// with other than one partition fails with ErrTopicLayout. If ctx has no
// deadline, the wait for leaders is bounded by 30 s.
func EnsureTopics(ctx context.Context, cfg Config) ([]string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, topicsReadyTimeout)
		defer cancel()
	}
	// franz-go answers a user's metadata request from its cache when the
	// cache is younger than MetadataMinAge (5 s by default); the leader
	// wait below needs fresh answers.
	cfg, adm, err := admin(cfg, kgo.MetadataMinAge(10*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer adm.Close()

	want := cfg.Topics()
	details, err := adm.ListTopics(ctx, want...)
	if err != nil {
		return nil, brokerErr("listing topics", err)
	}
	var missing []string
	for _, t := range want {
		d, ok := details[t]
		switch {
		case !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			missing = append(missing, t)
		case d.Err != nil:
			return nil, brokerErr("describing topic "+t, d.Err)
		case len(d.Partitions) != 1:
			return nil, fmt.Errorf("%w: topic %s has %d partitions, want 1", ErrTopicLayout, t, len(d.Partitions))
		}
	}

	var created []string
	if len(missing) > 0 {
		resps, err := adm.CreateTopics(ctx, 1, cfg.ReplicationFactor, nil, missing...)
		if err != nil {
			return nil, brokerErr("creating topics", err)
		}
		for _, t := range missing {
			r, ok := resps[t]
			switch {
			case !ok:
				return nil, fmt.Errorf("%w: creating topic %s: no answer for it", ErrBroker, t)
			case r.Err == nil:
				created = append(created, t)
			case errors.Is(r.Err, kerr.TopicAlreadyExists):
				// Another node won the race; the layout check below
				// still applies to it.
			default:
				return nil, fmt.Errorf("%w: creating topic %s: %w (%s)", ErrBroker, t, r.Err, r.ErrMessage)
			}
		}
	}
	sort.Strings(created)
	if err := waitLeaders(ctx, adm, want); err != nil {
		return created, err
	}
	return created, nil
}

// admin prepares cfg and returns it with an admin client of its own (on a
// kgo client made from cfg and extra), which the caller closes.
func admin(cfg Config, extra ...kgo.Opt) (Config, *kadm.Client, error) {
	cfg, err := cfg.prepare()
	if err != nil {
		return Config{}, nil, err
	}
	cl, err := kgo.NewClient(append(cfg.clientOpts(), extra...)...)
	if err != nil {
		return Config{}, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return cfg, kadm.NewClient(cl), nil
}

// DeleteTopics deletes the layout's topics (Config.Topics), for a layout
// that was a measurement's own: the log's records are gone with them. A
// topic that does not exist counts as deleted.
func DeleteTopics(ctx context.Context, cfg Config) error {
	cfg, adm, err := admin(cfg)
	if err != nil {
		return err
	}
	defer adm.Close()
	resps, err := adm.DeleteTopics(ctx, cfg.Topics()...)
	if err != nil {
		return brokerErr("deleting topics", err)
	}
	var errs []error
	for _, t := range cfg.Topics() {
		if r, ok := resps[t]; ok && r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("%w: deleting topic %s: %w (%s)", ErrBroker, t, r.Err, r.ErrMessage))
		}
	}
	return errors.Join(errs...)
}

// waitLeaders polls metadata until every topic has exactly one partition
// with a leader.
func waitLeaders(ctx context.Context, adm *kadm.Client, topics []string) error {
	backoff := retry.Backoff{Min: 20 * time.Millisecond, Max: 500 * time.Millisecond}
	for {
		details, err := adm.ListTopics(ctx, topics...)
		var pending string
		if err == nil {
			for _, t := range topics {
				d, ok := details[t]
				if !ok || d.Err != nil {
					pending = t
					break
				}
				if len(d.Partitions) != 1 {
					return fmt.Errorf("%w: topic %s has %d partitions, want 1", ErrTopicLayout, t, len(d.Partitions))
				}
				if p := d.Partitions[0]; p.Err != nil || p.Leader < 0 {
					pending = t
					break
				}
			}
			if pending == "" {
				return nil
			}
		}
		if werr := backoff.Wait(ctx); werr != nil {
			if err == nil {
				err = fmt.Errorf("topic %s has no leader yet", pending)
			}
			return fmt.Errorf("%w: waiting for topic leaders: %w (%w)", ErrBroker, ctx.Err(), err)
		}
	}
}

// EndOffsets returns the end offset (high-water mark: the offset the next
// record will get) of stream's topic of every shard, by shard.
func EndOffsets(ctx context.Context, cfg Config, stream Stream) (map[uint32]int64, error) {
	cfg, adm, err := admin(cfg)
	if err != nil {
		return nil, err
	}
	defer adm.Close()
	topics := make([]string, cfg.Shards)
	shardOf := make(map[string]uint32, cfg.Shards)
	for s := range uint32(cfg.Shards) {
		topics[s] = cfg.Topic(stream, s)
		shardOf[topics[s]] = s
	}
	offs, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		return nil, brokerErr("listing end offsets", err)
	}
	out := make(map[uint32]int64, cfg.Shards)
	for _, t := range topics {
		o, ok := offs.Lookup(t, 0)
		if !ok {
			return nil, fmt.Errorf("%w: no end offset for %s", ErrBroker, t)
		}
		out[shardOf[t]] = o.Offset
	}
	return out, nil
}

// DeleteBelow deletes the records below below[s] of stream's topic of each
// shard s listed (Kafka's DeleteRecords: the log start offset moves up and
// whole segments below it go). It is for a log whose consumers are all
// known to have consumed those records: a node replays its shards from its
// store's offsets, never from below them. Offsets at or below the log
// start are left as they are.
func DeleteBelow(ctx context.Context, cfg Config, stream Stream, below map[uint32]int64) error {
	if len(below) == 0 {
		return nil
	}
	cfg, adm, err := admin(cfg)
	if err != nil {
		return err
	}
	defer adm.Close()
	offs := kadm.Offsets{}
	for s, o := range below {
		if o > 0 {
			offs.AddOffset(cfg.Topic(stream, s), 0, o, -1)
		}
	}
	resp, err := adm.DeleteRecords(ctx, offs)
	if err == nil {
		for _, r := range resp.Sorted() {
			if r.Err != nil && !errors.Is(r.Err, kerr.OffsetOutOfRange) {
				err = r.Err
				break
			}
		}
	}
	if err != nil {
		return brokerErr("deleting records", err)
	}
	return nil
}
