package node_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/tx"
)

// BenchmarkCluster measures committed throughput and commit latency of 1
// and 3 in-process nodes with 4 shards on the embedded broker, for puts and
// for transfers: b.N transactions are submitted by 256 concurrent streams
// spread over the nodes, each waiting for its commit receipt. It reports
// committed tx/s and the p50/p99 of submit → committed, and logs the mean
// time of each leader-round phase. RUSTORIUM_BENCH_BROKERS=host:port runs
// it on a real broker instead; RUSTORIUM_BENCH_STREAMS changes the number
// of streams (a closed loop is latency-bound: more streams, more load).
//
//	go test -run '^$' -bench Cluster -benchtime 20000x ./node/
func BenchmarkCluster(b *testing.B) {
	for _, nodes := range []int{1, 3} {
		for _, kind := range []string{"put", "transfer"} {
			b.Run(fmt.Sprintf("nodes=%d/%s", nodes, kind), func(b *testing.B) {
				benchCluster(b, nodes, kind)
			})
		}
	}
}

func benchCluster(b *testing.B, nodes int, kind string) {
	const shards = 4
	streams := 256
	if env := os.Getenv("RUSTORIUM_BENCH_STREAMS"); env != "" {
		n, err := strconv.Atoi(env)
		if err != nil || n < 1 {
			b.Fatalf("RUSTORIUM_BENCH_STREAMS=%q: want a positive integer", env)
		}
		streams = n
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	accounts, genesis := testAccounts(streams, shards)
	brokers := kafkatest.Embedded(b)
	if env := os.Getenv("RUSTORIUM_BENCH_BROKERS"); env != "" {
		brokers = strings.Split(env, ",") // e.g. the real broker of scripts/kafka.sh
	}
	c := newTestCluster(b, ctx, brokers, nodes, shards, 0, genesis)
	c.startAll()

	// Pre-sign: stream g sends transactions g, g+streams, ... in order, so
	// a sender's nonces arrive in order.
	raws := make([][]byte, b.N)
	for i := range raws {
		g := i % streams
		switch kind {
		case "put":
			x := &tx.Tx{Kind: tx.KindPut, ChainID: chain, Nonce: uint64(i), Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}
			x.Sign(accounts[g])
			raws[i] = x.Encode()
		case "transfer":
			var to [32]byte
			copy(to[:], accounts[rand.IntN(streams)].Public().(ed25519.PublicKey))
			x := &tx.Tx{Kind: tx.KindTransfer, ChainID: chain, Nonce: uint64(i / streams), To: to, Amount: 1}
			x.Sign(accounts[g])
			raws[i] = x.Encode()
		}
	}
	clients := make([]*p2p.Client, nodes*4)
	for i := range clients {
		ni := i % nodes
		cl, err := p2p.Dial(ctx, c.addrs[ni], p2p.ClientConfig{ServerKey: c.keys[ni].Public().(ed25519.PublicKey)})
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		clients[i] = cl
	}
	lat := make([]time.Duration, b.N)
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := clients[g%len(clients)]
			for i := g; i < b.N; i += streams {
				t0 := time.Now()
				call, err := cl.Submit(ctx, raws[i])
				if err == nil {
					if _, err = call.Accepted(); err == nil {
						var com p2p.Committed
						com, err = call.Committed()
						if err == nil && com.Status != p2p.StatusOK {
							err = fmt.Errorf("failed: %s", com.Reason)
						}
					}
				}
				if err != nil {
					failed.Add(1)
					continue
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d transactions failed", f, b.N)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "committed_tx/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
	b.ReportMetric(0, "ns/op")
	for _, phase := range []string{"poll", "propose", "publish"} {
		if sum, n := histogram(b, c.regs[0], "rustorium_leader_round_seconds", phase); n > 0 {
			b.Logf("node-1 leader  %-8s %6d rounds, mean %v", phase, n, time.Duration(sum/float64(n)*1e9).Round(time.Microsecond))
		}
	}
	for _, phase := range []string{"arrive", "read", "execute", "root", "final", "commit"} {
		if sum, n := histogram(b, c.regs[0], "rustorium_replica_block_seconds", phase); n > 0 {
			b.Logf("node-1 replica %-8s %6d blocks, mean %v", phase, n, time.Duration(sum/float64(n)*1e9).Round(time.Microsecond))
		}
	}
}
