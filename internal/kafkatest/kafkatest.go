// Package kafkatest gives tests a Kafka-protocol broker to talk to: an
// in-process kfake cluster, the real Apache Kafka broker that `make test`
// starts with scripts/kafka.sh, or both in turn. Tests that use a shared real
// broker name their topics with Prefix so that runs and tests never collide.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

var warmOnce sync.Once

// warm makes a fresh broker create its internal topics (consumer offsets,
// transaction state) before the first test measures anything: a broker
// creates them on the first coordinator lookup, which takes seconds on a
// cold JVM and would otherwise land inside a test's timed phase. Once per
// test process; a broker that cannot be warmed is left to the tests to
// report.
func warm(t testing.TB, brokers []string) {
	warmOnce.Do(func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
		if err != nil {
			return
		}
		defer cl.Close()
		adm := kadm.NewClient(cl)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		for ctx.Err() == nil {
			g := adm.FindGroupCoordinators(ctx, "rustorium-warmup")
			x := adm.FindTxnCoordinators(ctx, "rustorium-warmup")
			if g.Ok() && x.Ok() {
				if d := time.Since(start); d > time.Second {
					t.Logf("kafkatest: the broker's coordinators were ready after %v", d.Round(time.Millisecond))
				}
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// Environment variables read by Brokers.
const (
	// EnvBrokers holds the comma-separated host:port list of a real Kafka
	// (or Redpanda) cluster. `make test` sets it to the broker that
	// scripts/kafka.sh started.
	EnvBrokers = "RUSTORIUM_KAFKA_BROKERS"
	// EnvRequire, when "1", turns a missing EnvBrokers from a skip into a
	// failure, so that CI cannot pass by silently skipping real-Kafka tests.
	EnvRequire = "RUSTORIUM_REQUIRE_KAFKA"
)

// Kinds of broker passed to ForEachBroker's body (and used as subtest names).
const (
	KindKfake = "kfake"
	KindKafka = "kafka"
)

// Brokers returns the addresses of the real broker named by
// RUSTORIUM_KAFKA_BROKERS. When the variable is unset or empty, the test is
// skipped, or fails if RUSTORIUM_REQUIRE_KAFKA=1.
func Brokers(t testing.TB) []string {
	t.Helper()
	var brokers []string
	for _, b := range strings.Split(os.Getenv(EnvBrokers), ",") {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) > 0 {
		warm(t, brokers)
		return brokers
	}
	msg := EnvBrokers + " is not set: no real Kafka broker to test against " +
		"(`make test` starts one with scripts/kafka.sh and sets it; or run " +
		"`export " + EnvBrokers + "=$(scripts/kafka.sh start)`)"
	if os.Getenv(EnvRequire) == "1" {
		t.Fatal(msg + " and " + EnvRequire + "=1")
	}
	t.Skip(msg)
	return nil
}

// Embedded starts a one-broker kfake cluster for the test, closed by
// t.Cleanup, and returns its address. opts are appended to the defaults
// (one broker, a 100 ms minimum group session timeout).
func Embedded(t testing.TB, opts ...kfake.Opt) []string {
	t.Helper()
	return EmbeddedCluster(t, opts...).ListenAddrs()
}

// EmbeddedCluster is Embedded returning the cluster itself, for tests that
// inject faults through its control functions.
func EmbeddedCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	all := append([]kfake.Opt{
		kfake.NumBrokers(1),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}, opts...)
	c, err := kfake.NewCluster(all...)
	if err != nil {
		t.Fatalf("kafkatest: starting kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// ForEachBroker runs body as two subtests: "kfake" against a fresh embedded
// cluster, and "kafka" against the real broker from Brokers (skipped, or
// failed under RUSTORIUM_REQUIRE_KAFKA=1, when there is none). kind is
// KindKfake or KindKafka.
func ForEachBroker(t *testing.T, body func(t *testing.T, brokers []string, kind string)) {
	t.Helper()
	t.Run(KindKfake, func(t *testing.T) {
		body(t, Embedded(t), KindKfake)
	})
	t.Run(KindKafka, func(t *testing.T) {
		body(t, Brokers(t), KindKafka)
	})
}

// Prefix returns a topic-name prefix unique to this test and run, such as
// "t-TestAppend-kafka-3f9a1c2e-", made only of characters Kafka allows in
// topic names. Use it on shared brokers so no two tests (or two runs against
// a long-lived broker) see each other's topics.
func Prefix(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("t-")
	for _, r := range t.Name() {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	name := b.String()
	if len(name) > 160 { // Kafka allows 249; keep room for the suffix and topic
		name = name[:160]
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	return name + "-" + hex.EncodeToString(rnd[:]) + "-"
}
