package bench_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rustorium/rustorium/bench"
	"github.com/rustorium/rustorium/reports"
)

// BenchmarkClusterCommit measures the committed stage of 1 and 3 nodes with
// 4 shards, for puts and for transfers, end to end through the harness
// (QUIC clients, the log, blocks, attestations, Pebble): at a fixed offered
// open-loop rate (committed p50/p99 at that load) and with a closed loop of
// many clients (the committed throughput the cluster sustains). Each
// sub-benchmark is one run (use -benchtime 1x); it reports committed tx/s,
// p50 and p99 in ms, and the Merkle batch ceiling of the same run.
//
// It runs only with RUSTORIUM_BENCH_CLUSTER=1 (it takes minutes): `make
// bench-cluster`. BENCH_RATE (default 1000) is the offered rate,
// BENCH_CLIENTS (default 256) the closed loop's clients, BENCH_DURATION
// (default 10s) the measured time of each run, BENCH_NODES (default "1 3")
// the cluster sizes, BENCH_PROTOCOLS (default "quic") the client protocols
// to compare (quic, rest, ws, graphql); RUSTORIUM_BENCH_BROKERS runs on a
// real broker. The reports go to BENCH_OUT (default a temporary folder).
func BenchmarkClusterCommit(b *testing.B) {
	if os.Getenv("RUSTORIUM_BENCH_CLUSTER") != "1" {
		b.Skip("set RUSTORIUM_BENCH_CLUSTER=1 (make bench-cluster)")
	}
	rate := envInt(b, "BENCH_RATE", 1000)
	clients := envInt(b, "BENCH_CLIENTS", 256)
	duration := os.Getenv("BENCH_DURATION")
	if duration == "" {
		duration = "10s"
	}
	nodes := []int{1, 3}
	if s := os.Getenv("BENCH_NODES"); s != "" {
		nodes = nil
		for _, f := range splitFields(s) {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatalf("BENCH_NODES: %v", err)
			}
			nodes = append(nodes, n)
		}
	}
	protocols := []string{"quic"}
	if s := os.Getenv("BENCH_PROTOCOLS"); s != "" {
		protocols = splitFields(s)
	}
	var brokers []string
	if s := os.Getenv("RUSTORIUM_BENCH_BROKERS"); s != "" {
		brokers = splitFields(s)
	}
	for _, n := range nodes {
		for _, kind := range []string{"put", "transfer"} {
			for _, load := range []string{fmt.Sprintf("rate: %d/s", rate), fmt.Sprintf("clients: %d", clients)} {
				for _, proto := range protocols {
					benchClusterRun(b, n, kind, load, proto, duration, brokers)
				}
			}
		}
	}
}

// benchClusterRun is one sub-benchmark of BenchmarkClusterCommit.
func benchClusterRun(b *testing.B, n int, kind, load, proto, duration string, brokers []string) {
	loop := map[bool]string{true: "open", false: "closed"}[load[0] == 'r']
	name := fmt.Sprintf("nodes=%d/%s/%s/%s", n, kind, loop, proto)
	b.Run(name, func(b *testing.B) {
		text := fmt.Sprintf(`
name: bench-%d-%s
seed: 11
warmup: 3s
duration: %s
drain: 60s
cluster: {nodes: %d, shards: 4, storage: {sync: false}}
workload:
  - {name: load, kind: %s, accounts: 10000, keys: uniform, %s, client: %s, timeout: 60s}
report: {formats: [json, md]}
`, n, kind, duration, n, kind, load, proto)
		sc := loadScenario(b, text)
		out := os.Getenv("BENCH_OUT")
		if out == "" {
			out = b.TempDir()
		} else {
			out = fmt.Sprintf("%s/%d-%s-%s-%s", out, n, kind, loop, proto)
		}
		var res *reports.Result
		for range b.N {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			var err error
			res, err = bench.Run(ctx, sc, bench.Options{Out: out, Target: &bench.InProcess{Brokers: brokers}, SkipFloors: loop == "open"})
			cancel()
			if err != nil {
				b.Fatal(err)
			}
		}
		st := res.Workloads["load"].Stages["committed"]
		if st == nil {
			b.Fatalf("nothing committed: %+v", res.Checker)
		}
		if !res.Checker.Passed() {
			b.Errorf("checker failed: %+v", res.Checker)
		}
		b.ReportMetric(st.ThroughputTPS, "committed_tx/s")
		b.ReportMetric(float64(st.Corrected.P50)/1000, "p50_ms")
		b.ReportMetric(float64(st.Corrected.P99)/1000, "p99_ms")
		if m := res.Floors.MerkleCeilingWPS; m > 0 {
			b.ReportMetric(m, "merkle_ceiling_wps")
		}
		if m := res.Floors.StateCeilingWPS; m > 0 {
			b.ReportMetric(m, "state_ceiling_wps")
		}
		b.ReportMetric(0, "ns/op")
		b.Logf("%s: %s", name, out)
	})
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		b.Fatalf("%s=%q: want a positive whole number", name, s)
	}
	return v
}

func splitFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}
