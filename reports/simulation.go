package reports

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Calibration names the calibration a simulated run priced its operations
// with (rustorium simulate --calib): the file and the machine measured.
type Calibration struct {
	File      string `json:"file"`
	CPUModel  string `json:"cpu_model"`
	Cores     int    `json:"cores"`
	GoVersion string `json:"go_version"`
	Quick     bool   `json:"quick,omitempty"`
	// Busy is the calibration's own: the end-to-end runs of calibrate
	// that shared the machine with other work (calib.Calibration.Busy).
	Busy []string `json:"busy,omitempty"`
}

// Simulation is what a simulated run adds: how the cluster was modelled,
// how busy each resource was over the measured phase, and the bottleneck.
type Simulation struct {
	// Host is "dedicated" (every node and broker machine its own cores and
	// disk) or "shared" (everything on one machine of the calibration's
	// cores, as rustorium run on it).
	Host         string `json:"host"`
	CoresPerNode int    `json:"cores_per_node"`
	Brokers      int    `json:"brokers"`
	// Finality is "consensus" (the node's own Finality tracker, signatures
	// included) or "count" (its honest-vote equivalent, for large
	// clusters).
	Finality string `json:"finality"`
	// Mode is "tx" (every transaction an entity of its own) or "cohort"
	// (transactions moved in cohorts, scenario simulation.mode);
	// CohortWindowMS is a cohort's window of intended send times.
	Mode           string  `json:"mode,omitempty"`
	CohortWindowMS float64 `json:"cohort_window_ms,omitempty"`
	// BackgroundLoad is the other processes' load modelled on a shared
	// host (simulate --background-load); 0: none.
	BackgroundLoad float64 `json:"background_load,omitempty"`
	// VirtualS is the simulated time, warmup and drain included; Events
	// the discrete events run; WallS the wall-clock seconds it took (the
	// one field that differs between two runs of the same inputs).
	VirtualS float64 `json:"virtual_s"`
	Events   uint64  `json:"events"`
	WallS    float64 `json:"wall_s"`
	// Blocks and BlockMeanTxs: blocks published and their mean size.
	Blocks       int64   `json:"blocks"`
	BlockMeanTxs float64 `json:"block_mean_txs"`
	// Utilisation is, per resource (node-N, node-N disk, broker-N, …, or
	// host), the share of its capacity each operation used over the
	// measured phase, and "total".
	Utilisation map[string]map[string]float64 `json:"utilisation"`
	// Bottleneck is the resource with the highest total utilisation.
	Bottleneck *Bottleneck `json:"bottleneck,omitempty"`
	// Spans are the steps of a transaction the model times as the real
	// run's spans of those names do (tx mode; the measured phase's
	// transactions, a block's steps once per transaction, the replica
	// steps once per node), for comparison with Traces.Spans.
	Spans []SpanStat `json:"spans,omitempty"`
}

// Bottleneck names the busiest resource of a simulated run.
type Bottleneck struct {
	Resource    string  `json:"resource"`
	Utilisation float64 `json:"utilisation"`
	// Operation is the operation that used most of it.
	Operation string `json:"operation"`
}

// simulationMarkdown appends a simulated run's section to report.md: the
// calibration, the model's figures and the utilisation table.
func simulationMarkdown(w io.Writer, r *Result) error {
	s := r.Simulation
	if !r.Simulated || s == nil {
		return nil
	}
	var b strings.Builder
	b.WriteString("\n## Simulation\n\nThis run is simulated in virtual time (rustorium simulate)")
	if c := r.Calibration; c != nil {
		fmt.Fprintf(&b, ", priced from the calibration %s of %s (%d cores, %s)", mdEscape(c.File), mdEscape(c.CPUModel), c.Cores, c.GoVersion)
	}
	fmt.Fprintf(&b, ". Host: %s, %d cores per node, %d broker(s), finality: %s. %.1f virtual seconds, %d events in %.1f s of wall time; %d blocks of %.1f transactions on average.\n",
		s.Host, s.CoresPerNode, s.Brokers, s.Finality, s.VirtualS, s.Events, s.WallS, s.Blocks, s.BlockMeanTxs)
	if bn := s.Bottleneck; bn != nil {
		fmt.Fprintf(&b, "\n**Bottleneck: %s** at %.0f%% of its capacity, mostly %s.\n", mdEscape(bn.Resource), bn.Utilisation*100, bn.Operation)
	}
	names := make([]string, 0, len(s.Utilisation))
	for n := range s.Utilisation {
		names = append(names, n)
	}
	sort.Strings(names)
	b.WriteString("\nUtilisation over the measured phase, by operation:\n\n| resource | total | by operation |\n|---|---:|---|\n")
	for _, n := range names {
		m := s.Utilisation[n]
		ops := make([]string, 0, len(m))
		for op, u := range m {
			if op != "total" {
				ops = append(ops, fmt.Sprintf("%s %.1f%%", op, u*100))
			}
		}
		sort.Strings(ops)
		fmt.Fprintf(&b, "| %s | %.1f%% | %s |\n", mdEscape(n), m["total"]*100, strings.Join(ops, ", "))
	}
	if len(s.Spans) > 0 {
		b.WriteString("\nThe steps the model times as a real run's spans of the same name (over the measured phase's transactions; a block's steps once per transaction, the replica's once per node), to set beside a real run's traces:\n\n| span | times | p50 | p99 |\n|---|---:|---:|---:|\n")
		for _, sp := range s.Spans {
			fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", mdEscape(sp.Span), sp.Count, FormatMicros(sp.P50Us), FormatMicros(sp.P99Us))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
