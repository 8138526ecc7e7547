package scenarios

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/tx"
	"github.com/rustorium/rustorium/reports"
)

// Bounds checked by Validate. The node's own bounds are used where it has
// them: cluster.shards up to ordering.MaxShards, value_size up to
// tx.MaxValueSize.
const (
	// MaxNodes bounds cluster.nodes for rustorium run (every node is a
	// process or a set of goroutines on this machine).
	MaxNodes = 64
	// MaxSimNodes bounds cluster.nodes for rustorium simulate
	// (LoadSimulation, ValidateSimulation) and sweep.nodes.
	MaxSimNodes = 1024
	// MaxCoresPerNode bounds cluster.cores_per_node (simulations only).
	MaxCoresPerNode = 1024
	// MaxBrokers bounds cluster.brokers (simulations only).
	MaxBrokers  = 64
	MaxClients  = 100_000
	MaxAccounts = 1 << 30
)

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// validator collects problems with their paths.
type validator struct {
	s        *Scenario
	errs     []*Error
	maxNodes int // cluster.nodes' bound: MaxNodes, or MaxSimNodes for a simulation
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.s.file, Line: v.s.line(path), Field: path, Msg: fmt.Sprintf(format, args...), Err: ErrInvalid})
}

// line finds the line of path or of its nearest ancestor.
func (s *Scenario) line(path string) int { return LineOf(s.lines, path) }

// LineOf returns the line of a field path in lines (as DecodeStrict
// returns them), or of its nearest ancestor that has one; 0 if none has.
func LineOf(lines map[string]int, path string) int {
	for path != "" {
		if l, ok := lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// File returns the file name the scenario was loaded from, if any.
func (s *Scenario) File() string { return s.file }

// Validate checks the semantics of a defaulted scenario (call EnsureDefaults
// first): sizes in range, exactly one load mode per workload, endpoints and
// nodes that exist, SLO metrics that can be measured. It returns nil or the
// problems as *Error values (joined with errors.Join when several), in line
// order.
//
// cluster.nodes is bounded by MaxNodes (a run's); ValidateSimulation
// allows up to MaxSimNodes.
func (s *Scenario) Validate() error { return s.validate(MaxNodes) }

// ValidateSimulation is Validate for rustorium simulate: cluster.nodes may
// be up to MaxSimNodes.
func (s *Scenario) ValidateSimulation() error { return s.validate(MaxSimNodes) }

func (s *Scenario) validate(maxNodes int) error {
	v := &validator{s: s, maxNodes: maxNodes}
	if !nameRE.MatchString(s.Name) {
		v.add("name", "%q is not a valid name (letters, digits, '.', '_', '-'; at most 64)", s.Name)
	}
	if s.Duration <= 0 {
		v.add("duration", "must be > 0")
	}
	v.givenZeros()
	v.cluster()
	v.sweep()
	v.simulation()
	v.network("network", &s.Network)
	v.workloads()
	v.timeline()
	v.slos()
	return v.result()
}

func (v *validator) result() error {
	if len(v.errs) == 0 {
		return nil
	}
	sort.SliceStable(v.errs, func(i, j int) bool { return v.errs[i].Line < v.errs[j].Line })
	if len(v.errs) == 1 {
		return v.errs[0]
	}
	errs := make([]error, len(v.errs))
	for i, e := range v.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// givenZeros refuses the zeros a file gives to fields whose zero means
// nothing and that have no range to exclude it (EnsureDefaults keeps a
// given zero; left out, the field takes its default).
func (v *validator) givenZeros() {
	s := v.s
	if s.Seed == 0 && !s.unset("seed") {
		v.add("seed", "0 is not a seed here: give another, or leave it out for %d", DefaultSeed)
	}
	if len(s.Report.Formats) == 0 && !s.unset("report.formats") {
		v.add("report.formats", "at least one format (leave it out for all of them)")
	}
}

func (v *validator) cluster() {
	c := &v.s.Cluster
	switch {
	case c.Nodes > MaxNodes && c.Nodes <= MaxSimNodes && v.maxNodes == MaxNodes:
		v.add("cluster.nodes", "%d is out of range (1..%d) for a run; rustorium simulate takes up to %d", c.Nodes, MaxNodes, MaxSimNodes)
	case c.Nodes < 1 || c.Nodes > v.maxNodes:
		v.add("cluster.nodes", "%d is out of range (1..%d)", c.Nodes, v.maxNodes)
	}
	if c.Shards < 1 || c.Shards > ordering.MaxShards {
		v.add("cluster.shards", "%d is out of range (1..%d)", c.Shards, ordering.MaxShards)
	}
	if c.Nodes >= 1 && (c.Quorum < 1 || c.Quorum > c.Nodes) {
		v.add("cluster.quorum", "%d is out of range (1..%d nodes)", c.Quorum, c.Nodes)
	}
	if (c.CoresPerNode < 1 && !v.s.unset("cluster.cores_per_node")) || c.CoresPerNode < 0 || c.CoresPerNode > MaxCoresPerNode {
		v.add("cluster.cores_per_node", "%d is out of range (1..%d)", c.CoresPerNode, MaxCoresPerNode)
	}
	if (c.Brokers < 1 && !v.s.unset("cluster.brokers")) || c.Brokers < 0 || c.Brokers > MaxBrokers {
		v.add("cluster.brokers", "%d is out of range (1..%d)", c.Brokers, MaxBrokers)
	}
	if c.Block.MaxTxs < 1 {
		v.add("cluster.block.max_txs", "must be ≥ 1")
	}
	if c.Block.MaxBytes < 1 || c.Block.MaxBytes > 64<<20 {
		v.add("cluster.block.max_bytes", "%d is out of range (1..%d)", c.Block.MaxBytes, 64<<20)
	}
	if c.Block.MaxWait <= 0 {
		v.add("cluster.block.max_wait", "must be > 0")
	}
	if c.Leadership.SessionTimeout <= 0 {
		v.add("cluster.leadership.session_timeout", "must be > 0")
	}
	if c.Leadership.TransactionTimeout <= 0 {
		v.add("cluster.leadership.transaction_timeout", "must be > 0")
	}
}

// endpoint checks a link or partition endpoint.
func (v *validator) endpoint(path, name string, wildcard bool) bool {
	if name == EndpointClients || v.s.Cluster.HasNode(name) || (wildcard && name == EndpointAny) {
		return true
	}
	want := fmt.Sprintf("clients or node-1..node-%d", v.s.Cluster.Nodes)
	if wildcard {
		want += " or *"
	}
	if name == "" {
		v.add(path, "required (%s)", want)
	} else {
		v.add(path, "%q is not an endpoint (want %s)", name, want)
	}
	return false
}

func (v *validator) network(path string, n *Network) {
	if n.Default != nil {
		v.impairment(path+".default", n.Default)
	}
	if n.Broker != nil {
		v.impairment(path+".broker", n.Broker)
	}
	for i := range n.Links {
		l := &n.Links[i]
		p := fmt.Sprintf("%s.links[%d]", path, i)
		okFrom := v.endpoint(p+".from", l.From, true)
		okTo := v.endpoint(p+".to", l.To, true)
		if okFrom && okTo && l.From == l.To && l.From != EndpointAny {
			v.add(p, "from and to are both %q", l.From)
		}
		v.impairment(p, &l.Impairment)
	}
}

// impairment checks an impairment as written: with netem's rules (the
// emulator applies the same), and that no field is given that has no
// effect without another.
func (v *validator) impairment(path string, i *Impairment) {
	if i.Distribution != "" && i.Jitter == 0 {
		v.add(path+".distribution", "has no effect without jitter")
	}
	if i.Correlation != 0 && i.Jitter == 0 && i.Loss == 0 {
		v.add(path+".correlation", "has no effect without jitter or loss")
	}
	if i.LossModel != "" && i.Loss == 0 {
		v.add(path+".loss_model", "has no effect without loss")
	}
	if i.LossBurst != 0 && i.LossModel != LossGilbertElliott {
		v.add(path+".loss_burst", "needs loss_model: gilbert-elliott")
	}
	if i.ReorderGap > 0 && i.Reorder == 0 {
		v.add(path+".reorder_gap", "needs reorder")
	}
	if i.Queue > 0 && i.Rate == 0 {
		v.add(path+".queue", "needs rate")
	}
	if field, msg, ok := netemProblem(*i); !ok {
		v.add(joinPath(path, field), "%s", msg)
	}
}

// paths checks, with netem's rules, the impairment of every path between
// the clients and the nodes as the emulator sets it from n (the default
// with the matching links laid over it): written impairments that are each
// valid may not be together. Problems are filed at path, the network
// section or timeline event that puts n in force.
func (v *validator) paths(path string, n Network) {
	eps := append([]string{EndpointClients}, v.s.Cluster.NodeNames()...)
	for _, a := range eps {
		for _, b := range eps {
			if a == b {
				continue
			}
			if field, msg, ok := netemProblem(n.Path(a, b)); !ok {
				v.add(path, "the path %s→%s (default and links together): %s: %s", a, b, field, msg)
				return
			}
		}
	}
}

func (v *validator) workloads() {
	s := v.s
	if len(s.Workload) == 0 {
		v.add("workload", "at least one workload is required")
	}
	names := map[string]int{}
	for i := range s.Workload {
		w := &s.Workload[i]
		p := fmt.Sprintf("workload[%d]", i)
		if !reports.IsWorkloadName(w.Name) {
			v.add(p+".name", "%q is not a valid workload name (letters, digits, '_', '-'; at most 64)", w.Name)
		}
		if j, dup := names[w.Name]; dup {
			v.add(p+".name", "%q is already the name of workload[%d]", w.Name, j)
		}
		names[w.Name] = i
		if reports.IsReservedName(w.Name) {
			v.add(p+".name", "%q is reserved for SLO metric names", w.Name)
		}
		if w.Kind == "" {
			v.add(p+".kind", "required (transfer, put, get or query)")
		}
		if w.Accounts < 1 || w.Accounts > MaxAccounts {
			v.add(p+".accounts", "%d is out of range (1..%d)", w.Accounts, MaxAccounts)
		}
		if w.ValueSize < 1 || w.ValueSize > tx.MaxValueSize {
			v.add(p+".value_size", "%d is out of range (1..%d bytes; the node refuses larger values)", w.ValueSize, tx.MaxValueSize)
		}
		if w.Timeout <= 0 {
			v.add(p+".timeout", "must be > 0")
		}
		v.loadMode(p, w)
	}
}

// loadMode checks the load mode of workload w at path p: exactly one, and
// its fields.
func (v *validator) loadMode(p string, w *Workload) {
	modes := w.Modes()
	switch len(modes) {
	case 0:
		v.add(p, "no load mode: give one of rate, ramp, clients, trace or maxrate")
	case 1:
	default:
		ms := make([]string, len(modes))
		for i, m := range modes {
			ms[i] = string(m)
		}
		v.add(p+"."+ms[1], "conflicts with %s: give exactly one of rate, ramp, clients, trace or maxrate", ms[0])
	}
	if w.Rate < 0 {
		v.add(p+".rate", "must be > 0")
	}
	if r := w.Ramp; r != nil {
		if r.To <= 0 {
			v.add(p+".ramp.to", "must be > 0/s")
		}
		if r.Over <= 0 {
			v.add(p+".ramp.over", "must be > 0")
		}
	}
	if w.Clients < 0 || w.Clients > MaxClients {
		v.add(p+".clients", "%d is out of range (1..%d)", w.Clients, MaxClients)
	}
	if w.Think != 0 && w.Clients == 0 {
		v.add(p+".think", "only applies to closed-loop clients")
	}
	if w.Arrival != "" && w.Rate == 0 && w.Ramp == nil {
		v.add(p+".arrival", "only applies to rate and ramp")
	}
	if m := w.MaxRate; m != nil {
		if m.P99 <= 0 {
			v.add(p+".maxrate.p99", "required, > 0")
		}
		if m.From <= 0 {
			v.add(p+".maxrate.from", "must be > 0/s")
		}
		if m.To < m.From {
			v.add(p+".maxrate.to", "%s is below from (%s)", m.To, m.From)
		}
		if m.Step <= 0 {
			v.add(p+".maxrate.step", "must be > 0")
		}
		if m.Precision <= 0 || m.Precision >= 100 {
			v.add(p+".maxrate.precision", "must be between 0%% and 100%%")
		}
	}
}

func (v *validator) timeline() {
	s := v.s
	for i := range s.Timeline {
		e := &s.Timeline[i]
		p := fmt.Sprintf("timeline[%d]", i)
		if e.At >= s.Duration {
			v.add(p+".at", "%s is not before the end of measuring (duration %s)", e.At, s.Duration)
		}
		var actions []string
		if e.Network != nil {
			actions = append(actions, "network")
			v.network(p+".network", e.Network)
		}
		if e.Kill != "" {
			actions = append(actions, "kill")
			if e.Kill != BrokerTarget {
				v.target(p+".kill", e.Kill)
			}
		}
		if len(e.Partition) > 0 {
			actions = append(actions, "partition")
			v.partition(p+".partition", e.Partition)
		}
		if e.Pause != "" {
			actions = append(actions, "pause")
			v.target(p+".pause", e.Pause)
			if e.For <= 0 {
				v.add(p+".for", "required with pause, > 0")
			}
		}
		if e.Flood != "" {
			actions = append(actions, "flood")
			v.target(p+".flood", e.Flood)
			if e.For <= 0 {
				v.add(p+".for", "required with flood, > 0")
			}
		}
		if e.DiskFull != "" {
			actions = append(actions, "disk_full")
			v.target(p+".disk_full", e.DiskFull)
			if e.For <= 0 {
				v.add(p+".for", "required with disk_full, > 0")
			}
		}
		if e.Conns < 0 || e.Conns > MaxFloodConns {
			v.add(p+".conns", "%d is not in 1..%d", e.Conns, MaxFloodConns)
		}
		if e.Conns != 0 && e.Flood == "" {
			v.add(p+".conns", "only applies to flood")
		}
		switch len(actions) {
		case 0:
			v.add(p, "no action: give one of network, kill, partition, pause, flood or disk_full")
		case 1:
		default:
			v.add(p+"."+actions[1], "conflicts with %s: give one action per event", actions[0])
		}
		if e.RestartAfter != 0 && e.Kill == "" {
			v.add(p+".restart_after", "only applies to kill")
		}
		if e.HealAfter != 0 && len(e.Partition) == 0 {
			v.add(p+".heal_after", "only applies to partition")
		}
		if e.For != 0 && e.Pause == "" && e.Flood == "" && e.DiskFull == "" {
			v.add(p+".for", "only applies to pause, flood and disk_full")
		}
	}
	v.networksInForce()
}

// networksInForce checks the paths of the network at the start and after
// each timeline network change, once every written impairment is valid.
func (v *validator) networksInForce() {
	for _, e := range v.errs {
		if strings.HasPrefix(e.Field, "network") || strings.Contains(e.Field, ".network") {
			return
		}
	}
	v.paths("network", v.s.Network)
	for i, e := range v.s.Timeline {
		if e.Network != nil {
			v.paths(fmt.Sprintf("timeline[%d].network", i), v.s.NetworkAt(e.At))
		}
	}
}

// target checks the node a kill or pause acts on: node-N, or leader(S).
func (v *validator) target(path, name string) {
	c := v.s.Cluster
	if shard, ok := LeaderTarget(name); ok {
		if shard >= c.Shards {
			v.add(path, "%q names shard %d, but there are %d shards (leader(0)..leader(%d))", name, shard, c.Shards, c.Shards-1)
		}
		return
	}
	if !c.HasNode(name) {
		v.add(path, "%q is not a node (want node-1..node-%d, or leader(S) for the leader of shard S)", name, c.Nodes)
	}
}

func (v *validator) partition(path string, groups [][]string) {
	if len(groups) < 2 {
		v.add(path, "needs at least two groups, such as [[node-1], [node-2, node-3]]")
	}
	seen := map[string]bool{}
	for gi, g := range groups {
		if len(g) == 0 {
			v.add(fmt.Sprintf("%s[%d]", path, gi), "empty group")
		}
		for ei, name := range g {
			ep := fmt.Sprintf("%s[%d][%d]", path, gi, ei)
			if !v.endpoint(ep, name, false) {
				continue
			}
			if seen[name] {
				v.add(ep, "%q is in two groups", name)
			}
			seen[name] = true
		}
	}
}

func (v *validator) slos() {
	s := v.s
	workloads := map[string]bool{}
	for _, w := range s.Workload {
		workloads[w.Name] = true
	}
	for i, slo := range s.SLO {
		p := fmt.Sprintf("slo[%d]", i)
		m, err := reports.ParseMetric(slo.Metric)
		if err != nil {
			v.add(p+".metric", "%v", err)
			continue
		}
		if m.Workload != "" && !workloads[m.Workload] {
			v.add(p+".metric", "%q names no workload", m.Workload)
		}
		if slo.Max.IsZero() && slo.Min.IsZero() {
			v.add(p, "give max or min")
		}
		if !slo.Max.IsZero() {
			if _, err := slo.Max.Value(m.Kind); err != nil {
				v.add(p+".max", "%v", err)
			}
		}
		if !slo.Min.IsZero() {
			if _, err := slo.Min.Value(m.Kind); err != nil {
				v.add(p+".min", "%v", err)
			}
		}
	}
}

// Value returns the threshold in the unit of metrics of kind k: microseconds
// for latencies, a count, or events per second.
func (t Threshold) Value(k reports.MetricKind) (float64, error) {
	s := string(t)
	switch k {
	case reports.MetricLatency:
		var d Duration
		if err := d.UnmarshalText([]byte(s)); err != nil {
			return 0, err
		}
		return float64(d) / 1e3, nil
	case reports.MetricCount:
		n, err := strconv.ParseUint(s, 10, 63)
		if err != nil {
			return 0, fmt.Errorf("%q is not a count (want a whole number ≥ 0)", s)
		}
		return float64(n), nil
	case reports.MetricRate:
		var r Rate
		if err := r.UnmarshalText([]byte(s)); err != nil {
			return 0, err
		}
		return float64(r), nil
	}
	return 0, fmt.Errorf("unknown metric kind %d", k)
}

// bound returns t as a bound of a metric of kind k (the zero Bound when t
// is unset).
func (t Threshold) bound(k reports.MetricKind) (reports.Bound, error) {
	if t.IsZero() {
		return reports.Bound{}, nil
	}
	v, err := t.Value(k)
	if err != nil {
		return reports.Bound{}, err
	}
	return reports.Bound{Text: string(t), Value: v}, nil
}

// Bounds returns the SLO as reports evaluates it: its metric and its
// thresholds with their values in the metric's unit.
func (slo SLO) Bounds() (reports.SLO, error) {
	m, err := reports.ParseMetric(slo.Metric)
	if err != nil {
		return reports.SLO{}, err
	}
	out := reports.SLO{Metric: slo.Metric}
	if out.Max, err = slo.Max.bound(m.Kind); err != nil {
		return reports.SLO{}, err
	}
	if out.Min, err = slo.Min.bound(m.Kind); err != nil {
		return reports.SLO{}, err
	}
	return out, nil
}

// ReportSLOs returns the scenario's SLOs as reports evaluates them
// (Result.CheckSLOs). Validate has checked them; an error here means the
// scenario was not validated.
func (s *Scenario) ReportSLOs() ([]reports.SLO, error) {
	out := make([]reports.SLO, 0, len(s.SLO))
	for i, slo := range s.SLO {
		r, err := slo.Bounds()
		if err != nil {
			return nil, fmt.Errorf("scenarios: slo[%d]: %w", i, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func (v *validator) sweep() {
	sw := v.s.Sweep
	if sw == nil {
		return
	}
	lists := 0
	for _, n := range []int{len(sw.Nodes), len(sw.Shards), len(sw.Cores), len(sw.RTT)} {
		if n > 0 {
			lists++
		}
		if n > MaxSweepValues {
			v.add("sweep", "%d values, at most %d", n, MaxSweepValues)
		}
	}
	if lists != 1 {
		v.add("sweep", "exactly one of nodes, shards, cores or rtt (with at least one value)")
	}
	for i, n := range sw.Nodes {
		if n < 1 || n > MaxSimNodes {
			v.add(fmt.Sprintf("sweep.nodes[%d]", i), "%d is out of range (1..%d)", n, MaxSimNodes)
		}
	}
	for i, n := range sw.Shards {
		if n < 1 || n > ordering.MaxShards {
			v.add(fmt.Sprintf("sweep.shards[%d]", i), "%d is out of range (1..%d)", n, ordering.MaxShards)
		}
	}
	for i, n := range sw.Cores {
		if n < 1 || n > MaxCoresPerNode {
			v.add(fmt.Sprintf("sweep.cores[%d]", i), "%d is out of range (1..%d)", n, MaxCoresPerNode)
		}
	}
	for i, d := range sw.RTT {
		if d < 0 || d.Std() > 48*time.Hour {
			v.add(fmt.Sprintf("sweep.rtt[%d]", i), "%v is out of range (0..48h)", d)
		}
	}
}

func (v *validator) simulation() {
	sm := v.s.Simulation
	if sm == nil {
		return
	}
	if sm.Window < 0 || sm.Window > MaxCohortWindow {
		v.add("simulation.window", "%v is out of range (0s..%v; 0s: automatic)", sm.Window, MaxCohortWindow)
	}
	if sm.Mode == SimCohort {
		for i, w := range v.s.Workload {
			if m := w.Mode(); m != ModeRate && m != ModeRamp && m != ModeMaxRate {
				v.add(fmt.Sprintf("workload[%d]", i), "simulation.mode cohort simulates open loops only (rate, ramp, maxrate), not %s", m)
			}
		}
	}
}
