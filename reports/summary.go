package reports

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// Summary writes the compact table printed at the end of a run: one line per
// workload and stage with corrected percentiles (and the uncorrected p99),
// then the checker and SLO verdicts.
func Summary(w io.Writer, res *Result) error {
	r := res.normalized()
	var b strings.Builder
	fmt.Fprintf(&b, "%s  seed %d  measured %s  %s\n", r.Scenario, r.Seed, fmtSeconds(r.DurationS), verdict(r.OK))
	rows := [][]string{{"workload", "stage", "count", "tx/s", "p50", "p90", "p99", "p99.9", "max", "p99 uncorr"}}
	for _, name := range sortedWorkloads(r) {
		wl := r.Workloads[name]
		if len(wl.Stages) == 0 {
			rows = append(rows, []string{name, "-", "0", "", "", "", "", "", "", ""})
		}
		for _, st := range stageOrder(wl) {
			s := wl.Stages[st]
			c := s.Corrected
			rows = append(rows, []string{name, st, fmt.Sprint(s.Count), fmt.Sprintf("%.1f", s.ThroughputTPS),
				FormatMicros(c.P50), FormatMicros(c.P90), FormatMicros(c.P99), FormatMicros(c.P999), FormatMicros(c.Max), FormatMicros(s.Uncorrected.P99)})
		}
	}
	writeTable(&b, rows, 2)
	for _, name := range sortedWorkloads(r) {
		wl := r.Workloads[name]
		lagged := ""
		if wl.GeneratorLagged {
			lagged = " — GENERATOR LAGGED: figures suspect"
		}
		fmt.Fprintf(&b, "%s: sent %d, errors %d, throughput %.1f tx/s, schedule lag p99 %s%s\n", name, wl.Sent, wl.Errors, wl.ThroughputTPS, FormatMicros(wl.LagP99Us), lagged)
	}
	if why := r.Resources.Busy(); why != "" {
		fmt.Fprintf(&b, "MACHINE NOT QUIET: %s; latencies suspect\n", why)
	}
	c := r.Checker
	fmt.Fprintf(&b, "checker %s: accepted %d, committed %d, lost %d, duplicated %d, roots equal %s, proofs %d checked / %d failed",
		verdict(c.OK), c.Accepted, c.Committed, c.Lost, c.Duplicated, c.RootsVerdict(), c.ProofsChecked, c.ProofsFailed)
	if c.BalancesConserved != nil {
		fmt.Fprintf(&b, ", balances conserved %t", *c.BalancesConserved)
	}
	if c.Divergent > 0 {
		fmt.Fprintf(&b, ", divergent blocks %d", c.Divergent)
	}
	b.WriteString("\n")
	for _, n := range c.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	for _, t := range r.Timeline {
		if t.Failover == nil && t.Rejoin == nil && t.CatchUp == "" {
			continue
		}
		fmt.Fprintf(&b, "timeline %s %s:", t.At, t.EventNode())
		if t.Failover != nil {
			fmt.Fprintf(&b, " fail-over %s", t.Failover.MaxGap)
		}
		if t.Rejoin != nil {
			fmt.Fprintf(&b, ", rejoin %s", t.Rejoin.MaxGap)
		}
		if t.CatchUp != "" {
			fmt.Fprintf(&b, ", catch-up %s", t.CatchUp)
		}
		fmt.Fprintf(&b, ", recovery %s\n", t.Recovery)
	}
	if rs := r.Resources; rs != nil && len(rs.Samples) > 0 {
		fmt.Fprintf(&b, "resources: CPU mean %.1f%% max %.1f%%, RSS max %s, GC pauses %s in %d cycles, goroutines max %d%s\n",
			rs.CPUPercentMean, rs.CPUPercentMax, fmtBytes(rs.RSSMaxBytes), FormatMicros(int64(rs.GCPauseTotalS*1e6)), rs.GCCycles, rs.GoroutinesMax, cpuPerTxText(rs))
	}
	for _, name := range slices.Sorted(maps.Keys(r.NodeResources)) {
		rs := r.NodeResources[name]
		fmt.Fprintf(&b, "%s process: CPU mean %.1f%% max %.1f%%, RSS max %s%s\n", name, rs.CPUPercentMean, rs.CPUPercentMax, fmtBytes(rs.RSSMaxBytes), cpuPerTxText(rs))
	}
	if c := r.Cost; c != nil {
		fmt.Fprintf(&b, "cost per committed tx: %s\n", costText(c))
		for _, n := range c.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
	}
	for _, p := range r.Profiles {
		if line := ComponentsText(p); line != "" {
			fmt.Fprintf(&b, "profile %s: %s (report.md: by part of the system)\n", p.Kind, line)
		}
	}
	if line := floorsText(r.Floors); line != "" {
		fmt.Fprintf(&b, "floors: %s\n", line)
	}
	if m := r.MaxRate; m != nil {
		fmt.Fprintf(&b, "max-rate: knee %.0f/s offered (%.1f tx/s achieved) with %s p99 ≤ %s over %d probes\n",
			m.KneeRate, m.KneeTPS, m.Stage, FormatMicros(m.BoundUs), len(m.Points))
	}
	for _, s := range r.SLO {
		fmt.Fprintf(&b, "slo %s: %s = %s (%s)\n", verdict(s.OK), s.Metric, s.Value, sloBound(s))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// summaryParts is how many parts of the system a CPU profile's summary line
// names, the largest first.
const summaryParts = 5

// ComponentsText is a CPU profile's line in the run's summary (and at the
// end of rustorium's --profile): its largest parts of the system with
// their µs a committed transaction, and what share of the CPU time it
// saw; "" for a profile with no parts.
func ComponentsText(p ProfileSummary) string {
	if len(p.Components) == 0 {
		return ""
	}
	cs := slices.Clone(p.Components)
	slices.SortStableFunc(cs, func(a, b ProfileComponent) int { return cmp.Compare(b.Value, a.Value) })
	var parts []string
	for _, c := range cs[:min(summaryParts, len(cs))] {
		part := fmt.Sprintf("%s %.1f%%", c.Name, c.Pct)
		if c.MicrosPerTx > 0 {
			part += fmt.Sprintf(" (%.0fµs a tx)", c.MicrosPerTx)
		}
		parts = append(parts, part)
	}
	line := strings.Join(parts, ", ")
	if len(cs) > summaryParts {
		line += fmt.Sprintf(", %d more parts", len(cs)-summaryParts)
	}
	if p.CoveredPct > 0 {
		line += fmt.Sprintf(" — saw %.0f%% of the CPU time", p.CoveredPct)
	}
	return line
}

// floorsText is the summary's account of the round-trip floors, idle and
// under the load, and of the accepted path against them (Floors.Ratios);
// "" without floors.
func floorsText(f Floors) string {
	var parts []string
	trip := func(name string, idle, loaded *Percentiles) {
		if idle == nil {
			return
		}
		s := fmt.Sprintf("%s p50 %s", name, FormatMicros(idle.P50))
		if loaded != nil {
			s += fmt.Sprintf(" (%s under the load)", FormatMicros(loaded.P50))
		}
		parts = append(parts, s)
	}
	trip("QUIC echo", f.QuicEcho, f.QuicEchoLoaded)
	trip("produce→ack", f.ProduceAck, f.ProduceAckLoaded)
	for _, k := range slices.Sorted(maps.Keys(f.Ratios)) {
		w, ok := strings.CutSuffix(k, ".accepted.p50/accepted_floor")
		if !ok {
			continue
		}
		s := fmt.Sprintf("%s accepted p50 %.2f× echo + produce→ack + 100µs", w, f.Ratios[k])
		if l, ok := f.Ratios[k+"_loaded"]; ok {
			s += fmt.Sprintf(" (%.2f× under the load)", l)
		}
		parts = append(parts, s)
	}
	if f.NodeBoundTPS > 0 {
		parts = append(parts, fmt.Sprintf("node bound %.0f tx/s", f.NodeBoundTPS))
	}
	return strings.Join(parts, "; ")
}

// writeTable writes rows as an aligned table: the first left columns
// left-aligned, the rest right-aligned, two spaces apart.
func writeTable(b *strings.Builder, rows [][]string, left int) {
	var widths []int
	for _, row := range rows {
		for i, cell := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	for _, row := range rows {
		var line strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i > 0 {
				line.WriteString("  ")
			}
			if i < left {
				line.WriteString(cell + pad)
			} else {
				line.WriteString(pad + cell)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
}

// cpuPerTxText is ", CPU per committed tx Nµs", or "" when unknown.
func cpuPerTxText(rs *Resources) string {
	if rs.CPUMicrosPerTx <= 0 {
		return ""
	}
	return fmt.Sprintf(", CPU per committed tx %.0fµs", rs.CPUMicrosPerTx)
}
