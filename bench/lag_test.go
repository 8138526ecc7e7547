package bench

import (
	"strings"
	"testing"

	"github.com/rustorium/rustorium/reports"
)

// TestLagCause: a lagging generator's note says how busy the machine's
// cores were and with what, and what to do about it.
func TestLagCause(t *testing.T) {
	for _, c := range []struct {
		name string
		r    *reports.Resources
		want []string
	}{
		{"no samples", nil, []string{"a busy machine, or a generator short of CPU"}},
		{"no machine figures", &reports.Resources{CPUPercentMean: 150}, []string{"a busy machine, or a generator short of CPU"}},
		// make run on an AMD host: the process at 0.9 of a core.
		{"idle cores", &reports.Resources{CPUPercentMean: 90, MachineCPUPercentMean: 95, OtherCPUPercentMean: 5},
			[]string{"2 cores were 48% busy", "this process 45%, other work 2%", "own goroutines or timers were late"}},
		// make run on an Intel host: the process at 1.5 cores.
		{"own process", &reports.Resources{CPUPercentMean: 147, MachineCPUPercentMean: 152, OtherCPUPercentMean: 5},
			[]string{"76% busy", "this process 74%", "run it apart (cluster.mode: process"}},
		{"other work", &reports.Resources{CPUPercentMean: 60, MachineCPUPercentMean: 190, OtherCPUPercentMean: 130},
			[]string{"95% busy on average, mostly with other work", "other work 65%", "quieter machine"}},
		// A host busy with other guests: half the time stolen.
		{"steal", &reports.Resources{CPUPercentMean: 82, MachineCPUPercentMean: 75, StealPercentMean: 95},
			[]string{"the hypervisor took 48% of the machine's 2 cores' time", "measure when the host is quiet"}},
		// Steal under a quarter of a core leaves the latencies judged
		// (reports.Resources.Busy), and the note looks elsewhere.
		{"little steal", &reports.Resources{CPUPercentMean: 147, MachineCPUPercentMean: 152, OtherCPUPercentMean: 5, StealPercentMean: 20},
			[]string{"76% busy", "run it apart"}},
		// cluster.mode: process: the nodes are the rest.
		{"nodes apart", &reports.Resources{CPUPercentMean: 40, MachineCPUPercentMean: 170, OtherCPUPercentMean: 10},
			[]string{"85% busy", "this process 20%, the nodes' processes 60%, other work 5%", "run it on another machine (rustorium loadgen)"}},
	} {
		got := lagCause(c.r, 2)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", c.name, got, w)
			}
		}
	}
}
