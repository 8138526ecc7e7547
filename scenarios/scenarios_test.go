package scenarios

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rustorium/rustorium/reports"
)

func TestShippedScenariosLoad(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"default.yaml", "wan.yaml", "lossy.yaml", "ramp.yaml"}
	for _, w := range want {
		found := false
		for _, f := range files {
			found = found || f == w
		}
		if !found {
			t.Errorf("%s is missing", w)
		}
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			s, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != strings.TrimSuffix(f, ".yaml") {
				t.Errorf("name %q, want the file name", s.Name)
			}
			// The resolved form survives JSON and is itself valid.
			back := resolvedRoundTrip(t, s)
			if err := back.Validate(); err != nil {
				t.Fatalf("resolved scenario does not validate: %v", err)
			}
		})
	}
}

// resolvedRoundTrip returns s.Resolved() through JSON, as result.json
// records it.
func resolvedRoundTrip(t *testing.T, s *Scenario) *Scenario {
	t.Helper()
	data, err := json.Marshal(s.Resolved())
	if err != nil {
		t.Fatal(err)
	}
	var back Scenario
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("resolved JSON does not decode: %v\n%s", err, data)
	}
	return &back
}

func TestDefaultScenario(t *testing.T) {
	s, err := Load("default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Cluster.Nodes != 1 || s.Cluster.Shards != 4 || !s.Cluster.Broker.Embedded() {
		t.Errorf("cluster = %+v", s.Cluster)
	}
	if len(s.Workload) != 1 {
		t.Fatalf("workloads = %d", len(s.Workload))
	}
	w := s.Workload[0]
	if w.Kind != KindPut || w.Client != ClientQUIC || w.Mode() != ModeRate || w.Rate.PerSecond() != 1000 {
		t.Errorf("workload = %+v", w)
	}
	total := s.Warmup.Std() + s.Duration.Std() + s.Drain.Std()
	if total < 40*time.Second || total > 60*time.Second {
		t.Errorf("default run takes %s, want about a minute", total)
	}
}

func errorOf(t *testing.T, err error) *Error {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%T %v is not an *Error", err, err)
	}
	return e
}

func TestUnknownField(t *testing.T) {
	src := `name: x
duration: 10s
workload:
  - kind: put
    rate: 100/s
    rat: 200/s
`
	_, err := Parse("scenarios/x.yaml", []byte(src))
	e := errorOf(t, err)
	if !errors.Is(err, ErrUnknownField) {
		t.Errorf("not ErrUnknownField: %v", err)
	}
	if e.File != "scenarios/x.yaml" || e.Line != 6 || e.Field != "workload[0].rat" {
		t.Errorf("got file %q line %d field %q", e.File, e.Line, e.Field)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "scenarios/x.yaml:6: workload[0].rat: unknown field") || !strings.Contains(msg, "did you mean rate?") {
		t.Errorf("message %q", msg)
	}
}

func TestUnknownFieldInInlineAndNested(t *testing.T) {
	cases := []struct {
		src, field string
		line       int
	}{
		{"network:\n  links:\n    - {from: clients, to: node-1, delai: 2ms}\n", "network.links[0].delai", 3},
		{"cluster:\n  block:\n    max_tx: 5\n", "cluster.block.max_tx", 3},
		{"bogus: 1\n", "bogus", 1},
		{"timeline:\n  - at: 1s\n    kill: node-1\n    restart: 2s\n", "timeline[0].restart", 4},
	}
	for _, c := range cases {
		_, err := Parse("f.yaml", []byte(c.src))
		e := errorOf(t, err)
		if e.Field != c.field || e.Line != c.line || !errors.Is(err, ErrUnknownField) {
			t.Errorf("%q: got %v", c.src, err)
		}
	}
}

func TestBadValues(t *testing.T) {
	cases := []struct {
		name, src, want string
		class           error
	}{
		{"duration", "warmup: 5\n", `f.yaml:1: warmup: "5" is not a duration`, ErrValue},
		{"negative duration", "duration: -5s\n", `f.yaml:1: duration: "-5s" is negative`, ErrValue},
		{"nested duration", "cluster:\n  block:\n    max_wait: soon\n", `f.yaml:3: cluster.block.max_wait: "soon" is not a duration`, ErrValue},
		{"rate", "workload:\n  - kind: put\n    rate: fast\n", `f.yaml:3: workload[0].rate: "fast" is not a rate (want N/s)`, ErrValue},
		{"bare rate", "workload:\n  - kind: put\n    rate: 2000\n", `workload[0].rate: "2000" is not a rate (want N/s)`, ErrValue},
		{"percent", "network:\n  default: {loss: 0.1}\n", `f.yaml:2: network.default.loss: "0.1" is not a percentage`, ErrValue},
		{"percent range", "network:\n  default: {loss: 120%}\n", `network.default.loss: "120%" is not a percentage between`, ErrValue},
		{"bandwidth", "network:\n  default: {rate: 10mbps}\n", `network.default.rate: "10mbps" is ambiguous`, ErrValue},
		{"keys", "workload:\n  - kind: put\n    keys: zipf(0.5)\n", `workload[0].keys: "zipf(0.5)": the zipf exponent must be > 1`, ErrValue},
		{"enum", "workload:\n  - kind: delete\n", `f.yaml:2: workload[0].kind: "delete" is not a workload kind (want transfer, put, get or query)`, ErrValue},
		{"block hold", "cluster:\n  block: {hold: round}\n", `f.yaml:2: cluster.block.hold: "round" is not a block hold (want shard or leader)`, ErrValue},
		{"int", "seed: abc\n", `f.yaml:1: seed: want a whole number, not "abc"`, ErrType},
		{"int overflow", "cluster: {nodes: 99999999999999999999}\n", `cluster.nodes: 99999999999999999999 is out of range`, ErrValue},
		{"bool", "cluster: {storage: {sync: maybe}}\n", `cluster.storage.sync: want true or false`, ErrType},
		{"list for map", "cluster: [1, 2]\n", `f.yaml:1: cluster: want a mapping of fields, not a list`, ErrType},
		{"map for list", "workload: {kind: put}\n", `f.yaml:1: workload: want a list, not a mapping`, ErrType},
		{"broker", "cluster: {broker: [localhost:9092, nope]}\n", `cluster.broker[1]: "nope" is not host:port`, ErrValue},
		{"broker port", "cluster: {broker: \"h:99999\"}\n", `cluster.broker: "h:99999" has a bad port`, ErrValue},
		{"duplicate", "seed: 1\nseed: 2\n", `f.yaml:2: seed: field given twice (first on line 1)`, ErrSyntax},
		{"syntax", "seed: [1\n", `f.yaml:`, ErrSyntax},
		{"empty", "", `f.yaml: empty scenario`, ErrSyntax},
		{"two docs", "seed: 1\n---\nseed: 2\n", `more than one YAML document`, ErrSyntax},
		{"scalar doc", "hello\n", `want a mapping of fields`, ErrType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(c.src))
			errorOf(t, err)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if !errors.Is(err, c.class) {
				t.Errorf("error %q is not %v", err, c.class)
			}
		})
	}
}

func TestScalars(t *testing.T) {
	rates := map[string]float64{"2000/s": 2000, "2k/s": 2000, "1.5M/s": 1.5e6, "2/ms": 2000, "60/m": 1, "60/min": 1, "3600/h": 1, "0.5/s": 0.5, "1e3/s": 1000, "0/s": 0}
	for in, want := range rates {
		var r Rate
		if err := r.UnmarshalText([]byte(in)); err != nil || math.Abs(r.PerSecond()-want) > 1e-9 {
			t.Errorf("rate %q = %v, %v; want %v", in, r, err, want)
		}
	}
	if got := Rate(2000).String(); got != "2000/s" {
		t.Errorf("Rate(2000) = %q", got)
	}
	if got := Rate(1000).Interval(); got != time.Millisecond {
		t.Errorf("interval %s", got)
	}
	bw := map[string]uint64{"10mbit": 10e6, "1gbit": 1e9, "512kbit": 512e3, "1mibit": 1 << 20, "100bit": 100, "2.5mbit/s": 2.5e6, "10Mbit": 10e6}
	for in, want := range bw {
		var b Bandwidth
		if err := b.UnmarshalText([]byte(in)); err != nil || b.BitsPerSecond() != want {
			t.Errorf("bandwidth %q = %v, %v; want %v", in, uint64(b), err, want)
		}
	}
	for in, want := range map[uint64]string{10e6: "10mbit", 1e9: "1gbit", 1500: "1500bit", 0: "0bit", 2500e3: "2500kbit"} {
		if got := Bandwidth(in).String(); got != want {
			t.Errorf("Bandwidth(%d) = %q, want %q", in, got, want)
		}
	}
	var p Percent
	if err := p.UnmarshalText([]byte("0.1%")); err != nil || p.Fraction() != 0.001 || p.String() != "0.1%" {
		t.Errorf("percent = %v %v", p, err)
	}
	var k KeyDist
	if err := k.UnmarshalText([]byte("zipf(1.1)")); err != nil || k.Kind != KeysZipf || k.S != 1.1 || k.String() != "zipf(1.1)" {
		t.Errorf("keys = %+v %v", k, err)
	}
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.Std() != 90*time.Second {
		t.Errorf("duration = %v %v", d, err)
	}
}

func TestBrokerForms(t *testing.T) {
	for src, want := range map[string]string{
		"cluster: {broker: embedded}\n":                     "embedded",
		"cluster: {}\n":                                     "embedded",
		"cluster: {broker: \"a:9092,b:9092\"}\n":            "a:9092,b:9092",
		"cluster:\n  broker:\n    - a:9092\n    - b:9092\n": "a:9092,b:9092",
		"cluster: {broker: [\"[::1]:9092\"]}\n":             "[::1]:9092",
	} {
		s, err := Parse("", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if got := s.Cluster.Broker.String(); got != want {
			t.Errorf("%q: broker %q, want %q", src, got, want)
		}
		data, _ := json.Marshal(s.Cluster.Broker)
		var back Broker
		if err := json.Unmarshal(data, &back); err != nil || back.String() != want {
			t.Errorf("JSON round trip %s: %v %v", data, back, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	s, err := Parse("dir/my-run.yaml", []byte("workload:\n  - kind: put\n    rate: 10/s\n  - kind: get\n    clients: 2\n  - kind: get\n    clients: 2\n    arrival: constant\n"))
	if err != nil {
		t.Fatal(err)
	}
	s.EnsureDefaults()
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", s.Name, "my-run"},
		{"seed", s.Seed, int64(1)},
		{"warmup", s.Warmup.Std(), 2 * time.Second},
		{"duration", s.Duration.Std(), 30 * time.Second},
		{"drain", s.Drain.Std(), 10 * time.Second},
		{"nodes", s.Cluster.Nodes, 1},
		{"shards", s.Cluster.Shards, 4},
		{"quorum", s.Cluster.Quorum, 1},
		{"broker", s.Cluster.Broker.Embedded(), true},
		{"max_txs", s.Cluster.Block.MaxTxs, 1000},
		{"max_bytes", s.Cluster.Block.MaxBytes, 1 << 20},
		{"max_wait", s.Cluster.Block.MaxWait.Std(), 20 * time.Millisecond},
		{"sync", s.Cluster.Storage.SyncEnabled(), true},
		{"w0 name", s.Workload[0].Name, "put"},
		{"w1 name", s.Workload[1].Name, "get-2"},
		{"w2 name", s.Workload[2].Name, "get-3"},
		{"client", s.Workload[0].Client, ClientQUIC},
		{"value_size", s.Workload[0].ValueSize, 32},
		{"accounts", s.Workload[0].Accounts, 10000},
		{"keys", s.Workload[0].Keys.String(), "uniform"},
		{"arrival open", s.Workload[0].Arrival, ArrivalConstant},
		{"arrival closed", s.Workload[1].Arrival, Arrival("")},
		{"timeout", s.Workload[0].Timeout.Std(), 10 * time.Second},
		{"verify", *s.Workload[0].VerifyProofs, Percent(1)},
		{"formats", len(s.Report.Formats), 5},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	// The third workload sets arrival on a closed loop: Validate says so.
	err = s.Validate()
	e := errorOf(t, err)
	if e.Field != "workload[2].arrival" || e.Line != 8 || !errors.Is(err, ErrInvalid) {
		t.Errorf("got %v", err)
	}
	// Idempotent, and explicit values are kept.
	s2, _ := Parse("", []byte("seed: 9\ncluster: {nodes: 4, storage: {sync: false}}\nworkload: [{kind: put, rate: 1/s}]\n"))
	s2.EnsureDefaults()
	s2.EnsureDefaults()
	if s2.Seed != 9 || s2.Cluster.Quorum != 3 || s2.Cluster.Storage.SyncEnabled() || s2.Name != DefaultName {
		t.Errorf("explicit values lost: %+v", s2)
	}
}

func TestValidate(t *testing.T) {
	base := "duration: 20s\ncluster: {nodes: 3}\nworkload:\n  - kind: put\n    rate: 100/s\n"
	cases := []struct {
		name, extra, field, msg string
	}{
		{"ok", "", "", ""},
		{"kill leader ok", "timeline:\n  - {at: 1s, kill: leader(3), restart_after: 1s}\n  - {at: 2s, pause: leader(0), for: 1s}\n", "", ""},
		{"no mode", "  - kind: get\n", "workload[1]", "no load mode"},
		{"two modes", "  - kind: get\n    rate: 5/s\n    clients: 3\n", "workload[1].clients", "conflicts with rate"},
		{"zero rate", "  - kind: get\n    rate: 0/s\n", "workload[1]", "no load mode"},
		{"kill unknown node", "timeline:\n  - {at: 1s, kill: node-4}\n", "timeline[0].kill", `"node-4" is not a node (want node-1..node-3, or leader(S)`},
		{"kill leader of unknown shard", "timeline:\n  - {at: 1s, kill: leader(4)}\n", "timeline[0].kill", `"leader(4)" names shard 4, but there are 4 shards`},
		{"pause leader badly", "timeline:\n  - {at: 1s, pause: leader(x), for: 1s}\n", "timeline[0].pause", `"leader(x)" is not a node`},
		{"pause without for", "timeline:\n  - {at: 1s, pause: node-1}\n", "timeline[0].for", "required with pause"},
		{"kill broker ok", "timeline:\n  - {at: 1s, kill: broker, restart_after: 2s}\n", "", ""},
		{"flood ok", "timeline:\n  - {at: 1s, flood: leader(1), conns: 300, for: 2s}\n", "", ""},
		{"disk_full ok", "timeline:\n  - {at: 1s, disk_full: leader(0), for: 2s}\n", "", ""},
		{"disk_full without for", "timeline:\n  - {at: 1s, disk_full: node-2}\n", "timeline[0].for", "required with disk_full"},
		{"disk_full and pause", "timeline:\n  - {at: 1s, pause: node-1, disk_full: node-2, for: 1s}\n", "timeline[0].disk_full", "conflicts with pause"},
		{"flood without for", "timeline:\n  - {at: 1s, flood: node-1}\n", "timeline[0].for", "required with flood"},
		{"flood unknown node", "timeline:\n  - {at: 1s, flood: node-9, for: 1s}\n", "timeline[0].flood", `"node-9" is not a node`},
		{"flood too many", "timeline:\n  - {at: 1s, flood: node-1, conns: 200000, for: 1s}\n", "timeline[0].conns", "not in 1..100000"},
		{"conns without flood", "timeline:\n  - {at: 1s, pause: node-1, for: 1s, conns: 5}\n", "timeline[0].conns", "only applies to flood"},
		{"pause broker", "timeline:\n  - {at: 1s, pause: broker, for: 1s}\n", "timeline[0].pause", `"broker" is not a node`},
		{"at after end", "timeline:\n  - {at: 25s, pause: node-1, for: 1s}\n", "timeline[0].at", "not before the end"},
		{"two actions", "timeline:\n  - {at: 1s, pause: node-1, for: 1s, kill: node-2}\n", "timeline[0].pause", "conflicts with kill"},
		{"partition overlap", "timeline:\n  - {at: 1s, partition: [[node-1, node-2], [node-2, node-3]]}\n", "timeline[0].partition[1][0]", "in two groups"},
		{"partition one group", "timeline:\n  - {at: 1s, partition: [[node-1]]}\n", "timeline[0].partition", "at least two groups"},
		{"heal without partition", "timeline:\n  - {at: 1s, kill: node-1, heal_after: 1s}\n", "timeline[0].heal_after", "only applies to partition"},
		{"link endpoint", "network:\n  links: [{from: clients, to: node-9, delay: 1ms}]\n", "network.links[0].to", `"node-9" is not an endpoint`},
		{"distribution no jitter", "network:\n  default: {delay: 1ms, distribution: pareto}\n", "network.default.distribution", "without jitter"},
		{"reorder no delay", "network:\n  default: {reorder: 1%}\n", "network.default.reorder", "needs a delay"},
		{"queue no rate", "network:\n  default: {queue: 10}\n", "network.default.queue", "needs rate"},
		{"mtu", "network:\n  default: {mtu: 10}\n", "network.default.mtu", "out of range"},
		{"slo metric", "slo:\n  - {metric: commited.p99, max: 1s}\n", "slo[0].metric", `did you mean committed?`},
		{"slo bad metric", "slo:\n  - {metric: committed.p98, max: 1s}\n", "slo[0].metric", "is not a metric"},
		{"slo bound", "slo:\n  - {metric: committed.p99, max: 5}\n", "slo[0].max", `"5" is not a duration`},
		{"slo count", "slo:\n  - {metric: lost, max: 1ms}\n", "slo[0].max", "is not a count"},
		{"slo none", "slo:\n  - {metric: lost}\n", "slo[0]", "give max or min"},
		{"nodes", "", "", ""},
		{"dup name", "  - {name: put, kind: get, clients: 1}\n", "workload[1].name", "already the name"},
		{"reserved name", "  - {name: committed, kind: get, clients: 1}\n", "workload[1].name", "reserved"},
		{"maxrate", "  - {kind: put, maxrate: {from: 10/s}}\n", "workload[1].maxrate.p99", "required"},
		{"sweep ok", "sweep: {rtt: [1ms, 50ms]}\n", "", ""},
		{"sweep two lists", "sweep: {nodes: [1, 2], shards: [4]}\n", "sweep", "exactly one of"},
		{"sweep empty", "sweep: {nodes: []}\n", "sweep", "exactly one of"},
		{"sweep nodes range", "sweep: {nodes: [1, 1025]}\n", "sweep.nodes[1]", "out of range"},
		{"simulation window", "simulation: {window: 1s}\n", "simulation.window", "out of range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := base
			if strings.HasPrefix(c.extra, "  - ") {
				src += c.extra
			} else {
				src += c.extra
			}
			s, err := Parse("v.yaml", []byte(src))
			if err != nil {
				t.Fatal(err)
			}
			s.EnsureDefaults()
			err = s.Validate()
			if c.field == "" {
				if err != nil {
					t.Fatalf("unexpected %v", err)
				}
				return
			}
			e := errorOf(t, err)
			if e.Field != c.field || !strings.Contains(e.Msg, c.msg) || !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v; want field %s with %q", err, c.field, c.msg)
			}
			if e.Line == 0 {
				t.Errorf("no line in %v", err)
			}
		})
	}
}

func TestValidateSeveral(t *testing.T) {
	s, err := Parse("m.yaml", []byte("cluster: {nodes: 0}\nduration: 1s\nworkload:\n  - kind: put\n"))
	if err != nil {
		t.Fatal(err)
	}
	s.Cluster.Nodes = -1
	s.EnsureDefaults()
	err = s.Validate()
	if err == nil || strings.Count(err.Error(), "\n") < 1 {
		t.Fatalf("want several errors, got %v", err)
	}
	if !strings.HasPrefix(err.Error(), "m.yaml:1: cluster.nodes") {
		t.Errorf("first error not in line order: %v", err)
	}
}

// TestSLOBounds: thresholds parse in the unit of their metric's kind
// (ParseMetric's grammar is tested in reports).
func TestSLOBounds(t *testing.T) {
	for _, c := range []struct {
		slo  SLO
		want reports.SLO
	}{
		{SLO{Metric: "committed.p99", Max: "250ms"}, reports.SLO{Metric: "committed.p99", Max: reports.Bound{Text: "250ms", Value: 250000}}},
		{SLO{Metric: "lost", Max: "0"}, reports.SLO{Metric: "lost", Max: reports.Bound{Text: "0", Value: 0}}},
		{SLO{Metric: "puts.throughput", Min: "2k/s", Max: "3000/s"}, reports.SLO{Metric: "puts.throughput", Min: reports.Bound{Text: "2k/s", Value: 2000}, Max: reports.Bound{Text: "3000/s", Value: 3000}}},
	} {
		got, err := c.slo.Bounds()
		if err != nil || got != c.want {
			t.Errorf("%+v.Bounds() = %+v, %v; want %+v", c.slo, got, err, c.want)
		}
	}
	for _, slo := range []SLO{{Metric: "committed.p99", Max: "250"}, {Metric: "lost", Max: "1ms"}, {Metric: "throughput", Min: "5"}, {Metric: "commited.p99", Max: "1s"}} {
		if got, err := slo.Bounds(); err == nil {
			t.Errorf("%+v.Bounds() = %+v", slo, got)
		}
	}
	s := &Scenario{SLO: []SLO{{Metric: "lost", Max: "0"}, {Metric: "lag.p99", Max: "1s"}}}
	got, err := s.ReportSLOs()
	if err != nil || len(got) != 2 || got[1].Max.Value != 1e6 {
		t.Errorf("ReportSLOs() = %+v, %v", got, err)
	}
	s.SLO = append(s.SLO, SLO{Metric: "lost", Max: "x"})
	if _, err := s.ReportSLOs(); err == nil || !strings.Contains(err.Error(), "slo[2]") {
		t.Errorf("ReportSLOs with a bad threshold: %v", err)
	}
}

func TestNetworkPathAndTimeline(t *testing.T) {
	s, err := Load("lossy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := s.Network.Path("clients", "node-1")
	if p.Delay.Std() != 5*time.Millisecond || p.Jitter.Std() != time.Millisecond || p.Loss != 2 || p.LossModel != LossGilbertElliott {
		t.Errorf("clients→node-1 = %+v", p)
	}
	// A path without its own link gets the default.
	if got := s.Network.Path("node-1", "node-1"); got != *s.Network.Default {
		t.Errorf("default path = %+v", got)
	}
	if got := s.NetworkAt(Duration(20*time.Second)).Path("clients", "node-1"); got.Loss != 10 || got.LossBurst != 0 {
		t.Errorf("at 20s = %+v", got)
	}
	if got := s.NetworkAt(Duration(30*time.Second)).Path("clients", "node-1"); got.Loss != 2 || got.LossBurst != 5 {
		t.Errorf("at 30s = %+v", got)
	}
	// The scenario's own network is unchanged by NetworkAt.
	if s.Network.Path("clients", "node-1").Loss != 2 {
		t.Error("NetworkAt changed the scenario")
	}

	f, err := Load("failover.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, a := range f.Schedule() {
		ops = append(ops, a.At.String()+" "+a.String())
	}
	want := "8s kill leader(0),13s restart leader(0),20s partition [node-1] | [node-2 node-3],24s heal [node-1] | [node-2 node-3]"
	if got := strings.Join(ops, ","); got != want {
		t.Errorf("schedule\n got %s\nwant %s", got, want)
	}
	if got := f.Timeline[0].String(); got != "kill leader(0), restart after 5s" {
		t.Errorf("event string %q", got)
	}
}

func TestEffectiveImpairment(t *testing.T) {
	i := Impairment{Jitter: Duration(time.Millisecond), Loss: 1, Rate: 1e6}.Effective()
	if i.Distribution != DistUniform || i.LossModel != LossBernoulli || i.Queue != 1000 {
		t.Errorf("%+v", i)
	}
	if (Impairment{}).Effective() != (Impairment{}) {
		t.Error("zero impairment changed")
	}
}

func TestMergeKeysAndAliases(t *testing.T) {
	src := `
x-wan: &wan {delay: 40ms, jitter: 5ms}
`
	if _, err := Parse("", []byte(src)); err == nil {
		t.Error("unknown top-level x-wan accepted")
	}
	src = `
network:
  default: &base {delay: 2ms, jitter: 1ms}
  links:
    - {from: clients, to: node-1, <<: *base, delay: 40ms}
    - {from: node-1, to: clients, <<: *base}
workload: [{kind: put, rate: 1/s}]
`
	s, err := Parse("", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if l := s.Network.Links[0]; l.Delay.Std() != 40*time.Millisecond || l.Jitter.Std() != time.Millisecond {
		t.Errorf("link 0 %+v", l)
	}
	if l := s.Network.Links[1]; l.Delay.Std() != 2*time.Millisecond {
		t.Errorf("link 1 %+v", l)
	}
}

func TestAliasBomb(t *testing.T) {
	src := `a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
timeline: [{partition: [*f]}]
`
	_, err := Parse("", []byte(src))
	if err == nil {
		t.Fatal("alias bomb accepted")
	}
}

func TestLoadMissingFile(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "nope.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v", err)
	}
}

func TestLoadValidatesWithFileName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("workload:\n  - kind: put\n    rate: 1/s\ntimeline:\n  - {at: 1s, kill: node-2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	e := errorOf(t, err)
	if e.File != path || e.Line != 5 || e.Field != "timeline[0].kill" {
		t.Errorf("got %v", err)
	}
}

func TestLeaderTarget(t *testing.T) {
	for _, tc := range []struct {
		in    string
		shard int
		ok    bool
	}{{"leader(0)", 0, true}, {"leader(12)", 12, true}, {"leader(-1)", 0, false}, {"leader(01)", 0, false},
		{"leader()", 0, false}, {"leader(1", 0, false}, {"node-1", 0, false}, {"leader(1)x", 0, false}} {
		if s, ok := LeaderTarget(tc.in); s != tc.shard || ok != tc.ok {
			t.Errorf("LeaderTarget(%q) = %d, %t", tc.in, s, ok)
		}
	}
}

func TestRampRateAt(t *testing.T) {
	r := Ramp{From: 100, To: 5100, Over: Duration(10 * time.Second)}
	for at, want := range map[time.Duration]Rate{0: 100, 5 * time.Second: 2600, 10 * time.Second: 5100, time.Minute: 5100} {
		if got := r.RateAt(Duration(at)); math.Abs(float64(got-want)) > 1e-9 {
			t.Errorf("RateAt(%s) = %v, want %v", at, got, want)
		}
	}
}

func TestCloneIsDeep(t *testing.T) {
	s, err := Load("lossy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := s.Clone()
	c.Network.Default.Delay = 0
	c.Network.Links[0].Loss = 50
	c.Timeline[0].Network.Links[0].Loss = 50
	c.Workload[0].VerifyProofs = nil
	if s.Network.Default.Delay == 0 || s.Network.Links[0].Loss == 50 || s.Timeline[0].Network.Links[0].Loss == 50 || s.Workload[0].VerifyProofs == nil {
		t.Error("clone shares memory with the original")
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("seed: [1\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("workload: [{kind: put, rate: 1e400/s, keys: zipf(1e400)}]\n"))
	f.Add([]byte("network: {default: {rate: 99999999999999999999tbit}}\n"))
	f.Add([]byte("cluster: {broker: [\"[::1]:0\"]}\n"))
	f.Add([]byte("<<: {seed: 1}\n"))
	f.Add([]byte("timeline: [{at: 1s, partition: [[], [node-1]]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			return
		}
		s.EnsureDefaults()
		if err := s.Validate(); err == nil {
			// Anything valid must survive the resolved JSON round trip.
			resolvedRoundTrip(t, s)
		}
		_ = s.Schedule()
		_ = s.NetworkAt(s.Duration)
	})
}

func TestDecodeStrict(t *testing.T) {
	type inner struct {
		Wait Duration `yaml:"wait"`
	}
	type doc struct {
		Name  string  `yaml:"name"`
		Count uint32  `yaml:"count"`
		In    inner   `yaml:"in"`
		List  []inner `yaml:"list"`
	}
	var d doc
	lines, err := DecodeStrict("d.yaml", []byte("name: x\ncount: 7\nin: {wait: 20ms}\nlist:\n  - {wait: 1s}\n"), &d)
	if err != nil || d.Name != "x" || d.Count != 7 || d.In.Wait.Std() != 20*time.Millisecond || len(d.List) != 1 || lines["list[0].wait"] != 5 {
		t.Fatalf("%+v %v %v", d, lines, err)
	}
	for _, tc := range []struct{ text, want string }{
		{"name: x\ncolor: red\n", "d.yaml:2: color: unknown field"},
		{"count: -1\n", "d.yaml:1: count: -1 is out of range"},
		{"count: 4294967296\n", "d.yaml:1: count: 4294967296 is out of range"},
		{"in: {wait: soon}\n", "d.yaml:1: in.wait:"},
		{"name: [a]\n", "d.yaml:1: name: want a string"},
	} {
		var d doc
		_, err := DecodeStrict("d.yaml", []byte(tc.text), &d)
		var e *Error
		if !errors.As(err, &e) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q…", tc.text, err, tc.want)
		}
	}
	if _, err := DecodeStrict("d.yaml", []byte("a: 1"), d); err == nil {
		t.Error("a non-pointer was accepted")
	}
}

// TestSimulationClusterFields: cluster.cores_per_node and cluster.brokers
// are optional, and given they must be in range (zero included).
func TestSimulationClusterFields(t *testing.T) {
	for _, c := range []struct{ cluster, field string }{
		{"{nodes: 2}", ""},
		{"{nodes: 2, cores_per_node: 8, brokers: 3}", ""},
		{"{nodes: 2, cores_per_node: 0}", "cluster.cores_per_node"},
		{"{nodes: 2, cores_per_node: 2000}", "cluster.cores_per_node"},
		{"{nodes: 2, brokers: 0}", "cluster.brokers"},
		{"{nodes: 2, brokers: 65}", "cluster.brokers"},
	} {
		s, err := Parse("c.yaml", []byte("cluster: "+c.cluster+"\nworkload:\n  - {kind: put, rate: 1/s}\n"))
		if err != nil {
			t.Fatal(err)
		}
		s.EnsureDefaults()
		err = s.Validate()
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: %v", c.cluster, err)
		case c.field != "" && (err == nil || !strings.Contains(err.Error(), c.field)):
			t.Errorf("%s: %v, want an error on %s", c.cluster, err, c.field)
		}
	}
}

// TestNodeCapForRuns: a run starts at most MaxNodes nodes, and says that
// rustorium simulate takes more; a simulation takes up to MaxSimNodes.
func TestNodeCapForRuns(t *testing.T) {
	src := "duration: 20s\ncluster: {nodes: 100}\nworkload:\n  - {kind: put, rate: 100/s}\n"
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), "cluster.nodes") || !strings.Contains(err.Error(), "rustorium simulate takes up to 1024") {
		t.Fatalf("Load of 100 nodes: %v", err)
	}
	sc, err := LoadSimulation(path)
	if err != nil || sc.Cluster.Nodes != 100 {
		t.Fatalf("LoadSimulation of 100 nodes: %v", err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(src, "100", "1025", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSimulation(path); err == nil || !strings.Contains(err.Error(), "1..1024") {
		t.Fatalf("LoadSimulation of 1025 nodes: %v", err)
	}
}

// TestFloorGap: a run's floors are paced as its first workload sends, or
// 1 ms apart without a rate.
func TestFloorGap(t *testing.T) {
	for _, tc := range []struct {
		workload string
		want     time.Duration
	}{
		{"{name: w, kind: put, rate: 300/s}", time.Second / 300},
		{"{name: w, kind: put, rate: 2000/s}", 500 * time.Microsecond},
		{"{name: w, kind: put, clients: 4}", time.Millisecond},
	} {
		sc, err := Parse("t.yaml", []byte("name: t\nduration: 1s\nworkload:\n  - "+tc.workload+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := sc.FloorGap(); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.workload, got, tc.want)
		}
	}
}
