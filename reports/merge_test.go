package reports

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

// sample is one send of the merge tests' load.
type sample struct {
	intended    time.Time
	lat, actual time.Duration
	err         bool
}

// mergeLoad is a seeded load of n sends over 3 seconds from start.
func mergeLoad(start time.Time, n int) []sample {
	r := rand.New(rand.NewPCG(7, 11))
	out := make([]sample, n)
	for i := range out {
		out[i] = sample{
			intended: start.Add(time.Duration(r.Int64N(int64(3 * time.Second)))),
			lat:      time.Duration(200+r.ExpFloat64()*3000) * time.Microsecond,
			actual:   time.Duration(r.Int64N(400)) * time.Microsecond,
			err:      r.IntN(50) == 0,
		}
	}
	return out
}

// record records the samples i with keep(i) into a recorder from start.
func record(start time.Time, load []sample, keep func(i int) bool) *Snapshot {
	rec := NewRecorder(RecorderOptions{Start: start, Shards: 1})
	w := rec.Workload("hot, puts") // a name a tag cannot hold as it is
	for i, s := range load {
		if !keep(i) {
			continue
		}
		sent := s.intended.Add(s.actual)
		w.Sent(s.intended, sent)
		if s.err {
			w.Error("accepted: timeout", s.intended, sent.Add(s.lat))
			continue
		}
		w.Record(StageAccepted, s.intended, sent, sent.Add(s.lat))
		w.Record(StageCommitted, s.intended, sent, sent.Add(3*s.lat))
	}
	snap := rec.Snapshot()
	snap.Taken = start.Add(3 * time.Second)
	return snap
}

// TestMergeExact: N workers' folders merged equal one run that recorded
// every worker's samples: counts, errors, every percentile and the max of
// every stage and of the lag, and the per-second series, for N = 1, 2, 3.
func TestMergeExact(t *testing.T) {
	start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	load := mergeLoad(start, 3000)
	whole := NewResult(record(start, load, func(int) bool { return true }), 3*time.Second)
	for n := 1; n <= 3; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			dirs := make([]string, n)
			for w := range n {
				snap := record(start, load, func(i int) bool { return i%n == w })
				res := NewResult(snap, 3*time.Second)
				res.Scenario, res.Worker = "merge", fmt.Sprintf("%d/%d", w+1, n)
				dirs[w] = filepath.Join(t.TempDir(), fmt.Sprint(w))
				if _, err := Write(dirs[w], res, snap, []string{FormatJSON, FormatHLog}); err != nil {
					t.Fatal(err)
				}
			}
			merged, _, err := Merge(dirs)
			if err != nil {
				t.Fatal(err)
			}
			if merged.Workers != n || len(merged.WorkerEnvironments) != n {
				t.Fatalf("workers %d, environments %d", merged.Workers, len(merged.WorkerEnvironments))
			}
			got, want := merged.Workloads["hot, puts"], whole.Workloads["hot, puts"]
			if got.Sent != want.Sent || got.Errors != want.Errors || got.ErrorsByKind["accepted: timeout"] != want.ErrorsByKind["accepted: timeout"] || got.Lag != want.Lag {
				t.Fatalf("sent %d/%d, errors %d/%d, lag %+v / %+v", got.Sent, want.Sent, got.Errors, want.Errors, got.Lag, want.Lag)
			}
			for _, st := range []string{"accepted", "committed"} {
				if g, w := *got.Stages[st], *want.Stages[st]; g != w {
					t.Errorf("%s: merged %+v, one run %+v", st, g, w)
				}
			}
			if len(got.Series) != len(want.Series) {
				t.Fatalf("%d intervals, one run %d", len(got.Series), len(want.Series))
			}
			for i := range got.Series {
				g, w := got.Series[i], want.Series[i]
				if g.T != w.T || g.Sent != w.Sent || g.Errors != w.Errors || fmt.Sprint(g.Stages) != fmt.Sprint(w.Stages) {
					t.Errorf("interval %d: merged %+v, one run %+v", i, g, w)
				}
			}
		})
	}
}

// TestMergeRefusesWhatIsNotOneLoad: a folder that is no worker's, a
// missing or repeated worker, and another scenario are ErrMerge.
func TestMergeRefusesWhatIsNotOneLoad(t *testing.T) {
	start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	snap := record(start, mergeLoad(start, 100), func(int) bool { return true })
	write := func(scenario, worker string) string {
		res := NewResult(snap, 3*time.Second)
		res.Scenario, res.Worker = scenario, worker
		dir := t.TempDir()
		if _, err := Write(dir, res, snap, []string{FormatJSON, FormatHLog}); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	one, two, other, plain := write("a", "1/2"), write("a", "2/2"), write("b", "2/2"), write("a", "")
	for name, dirs := range map[string][]string{
		"not a worker": {plain},
		"missing":      {one},
		"repeated":     {one, one},
		"other load":   {one, other},
	} {
		if _, _, err := Merge(dirs); !errors.Is(err, ErrMerge) {
			t.Errorf("%s: %v, want ErrMerge", name, err)
		}
	}
	if _, _, err := Merge([]string{two, one}); err != nil {
		t.Fatalf("the two workers in any order: %v", err)
	}
}
