package ordering_test

import (
	"errors"
	"hash/fnv"
	"strings"
	"testing"
	"time"

	"github.com/rustorium/rustorium/node/ordering"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	var c ordering.Config
	c.Brokers = []string{"127.0.0.1:9092"}
	c.Shards = 4
	c.EnsureDefaults()
	if c.ReplicationFactor != 1 || c.MaxBufferedRecords != 10000 || c.ClientID != "rustorium" || c.Linger != 0 {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}

	for name, mut := range map[string]func(*ordering.Config){
		"no brokers":   func(c *ordering.Config) { c.Brokers = nil },
		"bad broker":   func(c *ordering.Config) { c.Brokers = []string{"localhost"} },
		"zero shards":  func(c *ordering.Config) { c.Shards = 0 },
		"too many":     func(c *ordering.Config) { c.Shards = ordering.MaxShards + 1 },
		"bad prefix":   func(c *ordering.Config) { c.TopicPrefix = "a/b" },
		"long prefix":  func(c *ordering.Config) { c.TopicPrefix = strings.Repeat("p", 240) },
		"rf -2":        func(c *ordering.Config) { c.ReplicationFactor = -2 },
		"neg linger":   func(c *ordering.Config) { c.Linger = -time.Millisecond },
		"neg buffer":   func(c *ordering.Config) { c.MaxBufferedRecords = -1 },
		"neg delivery": func(c *ordering.Config) { c.DeliveryTimeout = -time.Second },
	} {
		bad := c
		mut(&bad)
		if err := bad.Validate(); !errors.Is(err, ordering.ErrConfig) {
			t.Errorf("%s: Validate = %v, want ErrConfig", name, err)
		}
	}

	ok := c
	ok.ReplicationFactor = -1 // broker default
	if err := ok.Validate(); err != nil {
		t.Errorf("RF -1: %v", err)
	}
}

func TestTopics(t *testing.T) {
	c := ordering.Config{TopicPrefix: "x.", Shards: 2}
	got := strings.Join(c.Topics(), ",")
	if want := "x.transactions-0,x.transactions-1,x.blocks-0,x.blocks-1"; got != want {
		t.Fatalf("Topics = %s, want %s", got, want)
	}
	if s := ordering.Stream(9).String(); s != "stream(9)" {
		t.Fatalf("unknown stream String = %q", s)
	}
}

// FuzzShardOf checks that routing never panics, stays in range, and is
// FNV-1a 64 for any key and shard count.
func FuzzShardOf(f *testing.F) {
	f.Add([]byte("alice"), 4)
	f.Add([]byte{}, 0)
	f.Add([]byte{0xff, 0}, -1)
	f.Add([]byte("account-123456"), ordering.MaxShards)
	f.Fuzz(func(t *testing.T, key []byte, shards int) {
		got := ordering.ShardOf(key, shards)
		if shards <= 1 {
			if got != 0 {
				t.Fatalf("ShardOf(%x, %d) = %d, want 0", key, shards, got)
			}
			return
		}
		h := fnv.New64a()
		h.Write(key)
		if want := uint32(h.Sum64() % uint64(shards)); got != want {
			t.Fatalf("ShardOf(%x, %d) = %d, want %d", key, shards, got, want)
		}
	})
}
