package reports

import (
	"bytes"
	"flag"
	"html/template"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenTime is the fixture's clock: its start of measuring and the HTML
// page's generation time.
var goldenTime = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// goldenResult is a Result with every section of the reports filled,
// independent of the machine and the clock.
func goldenResult() *Result {
	yes := true
	pct := func(p50, p90, p99, p999, mx int64) Percentiles {
		return Percentiles{P50: p50, P90: p90, P99: p99, P999: p999, Max: mx, Min: p50 / 2, Mean: float64(p50)}
	}
	return &Result{
		Scenario:    "golden",
		Description: "every section | with a pipe, <b>markup</b> and `code`",
		Seed:        42,
		Environment: Environment{Go: "go1.26.8", GOMAXPROCS: 2, CPU: "Test CPU @ 3GHz", OS: "linux", Arch: "amd64", NumCPU: 4,
			Kernel: "6.1.0", MemoryBytes: 8 << 30, Commit: "0123456789abcdef", Dirty: true, Broker: "kfake", BrokerVersion: "v1.2"},
		Start: goldenTime, End: goldenTime.Add(10 * time.Second), DurationS: 10, WarmupS: 2, IntervalS: 1,
		Workloads: map[string]*WorkloadResult{
			"puts": {Sent: 10000, Errors: 3, ThroughputTPS: 998.7, LagP99Us: 120, Kind: "put", Client: "quic",
				Lag: pct(20, 60, 120, 400, 900), ErrorsByKind: map[string]int64{"timeout": 2, "rejected (full)": 1},
				Discarded: 17, Clamped: 1,
				Stages: map[string]*StageResult{
					"accepted":  {Count: 9997, ThroughputTPS: 999.7, Corrected: pct(800, 1200, 2500, 9000, 15000), Uncorrected: pct(790, 1100, 2000, 8000, 14000)},
					"committed": {Count: 9990, ThroughputTPS: 998.7, Corrected: pct(25000, 31000, 45000, 120000, 1_500_000), Uncorrected: pct(24000, 30000, 45000, 110000, 1_400_000)},
					"visible":   {Count: 100, ThroughputTPS: 10, Corrected: pct(30000, 35000, 50000, 60000, 61000), Uncorrected: pct(29000, 34000, 49000, 59000, 60000)},
				}},
			"idle": {Kind: "get", Client: "rest", Stages: map[string]*StageResult{}},
			"a|b": {Sent: 5, ThroughputTPS: 0.5, Lag: pct(1, 1, 1, 1, 1), LagP99Us: 1,
				Stages: map[string]*StageResult{"read": {Count: 5, ThroughputTPS: 0.5, Corrected: pct(100, 100, 100, 100, 100), Uncorrected: pct(100, 100, 100, 100, 100)}}},
		},
		Floors: Floors{QuicEcho: &Percentiles{P50: 80, P99: 200}, ProduceAck: &Percentiles{P50: 300, P99: 900},
			ProduceCeilingTPS: 50000, MerkleCeilingWPS: 20000, StateCeilingWPS: 15000, VerifyCeilingTPS: 30000,
			TreeKeys: 25000, NodeBoundTPS: 4000,
			Ratios: map[string]float64{"accepted.p50/quic_echo.p50": 10, "committed.p50/produce_ack.p50": 83.333}},
		Blocks: &Blocks{Count: 300, Txs: 9990, MeanTxs: 33.3, Shards: []ShardBlocks{{Shard: 0, Count: 160, Txs: 5000, MeanTxs: 31.3}, {Shard: 1, Count: 140, Txs: 4990, MeanTxs: 35.6}}},
		Checker: Checker{Accepted: 9997, Committed: 9997, RootsEqual: true, RootsUnchecked: false, BalancesConserved: &yes,
			ProofsChecked: 100, Notes: []string{"note one", "note | two"}},
		SLO: []SLOResult{
			{Metric: "committed.p99", Max: "250ms", Value: "45ms", OK: true},
			{Metric: "throughput", Min: "2000/s", Value: "999.2/s"},
			{Metric: "puts.read.p99", Max: "1s", Min: "1ms", Value: "n/a", Error: "reports: no data: nothing reached stage read"},
		},
		Timeline: []TimelineResult{
			{At: "3s", Event: "kill leader(0)", Recovery: "1.2s", Node: "node-2", CatchUp: "800ms",
				Failover: &Failover{MaxGap: "1.1s", MaxGapUs: 1_100_000, BaselineGapUs: 10_000, Shards: []ShardStall{{Shard: 0, MaxGapUs: 1_100_000, FirstBlockUs: 900_000}, {Shard: 1, MaxGapUs: 12_000, FirstBlockUs: 2000}}},
				Rejoin:   &Failover{MaxGap: "30ms", MaxGapUs: 30_000, BaselineGapUs: 10_000, Shards: []ShardStall{{Shard: 0, MaxGapUs: 30_000, FirstBlockUs: 5000}}}},
			{At: "6s", Event: "partition [[node-1], [node-2, node-3]]"},
		},
		MaxRate: &MaxRate{Stage: "accepted", BoundUs: 5000, KneeRate: 1600, KneeTPS: 1587.5, Points: []MaxRatePoint{
			{Rate: 100, ThroughputTPS: 99.9, P50Us: 700, P99Us: 1500, OK: true, CPUMicrosPerTx: 1412.4},
			{Rate: 3200, ThroughputTPS: 2900.1, P50Us: 4000, P99Us: 90000, Errors: 12, OK: false},
			{Rate: 1600, ThroughputTPS: 1587.5, P50Us: 900, P99Us: 4800, OK: true, CPUMicrosPerTx: 388.6},
		}},
		Profiles: []ProfileSummary{{Kind: "cpu", File: "cpu.pprof", Unit: "cpu (nanoseconds)", Total: 123456789,
			TopFlat:    []ProfileFunc{{Func: "runtime.mallocgc", Flat: 1000, FlatPct: 12.5, Cum: 2000, CumPct: 25}},
			TopCum:     []ProfileFunc{{Func: "main.run|x", Flat: 10, FlatPct: 0.1, Cum: 8000, CumPct: 80}},
			CoveredPct: 98.7,
			Components: []ProfileComponent{{Name: "Poseidon", Value: 100_000_000, Pct: 81, MicrosPerTx: 265.3}, {Name: "other (kernel, libraries)", Value: 23_456_789, Pct: 19}}}},
		Resources: &Resources{Source: "in-process", IntervalS: 1, Samples: make([]ResourceSample, 3),
			CPUPercentMean: 123.4, CPUPercentMax: 180, RSSMaxBytes: 300 << 20, GCPauseTotalS: 0.0123, GCCycles: 7, GoroutinesMax: 345,
			Notes: []string{"sampled the whole process"}},
		Traces: goldenTraces(),
		Files:  []string{"puts-accepted.hgrm", "plot-latency-puts.png", "plot-latency-puts.svg", "plot-resources.png", "report.html", "report.md", "result.json"},
	}
}

// goldenPlots is a plot set as writePlots returns it, with stand-in images.
func goldenPlots() *plotSet {
	fig := func(id, title, workload string) renderedFigure {
		return renderedFigure{ID: id, Title: title, Caption: "Caption of " + title + ".", Workload: workload,
			PNG: id + ".png", SVG: id + ".svg", Inline: template.HTML(`<svg id="` + id + `"><text>image text, not in the golden</text></svg>`)}
	}
	return &plotSet{
		figs:  []renderedFigure{fig("plot-latency-puts", "Latency over time: puts", "puts"), fig("plot-resources", "Resource use", "")},
		notes: []string{"plot-spectrum-idle: cannot draw"},
	}
}

// visibleText is the text a browser shows of an HTML page, without the
// inlined images: a line per block, " | " between table cells.
func visibleText(t *testing.T, page []byte) string {
	t.Helper()
	z := html.NewTokenizer(bytes.NewReader(page))
	var b strings.Builder
	skip := 0 // inside <style>, <svg> or <head>'s <title>
	block := map[string]bool{"p": true, "h1": true, "h2": true, "tr": true, "li": true, "table": true, "ul": true, "figure": true, "figcaption": true, "thead": true, "tbody": true}
	for {
		switch z.Next() {
		case html.ErrorToken:
			var lines []string
			for _, l := range strings.Split(b.String(), "\n") {
				l = strings.Join(strings.Fields(l), " ")
				l = strings.TrimPrefix(strings.TrimSuffix(l, " |"), "| ")
				if l != "" {
					lines = append(lines, l)
				}
			}
			return strings.Join(lines, "\n") + "\n"
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch n := string(name); {
			case n == "style" || n == "svg" || n == "script":
				skip++
			case n == "td" || n == "th":
				b.WriteString(" | ")
			case block[n]:
				b.WriteString("\n")
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch n := string(name); {
			case n == "style" || n == "svg" || n == "script":
				skip--
			case block[n]:
				b.WriteString("\n")
			}
		case html.TextToken:
			if skip == 0 {
				b.Write(z.Text())
			}
		}
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update ./reports/ to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -run Golden -update ./reports/ rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestGoldenMarkdown(t *testing.T) {
	for name, r := range map[string]*Result{"report.md.golden": goldenResult(), "report-empty.md.golden": {Scenario: "empty"}} {
		var buf bytes.Buffer
		if err := Markdown(&buf, r); err != nil {
			t.Fatal(err)
		}
		checkGolden(t, name, buf.Bytes())
	}
}

func TestGoldenHTMLText(t *testing.T) {
	for name, c := range map[string]struct {
		r   *Result
		set *plotSet
	}{"report.html.golden": {goldenResult(), goldenPlots()}, "report-empty.html.golden": {&Result{Scenario: "empty"}, &plotSet{}}} {
		var buf bytes.Buffer
		if err := htmlPage(&buf, c.r, c.set, goldenTime); err != nil {
			t.Fatal(err)
		}
		checkGolden(t, name, []byte(visibleText(t, buf.Bytes())))
	}
}

// The floors tables of report.md and report.html come from one list: the
// same rows, and the ratios whenever there are some (report.md left them
// out when no floor was measured; report.html wrote "State write ceiling").
func TestFloorsAgree(t *testing.T) {
	for _, f := range []Floors{
		{StateCeilingWPS: 1500},
		{NodeBoundTPS: 900, TreeKeys: 20},
		{Ratios: map[string]float64{"accepted.p50/quic_echo.p50": 3}},
	} {
		r := &Result{Scenario: "floors", Floors: f}
		var md, page bytes.Buffer
		if err := Markdown(&md, r); err != nil {
			t.Fatal(err)
		}
		if err := htmlPage(&page, r, nil, goldenTime); err != nil {
			t.Fatal(err)
		}
		text := visibleText(t, page.Bytes())
		for _, row := range floorRows(f) {
			if !strings.Contains(md.String(), "| "+row.Name+" |") || !strings.Contains(text, row.Name+" |") {
				t.Errorf("floor %q missing:\n%s\n%s", row.Name, md.String(), text)
			}
		}
		for k := range f.Ratios {
			if !strings.Contains(md.String(), "| "+k+" | 3.00 |") || !strings.Contains(text, k+" | 3.00") {
				t.Errorf("ratio %q missing:\n%s\n%s", k, md.String(), text)
			}
		}
		if measured := len(floorRows(f)) > 0; measured == strings.Contains(md.String(), "Not measured") || measured == strings.Contains(text, "Not measured") {
			t.Errorf("measured %t:\n%s\n%s", measured, md.String(), text)
		}
	}
}
