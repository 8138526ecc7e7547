package bench

import (
	"strings"
	"testing"

	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// TestCPUProfileCaveat: a cpu profile gets a caveat only when an open loop
// paced on a constant schedule a process that left cores idle; other
// profiles never do.
func TestCPUProfileCaveat(t *testing.T) {
	rate := func(arrival scenarios.Arrival) scenarios.Workload {
		return scenarios.Workload{Name: "w", Rate: 1000, Arrival: arrival}
	}
	closed := scenarios.Workload{Name: "c", Clients: 8}
	for _, c := range []struct {
		name   string
		loads  []scenarios.Workload
		cpuPct float64
		want   bool
	}{
		{"constant, idle cores", []scenarios.Workload{rate("")}, 86, true},
		{"constant named, idle cores", []scenarios.Workload{rate(scenarios.ArrivalConstant)}, 86, true},
		{"constant beside a closed loop", []scenarios.Workload{closed, rate("")}, 120, true},
		{"constant, busy cores", []scenarios.Workload{rate("")}, 150, false},
		{"poisson", []scenarios.Workload{rate(scenarios.ArrivalPoisson)}, 86, false},
		{"closed loop", []scenarios.Workload{closed}, 86, false},
		{"no CPU figure", []scenarios.Workload{rate("")}, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			profiles := []reports.ProfileSummary{{Kind: "heap"}, {Kind: "cpu"}}
			cpuProfileCaveat(profiles, &scenarios.Scenario{Workload: c.loads}, c.cpuPct, 2)
			if profiles[0].Caveat != "" {
				t.Fatalf("heap profile got a caveat: %q", profiles[0].Caveat)
			}
			if got := profiles[1].Caveat != ""; got != c.want {
				t.Fatalf("cpu caveat %q, want one: %v", profiles[1].Caveat, c.want)
			}
			if c.want && !strings.Contains(profiles[1].Caveat, "of 2 cores") {
				t.Fatalf("caveat %q does not give the load", profiles[1].Caveat)
			}
		})
	}
}
