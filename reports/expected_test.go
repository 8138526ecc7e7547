package reports

import (
	"testing"
	"time"
)

// TestRecordExpected: a closed-loop send stalled for 1s, with a 10ms
// expected interval, stands for the ~100 sends a steady client would have
// made; the uncorrected view sees one slow send, and counts stay real.
func TestRecordExpected(t *testing.T) {
	start := time.Unix(100, 0)
	r := NewRecorder(RecorderOptions{Start: start})
	w := r.Workload("closed")
	for i := range 99 {
		sent := start.Add(time.Duration(i) * 10 * time.Millisecond)
		w.RecordExpected(StageCommitted, sent, sent.Add(10*time.Millisecond), 10*time.Millisecond)
	}
	stall := start.Add(2 * time.Second)
	w.RecordExpected(StageCommitted, stall, stall.Add(time.Second), 10*time.Millisecond)

	snap := r.Snapshot()
	st := snap.Workload("closed").Stages[StageCommitted]
	if got := st.Uncorrected.TotalCount(); got != 100 {
		t.Fatalf("uncorrected count %d, want 100", got)
	}
	if got := st.Corrected.TotalCount(); got < 190 {
		t.Fatalf("corrected count %d: the stall should add ~99 synthetic samples", got)
	}
	if p99 := st.Uncorrected.ValueAtQuantile(99); p99 > 20_000 {
		t.Fatalf("uncorrected p99 %dµs should hide the stall", p99)
	}
	if p99 := st.Corrected.ValueAtQuantile(99); p99 < 500_000 {
		t.Fatalf("corrected p99 %dµs should show the stall", p99)
	}
	res := NewResult(snap, 4*time.Second)
	if c := res.Workloads["closed"].Stages["committed"].Count; c != 100 {
		t.Fatalf("result count %d, want the 100 real sends", c)
	}
}
