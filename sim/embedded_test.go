package sim

import (
	"fmt"
	"testing"

	"github.com/rustorium/rustorium/sim/des"
)

// TestEmbeddedBrokerFsyncsInItsLoop: with storage.sync, a transaction's
// commit waits for kfake's fsyncs inside its loop — two for its produce
// batch, two for the block's produce and three for EndTxn's marker and
// log entry — and the node's block commit, at least 8 fsyncs more than
// without sync at a rate where nothing queues. A model that group-commits
// the broker's writes (three fsyncs in all) fails.
func TestEmbeddedBrokerFsyncsInItsLoop(t *testing.T) {
	const src = `
name: loop
seed: 5
warmup: 500ms
duration: 3s
drain: 2s
cluster: {nodes: 1, shards: 1, storage: {sync: %v}}
workload:
  - {name: puts, kind: put, accounts: 1000, rate: 50/s}
`
	p50 := func(sync bool) des.Time {
		sc := load(t, fmt.Sprintf(src, sync))
		o := simulate(t, sc, Dedicated)
		w := o.Result.Workloads["puts"]
		if w.Errors != 0 || w.Stages["committed"].Count != 150 {
			t.Fatalf("sync %v: errors %d, committed %+v", sync, w.Errors, w.Stages["committed"])
		}
		return des.Time(w.Stages["committed"].Corrected.P50) * des.Microsecond
	}
	c := reference(t)
	k := costs{c: c, sync: true}
	want := 8 * k.fsync(200) * 9 / 10
	if d := p50(true) - p50(false); d < want {
		t.Fatalf("sync adds %v to committed p50, want at least %v (8 fsyncs)", durationOf(d), durationOf(want))
	}
}
