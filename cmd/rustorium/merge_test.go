package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/api"
	"github.com/rustorium/rustorium/reports"
)

// runRoot runs the rustorium command line in process.
func runRoot(ctx context.Context, args ...string) (string, error) {
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

// TestLoadgenWorkersMerge: two `loadgen --worker` processes' worth of load
// against one node, started together with --start-at, and `report merge`
// of their folders give one report whose counts are the whole load's and
// whose checker passes.
func TestLoadgenWorkersMerge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := node.New(ctx, node.Config{ChainID: 1, Shards: 2, Brokers: kafkatest.Embedded(t), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Backend: n, ChainID: 1})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ctx, ln)
	defer srv.Close()

	dir := t.TempDir()
	scenario := filepath.Join(dir, "workers.yaml")
	err = os.WriteFile(scenario, []byte(`name: workers
warmup: 500ms
duration: 2s
drain: 10s
workload:
  - {name: puts, kind: put, rate: 300/s, verify_proofs: 10%}
  - {name: gets, kind: get, rate: 100/s, client: rest}
slo:
  - {metric: lost, max: 0}
  - {metric: puts.throughput, min: 250/s}
report: {formats: [json, md, hlog]}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(2 * time.Second).UTC().Format(time.RFC3339Nano)
	outs := []string{filepath.Join(dir, "w1"), filepath.Join(dir, "w2")}
	errs := make(chan error, 2)
	for i, out := range outs {
		go func() {
			text, err := runRoot(ctx, "loadgen", scenario, "--target", n.Addr().String(), "--api", "http://"+ln.Addr().String(),
				"--worker", []string{"1/2", "2/2"}[i], "--start-at", start, "--out", out)
			if err != nil {
				t.Logf("worker %d:\n%s", i+1, text)
			}
			errs <- err
		}()
	}
	for range outs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	merged := filepath.Join(dir, "merged")
	text, err := runRoot(ctx, "report", "merge", outs[1], outs[0], "--out", merged)
	if err != nil {
		t.Fatalf("merge: %v\n%s", err, text)
	}
	res, err := reports.ReadJSON(filepath.Join(merged, reports.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	// 300/s over 2.5s accepted; 600 puts and 200 gets measured.
	if res.Workers != 2 || res.Checker.Accepted != 750 || res.Checker.Committed != 750 || res.Workloads["puts"].Sent != 600 || res.Workloads["gets"].Sent != 200 {
		t.Fatalf("merged: workers %d, checker %+v, sent %d puts, %d gets", res.Workers, res.Checker, res.Workloads["puts"].Sent, res.Workloads["gets"].Sent)
	}
	if !res.Passed() || len(res.SLO) != 2 || !res.SLO[1].OK {
		t.Fatalf("merged SLOs %+v, checker %+v", res.SLO, res.Checker)
	}
	if md, err := os.ReadFile(filepath.Join(merged, reports.MarkdownFile)); err != nil || !strings.Contains(string(md), "puts") {
		t.Fatalf("report.md: %v", err)
	}
	if _, err := runRoot(ctx, "report", "merge", outs[0], "--out", filepath.Join(dir, "half")); err == nil || !strings.Contains(err.Error(), "merge every worker") {
		t.Fatalf("merging one of two workers: %v", err)
	}
}

// TestLoadgenClusterWorkers runs three `rustorium node --cluster`
// processes and drives them with two `loadgen --cluster --worker` runs
// started together: each worker spreads its connections over every node
// and checks every node at the end (roots compared, not unchecked); the
// merged report's counts are the whole load's and its checker passes.
func TestLoadgenClusterWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	path, keyFiles, _ := testCluster(t, dir, 3, kafkatest.Embedded(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	startExecProcs(t, ctx, bin, path, dir, keyFiles)
	scenario := filepath.Join(dir, "cluster-load.yaml")
	err := os.WriteFile(scenario, []byte(`name: cluster-load
warmup: 500ms
duration: 2s
drain: 15s
workload:
  - {name: puts, kind: put, rate: 200/s, verify_proofs: 10%}
  - {name: gets, kind: get, rate: 50/s, client: rest}
report: {formats: [json, hlog]}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339Nano)
	outs := []string{filepath.Join(dir, "w1"), filepath.Join(dir, "w2")}
	errs := make(chan error, 2)
	for i, out := range outs {
		go func() {
			text, err := runRoot(ctx, "loadgen", scenario, "--cluster", path, "--worker", fmt.Sprintf("%d/2", i+1), "--start-at", start, "--out", out)
			if err != nil {
				err = fmt.Errorf("worker %d: %w\n%s", i+1, err, text)
			}
			errs <- err
		}()
	}
	for range outs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i, out := range outs {
		res, err := reports.ReadJSON(filepath.Join(out, reports.ResultFile))
		if err != nil {
			t.Fatal(err)
		}
		if c := res.Checker; c.RootsUnchecked || !c.RootsEqual || c.Lost != 0 || c.Accepted == 0 {
			t.Fatalf("worker %d checker %+v", i+1, c)
		}
	}
	merged := filepath.Join(dir, "merged")
	if text, err := runRoot(ctx, "report", "merge", outs[0], outs[1], "--out", merged); err != nil {
		t.Fatalf("merge: %v\n%s", err, text)
	}
	res, err := reports.ReadJSON(filepath.Join(merged, reports.ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	// 200/s over 2.5s accepted; 400 puts and 100 gets measured.
	if c := res.Checker; !res.Passed() || c.Accepted != 500 || c.Committed != 500 || res.Workloads["puts"].Sent != 400 || res.Workloads["gets"].Sent != 100 {
		t.Fatalf("merged: checker %+v, sent %d puts, %d gets", c, res.Workloads["puts"].Sent, res.Workloads["gets"].Sent)
	}
}
