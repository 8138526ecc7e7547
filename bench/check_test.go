package bench

import (
	"errors"
	"strings"
	"testing"

	"github.com/rustorium/rustorium/scenarios"
)

// TestCheckRefusesWithFileAndLine: what a target cannot run is refused
// before anything starts, each problem at its scenario line, wrapping
// ErrUnsupported; what it can run passes.
func TestCheckRefusesWithFileAndLine(t *testing.T) {
	const text = `name: refused
duration: 1s
workload:
  - name: transfers
    kind: transfer
    accounts: 1
    maxrate: {p99: 10ms}
  - name: puts
    kind: put
    client: rest
    maxrate: {p99: 10ms, stage: read}
  - name: gets
    kind: get
    trace: trace.csv
    arrival: poisson
timeline:
  - {at: 500ms, pause: node-1, for: 100ms}
`
	sc, err := scenarios.Parse("refused.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	sc.EnsureDefaults()
	err = Check(sc, (&External{Addr: "127.0.0.1:1"}).Caps())
	if !errors.Is(err, ErrUnsupported) || !errors.Is(err, scenarios.ErrInvalid) {
		t.Fatalf("Check = %v, want ErrUnsupported and scenarios.ErrInvalid", err)
	}
	for _, want := range []string{
		"refused.yaml:5: workload[0].kind: a transfer needs accounts from genesis",
		"refused.yaml:6: workload[0].accounts: a transfer needs at least 2 accounts",
		"refused.yaml:7: workload[0].maxrate: a max-rate search of a transfer workload is not supported",
		"refused.yaml:7: workload[0].maxrate: a max-rate search must be the only workload",
		"refused.yaml:10: workload[1].client: this target cannot be reached over rest (give the node's API address)",
		"refused.yaml:11: workload[1].maxrate.stage: a put workload records no read stage",
		"refused.yaml:15: workload[2].arrival: poisson arrivals only with a rate or a ramp",
		"refused.yaml:16: timeline: timeline events need a target with fault injection",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check's error lacks %q:\n%v", want, err)
		}
	}

	ok, err := scenarios.Parse("ok.yaml", []byte("duration: 1s\nworkload:\n  - {kind: transfer, rate: 10/s}\n  - {kind: get, rate: 10/s}\ntimeline:\n  - {at: 500ms, pause: node-1, for: 100ms}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ok.EnsureDefaults()
	if err := Check(ok, (&InProcess{}).Caps()); err != nil {
		t.Fatalf("an in-process cluster refused what it can run: %v", err)
	}
	if err := Check(ok, (&External{Addr: "127.0.0.1:1"}).Caps()); err == nil || !strings.Contains(err.Error(), "workload[0].kind") {
		t.Fatalf("an external node took a transfer and a timeline: %v", err)
	}
}

// TestKindsCoverEveryScenarioKind: every kind the scenario format accepts
// has a unit, and each unit records at least one stage.
func TestKindsCoverEveryScenarioKind(t *testing.T) {
	for _, k := range []scenarios.Kind{scenarios.KindPut, scenarios.KindTransfer, scenarios.KindGet, scenarios.KindQuery} {
		u, ok := kinds[k]
		if !ok || len(u.stages()) == 0 {
			t.Errorf("kind %s: unit %v", k, u)
		}
	}
	if len(kinds) != 4 {
		t.Errorf("%d kinds, want 4", len(kinds))
	}
}

// TestVerifyEvery: verify_proofs samples every n-th receipt, and 0% none
// (send 0 included: i % n == 0 held for any n).
func TestVerifyEvery(t *testing.T) {
	for _, c := range []struct {
		pct  *scenarios.Percent
		want uint64
	}{{nil, 100}, {ptr(scenarios.Percent(100)), 1}, {ptr(scenarios.Percent(20)), 5}, {ptr(scenarios.Percent(0)), 0}} {
		if got := verifyEvery(&scenarios.Workload{VerifyProofs: c.pct}); got != c.want {
			t.Errorf("verify_proofs %v: every %d, want %d", c.pct, got, c.want)
		}
	}
}

// TestCheckRefusesHugeSchedules: a rate that would pre-sign more than
// MaxSends over the run is refused at load time with its line, before
// anything is signed or allocated.
func TestCheckRefusesHugeSchedules(t *testing.T) {
	sc, err := scenarios.Parse("huge.yaml", []byte("duration: 1000000h\nworkload:\n  - {kind: put, rate: 2000000/s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	sc.EnsureDefaults()
	err = Check(sc, (&InProcess{}).Caps())
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "huge.yaml:3: workload[0]:") || !strings.Contains(err.Error(), "more than the 20000000 a run may schedule") {
		t.Fatalf("Check = %v", err)
	}
}
