package reports

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// hours returns a quick hour's run and a slow hour's (every latency 1.4×,
// as session 38's gate saw), and a head run of the same code in a slow hour.
func hours() (quick, slow, head *Result) {
	quick = seriesRun(15, 300, noisy(1, 400, 1000, 0.1), noisy(2, 1000, 1700, 0.1))
	slow = seriesRun(15, 300, scaled(noisy(3, 400, 1000, 0.1), 1.4), scaled(noisy(4, 1000, 1700, 0.1), 1.4))
	head = seriesRun(15, 300, scaled(noisy(5, 400, 1000, 0.1), 1.45), scaled(noisy(6, 1000, 1700, 0.1), 1.45))
	return quick, slow, head
}

func TestCompareSetSlowHourIsNotARegression(t *testing.T) {
	quick, slow, head := hours()
	opts := CompareOptions{MinEffect: 0.3}
	if one := Compare(quick, head, opts); !one.Regressed() {
		t.Fatalf("the premise: against the quick hour alone the slow hour should read as a regression: %v", verdicts(one))
	}
	c := CompareSet([]*Result{quick, slow}, head, opts)
	if c.Regressed() {
		t.Fatalf("against a set that has seen a slow hour, a slow hour regressed: %+v", c.Regressions())
	}
	r := row(c, "accepted.p50")
	if r.Verdict != VerdictInconclusive || r.WorseIn != 1 || r.Recordings != 2 || !strings.Contains(r.Note, "worse than 1 of 2") {
		t.Errorf("accepted.p50 %+v", r)
	}
	// The figures shown are against the nearest recording (the slow one).
	if r.Change > 0.2 {
		t.Errorf("accepted.p50 change %.2f, want the change against the slow recording (about +4%%)", r.Change)
	}
	if !strings.HasPrefix(c.Base, "2 recordings (") {
		t.Errorf("base label %q", c.Base)
	}
	// The base column shows the recordings' range.
	qa, sa := row(Compare(quick, head, opts), "accepted.p50"), row(Compare(slow, head, opts), "accepted.p50")
	if r.BaseMin != min(qa.Base, sa.Base) || r.BaseMax != max(qa.Base, sa.Base) || r.BaseMin == r.BaseMax {
		t.Errorf("base range %v..%v, want %v and %v", r.BaseMin, r.BaseMax, qa.Base, sa.Base)
	}
	var text strings.Builder
	if err := c.Text(&text); err != nil {
		t.Fatal(err)
	}
	span := FormatMicros(int64(r.BaseMin)) + ".." + FormatMicros(int64(r.BaseMax))
	if !strings.Contains(text.String(), span) {
		t.Errorf("the table does not show the base range %s:\n%s", span, text.String())
	}
}

func TestCompareSetRegressionBeyondEveryRecording(t *testing.T) {
	quick, slow, _ := hours()
	head := seriesRun(15, 300, scaled(noisy(5, 400, 1000, 0.1), 2.8), scaled(noisy(6, 1000, 1700, 0.1), 2.8))
	c := CompareSet([]*Result{quick, slow}, head, CompareOptions{MinEffect: 0.3})
	if !c.Regressed() {
		t.Fatalf("twice the slow hour did not regress: %v", verdicts(c))
	}
	for _, k := range []string{"accepted.p50", "committed.p50"} {
		r := row(c, k)
		if r.Verdict != VerdictWorse || r.WorseIn != 2 {
			t.Errorf("%s %+v", k, r)
		}
		// Shown against the slow recording: about +100%, not +180%.
		if r.Change < 0.7 || r.Change > 1.3 {
			t.Errorf("%s change %.2f, want about +100%% (against the slow hour)", k, r.Change)
		}
	}
	if v := verdicts(c)["committed.throughput"]; v != VerdictSame {
		t.Errorf("throughput %s", v)
	}
}

func TestCompareSetOfOneIsCompare(t *testing.T) {
	quick, _, head := hours()
	if a, b := CompareSet([]*Result{quick}, head, CompareOptions{}), Compare(quick, head, CompareOptions{}); !reflect.DeepEqual(a, b) {
		t.Errorf("a set of one differs from Compare:\n%+v\n%+v", a, b)
	}
}

func TestCompareSetWorkloadMissingFromARecording(t *testing.T) {
	quick, slow, head := hours()
	other := seriesRun(15, 300, noisy(7, 400, 1000, 0.1), noisy(8, 1000, 1700, 0.1))
	other.Workloads["gets"] = other.Workloads["puts"]
	delete(other.Workloads, "puts")
	c := CompareSet([]*Result{quick, slow, other}, head, CompareOptions{MinEffect: 0.3})
	r := row(c, "accepted.p50")
	if r.Verdict != VerdictInconclusive || !strings.Contains(r.Note, "in 2 of 3") {
		t.Errorf("a metric two of three recordings have: %+v", r)
	}
}

func TestReadBaseline(t *testing.T) {
	dir := t.TempDir()
	quick, slow, _ := hours()
	quick.Scenario, slow.Scenario = "quick", "slow"
	// A report folder: its result.json.
	report := filepath.Join(dir, "report")
	if err := WriteJSON(report, quick); err != nil {
		t.Fatal(err)
	}
	// A set: every *.json in name order, other files ignored.
	set := filepath.Join(dir, "set")
	for name, r := range map[string]*Result{"b.json": quick, "a.json": slow} {
		sub := filepath.Join(dir, name+".d")
		if err := WriteJSON(sub, r); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(sub, ResultFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(set, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(set, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(set, "README"), []byte("not a recording"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want []string
	}{
		{filepath.Join(report, ResultFile), []string{"quick"}},
		{report, []string{"quick"}},
		{set, []string{"slow", "quick"}},
	} {
		got, err := ReadBaseline(tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		var names []string
		for _, r := range got {
			names = append(names, r.Scenario)
		}
		if !reflect.DeepEqual(names, tc.want) {
			t.Errorf("%s: %v, want %v", tc.path, names, tc.want)
		}
	}
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBaseline(empty); !errors.Is(err, ErrNoData) {
		t.Errorf("an empty folder: %v, want ErrNoData", err)
	}
	if err := os.WriteFile(filepath.Join(set, "c.json"), []byte("[]"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadBaseline(set); !errors.Is(err, ErrFormat) {
		t.Errorf("a set with a bad recording: %v, want ErrFormat", err)
	}
	if _, err := ReadBaseline(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing path: %v", err)
	}
	many := filepath.Join(dir, "many")
	if err := os.Mkdir(many, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range MaxBaselineRuns + 1 {
		if err := os.WriteFile(filepath.Join(many, fmt.Sprintf("%03d.json", i)), []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ReadBaseline(many); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "at most") {
		t.Errorf("a set over MaxBaselineRuns: %v, want ErrFormat naming the limit", err)
	}
}
