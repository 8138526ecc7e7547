package reports

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStageNames(t *testing.T) {
	all := Stages()
	if len(all) != NumStages {
		t.Fatalf("Stages() has %d, NumStages is %d", len(all), NumStages)
	}
	for i, st := range all {
		if int(st) != i {
			t.Fatalf("stage %s at %d", st, i)
		}
		got, err := ParseStage(st.String())
		if err != nil || got != st {
			t.Fatalf("ParseStage(%q) = %v, %v", st, got, err)
		}
	}
	if st, err := ParseStage("read"); err != nil || st != StageRead || StageRead.String() != "read" {
		t.Fatalf("ParseStage(read) = %v, %v", st, err)
	}
	if _, err := ParseStage("reads"); err == nil {
		t.Fatal("ParseStage(reads) accepted")
	}
}

// TestReadOnlyWorkload: a get workload records only the read stage; its
// throughput is its reads per second, and every writer shows it.
func TestReadOnlyWorkload(t *testing.T) {
	r := NewRecorder(RecorderOptions{Start: t0})
	w := r.Workload("reads")
	for i := int64(0); i < 500; i++ {
		intended := t0.Add(us(i * 2000))
		w.Sent(intended, intended)
		w.Record(StageRead, intended, intended, intended.Add(us(300+i)))
	}
	snap := r.Snapshot()
	res := NewResult(snap, time.Second)
	res.Scenario, res.Checker.RootsEqual = "reads", true
	wr := res.Workloads["reads"]
	s := wr.Stages["read"]
	if s == nil || s.Count != 500 || len(wr.Stages) != 1 {
		t.Fatalf("stages %+v", wr.Stages)
	}
	if wr.ThroughputTPS != 500 {
		t.Fatalf("throughput %v, want 500", wr.ThroughputTPS)
	}
	metric, err := ParseMetric("reads.read.p99")
	if err != nil {
		t.Fatal(err)
	}
	if m, err := res.Metric(metric); err != nil || m <= 0 {
		t.Fatalf("reads.read.p99 = %v, %v", m, err)
	}
	dir := t.TempDir()
	if _, err := Write(dir, res, snap, []string{"json", "md", "hgrm", "html"}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil || !strings.Contains(string(md), "| read |") {
		t.Fatalf("report.md without the read stage: %v", err)
	}
	hgrm, _ := filepath.Glob(filepath.Join(dir, "*read*.hgrm"))
	if len(hgrm) == 0 {
		t.Fatal("no .hgrm of the read stage")
	}
	var b strings.Builder
	if err := Summary(&b, res); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(b.String(), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "reads" && f[1] == "read" && f[2] == "500" {
			found = true
		}
	}
	if !found {
		t.Fatalf("summary without the read stage:\n%s", b.String())
	}
}
