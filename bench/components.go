package bench

import (
	"fmt"
	"regexp"

	"github.com/google/pprof/profile"

	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// cpuComponents are the parts of the system a CPU profile's samples are
// split into (reports.ProfileSummary.Components), in the order they claim
// a sample: a sample belongs to the first part that any function of its
// stack matches. So the Poseidon permutations the replica runs are
// Poseidon's, the QUIC work of the load generator's client QUIC's, the
// allocation a node's function makes the node's, and Go's runtime and the
// kernel get only the samples no part of the system is on the stack of
// (the background GC, the scheduler's idle wake-ups, interrupts).
var cpuComponents = []struct {
	name string
	re   *regexp.Regexp
}{
	{"harness (floors, sampling, recording)", regexp.MustCompile(`^github\.com/rustorium/rustorium/(bench|reports|calib)\.`)},
	{"Poseidon", regexp.MustCompile(`^github\.com/rustorium/rustorium/node/merkle/poseidon\.`)},
	{"Merkle tree", regexp.MustCompile(`^github\.com/rustorium/rustorium/node/merkle\.`)},
	{"ed25519", regexp.MustCompile(`^(crypto/ed25519|crypto/internal/fips140/(ed25519|edwards25519)|github\.com/oasisprotocol/curve25519-voi/)`)},
	{"Pebble", regexp.MustCompile(`^github\.com/cockroachdb/pebble/`)},
	{"embedded broker (kfake)", regexp.MustCompile(`^github\.com/twmb/franz-go/pkg/kfake\.`)},
	{"Kafka client (franz-go)", regexp.MustCompile(`^github\.com/twmb/franz-go/`)},
	{"QUIC (quic-go)", regexp.MustCompile(`^github\.com/quic-go/`)},
	{"load generator", regexp.MustCompile(`^github\.com/rustorium/rustorium/loadgen\.`)},
	{"node (other)", regexp.MustCompile(`^github\.com/rustorium/rustorium/node`)},
	{"rustorium (other)", regexp.MustCompile(`^github\.com/rustorium/rustorium/`)},
	{"Go GC (background)", regexp.MustCompile(`^runtime\.(gcBgMarkWorker|bgsweep|bgscavenge)$`)},
	{"Go runtime (scheduler, timers, poller)", regexp.MustCompile(`^runtime\.`)},
	{"other (kernel, libraries)", regexp.MustCompile(``)},
}

// profileComponents splits prof's sample values (index vi) among
// cpuComponents, in their order, leaving out the parts with none.
func profileComponents(prof *profile.Profile, vi int) []reports.ProfileComponent {
	sums := make([]int64, len(cpuComponents))
	var total int64
	part := map[uint64]int{} // by function id: the first part it matches
	of := func(fn *profile.Function) int {
		if i, ok := part[fn.ID]; ok {
			return i
		}
		i := len(cpuComponents) - 1
		for j, c := range cpuComponents {
			if c.re.MatchString(fn.Name) {
				i = j
				break
			}
		}
		part[fn.ID] = i
		return i
	}
	for _, smp := range prof.Sample {
		v := smp.Value[vi]
		total += v
		best := len(cpuComponents) - 1
		for _, loc := range smp.Location {
			for _, line := range loc.Line {
				if line.Function != nil {
					best = min(best, of(line.Function))
				}
			}
		}
		sums[best] += v
	}
	var out []reports.ProfileComponent
	for i, v := range sums {
		if v > 0 {
			out = append(out, reports.ProfileComponent{Name: cpuComponents[i].name, Value: v, Pct: pctOf(v, total)})
		}
	}
	return out
}

// pctOf is v as a percentage of total, to a tenth (rounded down); 0 when
// total is.
func pctOf(v, total int64) float64 {
	if total == 0 {
		return 0
	}
	return float64(int64(float64(v)*1000/float64(total))) / 10
}

// coverageLow and coverageHigh bound a CPU profile's coverage
// (reports.ProfileSummary.CoveredPct, percent) outside which its summary
// gets a caveat: more than a fifth of the CPU time unseen, or a quarter
// more than there was (the profile ran into the drain).
const coverageLow, coverageHigh = 80, 125

// profileCPU sets each CPU profile's CoveredPct and its components' µs a
// committed transaction from the CPU seconds of the measured phase the
// harness process (own) and the node processes (nodes) used, and the
// transactions committed then; it adds a caveat to the profiles that saw
// much less or more CPU time than that. Go's profiler samples the harness
// process; perf samples the node processes too. A component's µs a
// transaction is its share of the profile times the CPU a transaction of
// the processes sampled, so a profiler that lost samples (perf on this
// project's host saw 74–101% of the CPU time alone) still splits what
// they spent.
func profileCPU(profiles []reports.ProfileSummary, own, nodes float64, committed int64) {
	both := false
	for _, p := range profiles {
		both = both || p.Kind == string(scenarios.ProfileCPU)
	}
	for i := range profiles {
		p := &profiles[i]
		cpu := own
		switch p.Kind {
		case string(scenarios.ProfileCPU):
		case string(scenarios.ProfilePerf):
			cpu += nodes
		default:
			continue
		}
		if cpu <= 0 || p.Total <= 0 {
			continue
		}
		if committed > 0 {
			perTx := cpu * 1e6 / float64(committed)
			for j := range p.Components {
				c := &p.Components[j]
				c.MicrosPerTx = float64(int64(perTx*float64(c.Value)/float64(p.Total)*10)) / 10
			}
		}
		p.CoveredPct = float64(int64(float64(p.Total)/1e9/cpu*1000)) / 10
		if p.CoveredPct >= coverageLow && p.CoveredPct <= coverageHigh {
			continue
		}
		c := fmt.Sprintf("its samples add up to %.0f%% of the CPU time the processes it samples used in the measured phase (%.1f s of %.1f s): its shares may lean toward what it saw", p.CoveredPct, float64(p.Total)/1e9, cpu)
		if p.Kind == string(scenarios.ProfilePerf) && both && p.CoveredPct < coverageLow {
			c += "; Go's cpu profile ran beside it, and on this project's 2-core host perf then saw 30–52% of the CPU time of make run's scenario (74–101% alone): profile with perf alone"
		}
		if p.Caveat != "" {
			c = p.Caveat + ". Also, " + c
		}
		p.Caveat = c
	}
}
