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

// TestRecordExpectedLateInterval: a closed-loop completion recorded after
// a later interval was opened (a late one) is corrected in its interval as
// in the totals, so the intervals add up to the totals (what report merge
// relies on).
func TestRecordExpectedLateInterval(t *testing.T) {
	start := time.Unix(1000, 0)
	rec := NewRecorder(RecorderOptions{Start: start, Shards: 1})
	w := rec.Workload("w")
	w.RecordExpected(StageCommitted, start.Add(2*time.Second), start.Add(2*time.Second+time.Millisecond), 10*time.Millisecond)
	w.RecordExpected(StageCommitted, start, start.Add(500*time.Millisecond), 10*time.Millisecond) // interval 0, late
	snap := rec.Snapshot()
	ws := snap.Workloads[0]
	var sum int64
	for _, iv := range ws.Intervals {
		if h := iv.Stages[StageCommitted].Corrected; h != nil {
			sum += h.TotalCount()
		}
	}
	if total := ws.Stages[StageCommitted].Corrected.TotalCount(); sum != total || total < 50 {
		t.Fatalf("intervals hold %d corrected samples, the totals %d (want equal, with the 500ms stall's ~50)", sum, total)
	}
}
