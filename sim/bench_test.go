package sim

import (
	"context"
	"testing"

	"github.com/rustorium/rustorium/scenarios"
)

// BenchmarkSimulate is a 16-node, 64-shard cluster over 50 ms links at
// 20k tx/s for 2 s of virtual time: events per second of wall time.
func BenchmarkSimulate(b *testing.B) {
	sc := load(b, `
name: bench
warmup: 500ms
duration: 2s
drain: 2s
cluster: {nodes: 16, shards: 64, cores_per_node: 16, brokers: 3, storage: {sync: false}}
network:
  default: {delay: 25ms, jitter: 2ms}
workload:
  - {name: puts, kind: put, accounts: 1000000, rate: 20k/s}
report: {formats: [json]}
`)
	benchEvents(b, sc)
}

// BenchmarkCohort is 100 nodes × 64 shards over 50 ms links at 1M tx/s
// offered, in cohort mode, for 3 s of virtual time.
func BenchmarkCohort(b *testing.B) {
	sc := load(b, `
name: bench
warmup: 1s
duration: 2s
drain: 1s
cluster: {nodes: 100, shards: 64, cores_per_node: 16, brokers: 8, storage: {sync: false}}
network:
  default: {delay: 50ms, jitter: 5ms}
  broker: {delay: 10ms, jitter: 1ms}
workload:
  - {name: puts, kind: put, accounts: 10000000, rate: 1M/s}
report: {formats: [json]}
`)
	benchEvents(b, sc)
}

// benchEvents simulates sc b.N times with the reference calibration and
// reports events per second of wall time.
func benchEvents(b *testing.B, sc *scenarios.Scenario) {
	c := reference(b)
	b.ResetTimer()
	var events uint64
	for range b.N {
		o, err := Run(context.Background(), sc, Options{Calib: c})
		if err != nil {
			b.Fatal(err)
		}
		events += o.Result.Simulation.Events
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}
