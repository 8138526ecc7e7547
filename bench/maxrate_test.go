package bench

import (
	"testing"
	"time"
)

// TestProbeCPU: a probe's CPU a transaction counts the node processes
// when there are any, else this process; a node process that restarted
// or vanished within the probe takes every node's figure out rather than
// leaving a part that passes for the whole, and the probe then has none
// (not whole).
func TestProbeCPU(t *testing.T) {
	ms := time.Millisecond
	before := cpuClocks{selfCPU: {cpu: 100 * ms}, "node-0": {pid: 10, cpu: 50 * ms}, "node-1": {pid: 11, cpu: 70 * ms}}
	for _, c := range []struct {
		name     string
		after    cpuClocks
		wantSelf time.Duration
		wantCost time.Duration
		nodes    int
		whole    bool
	}{
		{"both nodes", cpuClocks{selfCPU: {cpu: 130 * ms}, "node-0": {pid: 10, cpu: 250 * ms}, "node-1": {pid: 11, cpu: 170 * ms}}, 30 * ms, 300 * ms, 2, true},
		{"node-1 restarted", cpuClocks{selfCPU: {cpu: 130 * ms}, "node-0": {pid: 10, cpu: 250 * ms}, "node-1": {pid: 12, cpu: 20 * ms}}, 30 * ms, 30 * ms, 0, false},
		{"node-1 down", cpuClocks{selfCPU: {cpu: 130 * ms}, "node-0": {pid: 10, cpu: 250 * ms}}, 30 * ms, 30 * ms, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, whole := c.after.since(before)
			if got[selfCPU] != c.wantSelf || len(got) != c.nodes+1 || whole != c.whole {
				t.Fatalf("since = %v, whole %v", got, whole)
			}
			if d := costCPUTime(got); d != c.wantCost {
				t.Fatalf("costCPUTime = %v, want %v", d, c.wantCost)
			}
		})
	}
	// In process: this process alone.
	in, whole := cpuClocks{selfCPU: {cpu: 2 * time.Second}}.since(cpuClocks{selfCPU: {cpu: time.Second}})
	if d := costCPUTime(in); d != time.Second || !whole {
		t.Fatalf("in process: %v, whole %v", d, whole)
	}
	if got := microsPerTx(time.Second, 4000); got != 250 {
		t.Fatalf("microsPerTx = %v, want 250", got)
	}
	if got := microsPerTx(time.Second, 0); got != 0 {
		t.Fatalf("microsPerTx without transactions = %v", got)
	}
}
