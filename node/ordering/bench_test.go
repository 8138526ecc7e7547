package ordering_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/node/ordering"
)

// benchBrokers yields kfake (in process, sharing the benchmark's CPUs) and,
// when RUSTORIUM_KAFKA_BROKERS is set, the real broker.
func benchBrokers(b *testing.B, body func(b *testing.B, brokers []string)) {
	b.Run("kfake", func(b *testing.B) { body(b, kafkatest.Embedded(b)) })
	if env := os.Getenv(kafkatest.EnvBrokers); env != "" {
		b.Run("kafka", func(b *testing.B) { body(b, strings.Split(env, ",")) })
	}
}

func benchProducer(b *testing.B, brokers []string, shards int, linger time.Duration) *ordering.Producer {
	b.Helper()
	cfg := ordering.Config{Brokers: brokers, TopicPrefix: kafkatest.Prefix(b), Shards: shards, Linger: linger}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := ordering.EnsureTopics(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	p, err := ordering.Open(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	// Load the producer id and the connection before measuring.
	for s := range uint32(shards) {
		if _, err := p.Append(ctx, s, nil, []byte("warm-up")); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

// BenchmarkProduceSync measures produce→ack latency of one synchronous
// Append at a time (the accepted-latency path of a single client), with
// this package's default linger of 0 and with franz-go's default of 10 ms.
// Reports p50/p99 in µs.
//
//	go test -run '^$' -bench ProduceSync -benchtime 2000x ./node/ordering/
func BenchmarkProduceSync(b *testing.B) {
	benchBrokers(b, func(b *testing.B, brokers []string) {
		for _, linger := range []time.Duration{0, 10 * time.Millisecond} {
			b.Run("linger="+linger.String(), func(b *testing.B) {
				p := benchProducer(b, brokers, 1, linger)
				ctx := context.Background()
				val := make([]byte, 200)
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for b.Loop() {
					t0 := time.Now()
					if _, err := p.Append(ctx, 0, nil, val); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
				b.StopTimer()
				slices.Sort(lat)
				q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) }
				b.ReportMetric(q(0.50), "p50-µs")
				b.ReportMetric(q(0.99), "p99-µs")
			})
		}
	})
}

// BenchmarkProduceAsync measures produce throughput with AppendAsync spread
// over 4 shards, 200-byte values, default config. Reports records/s.
//
//	go test -run '^$' -bench ProduceAsync -benchtime 200000x ./node/ordering/
func BenchmarkProduceAsync(b *testing.B) {
	benchBrokers(b, func(b *testing.B, brokers []string) {
		const shards = 4
		p := benchProducer(b, brokers, shards, 0)
		ctx := context.Background()
		val := make([]byte, 200)
		var wg sync.WaitGroup
		var errOnce sync.Once
		var firstErr error
		done := func(_ int64, err error) {
			if err != nil {
				errOnce.Do(func() { firstErr = err })
			}
			wg.Done()
		}
		b.SetBytes(int64(len(val)))
		b.ResetTimer()
		t0 := time.Now()
		i := 0
		for b.Loop() {
			wg.Add(1)
			p.AppendAsync(ctx, uint32(i%shards), nil, val, done)
			i++
		}
		wg.Wait()
		el := time.Since(t0)
		b.StopTimer()
		if firstErr != nil {
			b.Fatal(firstErr)
		}
		b.ReportMetric(float64(i)/el.Seconds(), "rec/s")
	})
}

// BenchmarkPublish measures one leader round's Kafka transaction alone: a
// transaction carrying one block per shard and committing the consumed
// offsets, with one new transaction per shard to consume each round.
// Reports the Publish p50/p99 in µs.
//
//	go test -run '^$' -bench Publish -benchtime 500x ./node/ordering/
func BenchmarkPublish(b *testing.B) {
	benchBrokers(b, func(b *testing.B, brokers []string) {
		const shards = 4
		p := benchProducer(b, brokers, shards, 0)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		pc := ordering.PublisherConfig{Config: ordering.Config{Brokers: brokers, TopicPrefix: p.Config().TopicPrefix, Shards: shards},
			NodeID: "bench", SessionTimeout: time.Second, TransactionTimeout: 3 * time.Second}
		pub, err := ordering.OpenPublisher(ctx, pc)
		if err != nil {
			b.Fatal(err)
		}
		defer pub.Close()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for range b.N {
			for s := range uint32(shards) {
				if _, err := p.Append(ctx, s, nil, []byte("tx")); err != nil {
					b.Fatal(err)
				}
			}
			var outs []ordering.Output
			for got := 0; got < shards; {
				batches, err := pub.Poll(ctx, 0)
				if err != nil {
					b.Fatal(err)
				}
				for _, bt := range batches {
					got += len(bt.Records)
					outs = append(outs, ordering.Output{Stream: ordering.Blocks, Shard: bt.Shard, Value: []byte("block")})
				}
			}
			t0 := time.Now()
			ok, err := pub.Publish(ctx, outs)
			if err != nil || !ok {
				b.Fatalf("publish: %v %v", ok, err)
			}
			lat = append(lat, time.Since(t0))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50_µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99_µs")
	})
}
