package reports

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/rustorium/rustorium/node/tracing"
)

// Traces is result.json's traces: the sampled transactions' traces, as
// written to traces.json, summarised. The p50 and p99 transactions are
// those at the 50th and 99th percentile of the end-to-end time (the root
// span's) among the committed traces; their breakdown is the time each
// span spent on the trace's critical path, by span name.
type Traces struct {
	File         string          `json:"file"`                    // traces.json
	Sample       float64         `json:"sample"`                  // the share of transactions traced
	Count        int             `json:"traces"`                  // traces written: the measured phase's sampled sends
	Complete     int             `json:"complete"`                // of them: committed, with spans of at least one node
	Nodes        []string        `json:"nodes,omitempty"`         // the nodes whose spans they hold
	DroppedSpans int64           `json:"dropped_spans,omitempty"` // spans over the collector's bound, not written
	P50          *TraceBreakdown `json:"p50,omitempty"`
	P99          *TraceBreakdown `json:"p99,omitempty"`
	// Spans are each span name's durations over every copy of it in the
	// traces (a block's spans once per sampled transaction it holds, the
	// replica spans once per node), in pipeline order.
	Spans []SpanStat `json:"spans,omitempty"`

	// Slowest are the waterfalls of the slowest committed traces, for
	// report.html (not in result.json: traces.json holds them whole).
	Slowest []Waterfall `json:"-"`
}

// SpanStat is one span name's durations: over every copy of it in a real
// run's traces (Traces.Spans), or over the transactions of a simulation's
// measured phase for the steps its model times the same way
// (Simulation.Spans), so that make validate-sim can show where a model's
// latency differs from the real one's.
type SpanStat struct {
	Span  string `json:"span"`
	Count int    `json:"count"`
	P50Us int64  `json:"p50_us"`
	P99Us int64  `json:"p99_us"`
}

// SpanStats summarises durations (ns) by span name, in pipeline order.
// The percentiles are nearest-rank, as the traces' p50 and p99
// transactions are picked.
func SpanStats(durations map[string][]int64) []SpanStat {
	var out []SpanStat
	for _, name := range spanOrder(durations) {
		d := slices.Clone(durations[name])
		if len(d) == 0 {
			continue
		}
		slices.Sort(d)
		at := func(q float64) int64 {
			i := int(float64(len(d))*q+0.999999) - 1
			return d[min(max(i, 0), len(d)-1)] / 1000
		}
		out = append(out, SpanStat{Span: name, Count: len(d), P50Us: at(0.50), P99Us: at(0.99)})
	}
	return out
}

// TraceBreakdown is where one transaction's time went.
type TraceBreakdown struct {
	TraceID string      `json:"trace_id"`
	TotalUs int64       `json:"total_us"` // the root span: send to the client's last step
	Stages  []StageTime `json:"stages"`   // critical-path time by span name, in pipeline order
}

// StageTime is a span name's time on a trace's critical path: its own
// time, not covered by a child span on the path.
type StageTime struct {
	Stage string `json:"stage"`
	Us    int64  `json:"us"`
}

// Waterfall is one trace drawn as a waterfall.
type Waterfall struct {
	TraceID  string
	Workload string
	TotalUs  int64
	Spans    []WaterfallSpan // depth-first, children by start time
}

// WaterfallSpan is one span of a waterfall.
type WaterfallSpan struct {
	Name     string
	Node     string // the node that recorded it, or "client"
	Depth    int
	StartUs  int64 // from the root's start (negative: before it)
	DurUs    int64
	Critical bool // on the critical path
	Detail   string
	Error    string
}

// slowestWaterfalls is how many of the slowest traces report.html draws.
const slowestWaterfalls = 5

// traceTree is one trace's spans with their tree and critical path.
type traceTree struct {
	spans    []tracing.FlatSpan
	start    []int64 // unix ns
	end      []int64
	kids     [][]int
	root     int
	crit     []bool
	self     map[string]int64 // critical-path time by span name
	workload string
	failed   bool
	nodes    []string
}

// maxTraceSpans bounds the spans of a trace that SummarizeTraces follows.
// A transaction's trace has a few dozen (about 20 a node in a cluster,
// more with resends); one over the bound is malformed — traces.json is
// input to simulate --against — and gets no tree: its spans count in the
// span statistics only. Unbounded, a chain of parents recursed as deep as
// the trace is long, and a span with k children cost k² to walk.
const maxTraceSpans = 1024

// newTraceTree builds the tree of a trace; false without a root span, or
// over maxTraceSpans spans.
func newTraceTree(req *tracing.Request) (*traceTree, bool) {
	t := &traceTree{spans: req.Flatten(), root: -1, self: map[string]int64{}}
	n := len(t.spans)
	t.start, t.end = make([]int64, n), make([]int64, n)
	for i := range t.spans {
		t.start[i], t.end[i] = t.spans[i].Start(), t.spans[i].End()
	}
	if n > maxTraceSpans {
		return t, false
	}
	t.kids, t.crit = make([][]int, n), make([]bool, n)
	byID := map[string]int{}
	for i := range t.spans {
		s := &t.spans[i]
		byID[s.SpanID] = i
		if s.Name == string(tracing.SpanTx) && s.ParentSpanID == "" {
			t.root = i
		}
		if s.Instance != "" && !slices.Contains(t.nodes, s.Instance) {
			t.nodes = append(t.nodes, s.Instance)
		}
	}
	if t.root < 0 {
		return t, false
	}
	for i := range t.spans {
		if i == t.root {
			continue
		}
		p, ok := byID[t.spans[i].ParentSpanID]
		if !ok || p == i {
			p = t.root // its parent was not recorded: hang it under the root
		}
		t.kids[p] = append(t.kids[p], i)
	}
	r := &t.spans[t.root]
	if v, ok := r.Attr(tracing.AttrWorkload); ok {
		t.workload = v.String()
	}
	t.failed = r.Status != nil && r.Status.Code == tracing.StatusError
	t.walk(t.root, t.start[t.root], t.end[t.root])
	return t, true
}

// walk finds the critical path of span i within [lo, hi]. Going back from
// hi, the child running at the cursor that ran latest (its end, clipped to
// the cursor) is on it, and then, in turn, its own children; the cursor
// moves to its start. The time no child covers is i's own. A child that
// overlaps the cursor counts: a replica reads a block while its leader's
// Kafka transaction is still returning, and the wait is the transaction's.
//
// A span that ends before it starts (a malformed traces.json: simulate
// --against reads a real run's) is on no path: taken, it would count its
// parent's time twice.
//
// Replica spans run on every node at once: once the path is on a node's
// replica spans (or its receipt), it stays on that node's, so a step of
// another node running at the same time is not taken for a cause. Its
// quorum wait is where the other nodes' time shows.
func (t *traceTree) walk(i int, lo, hi int64) {
	t.crit[i] = true
	kids := slices.Clone(t.kids[i])
	cursor, self, lane := hi, int64(0), ""
	for cursor > lo && len(kids) > 0 {
		best, bestEnd := -1, int64(0)
		for j, k := range kids {
			if t.start[k] >= cursor || t.end[k] <= lo || t.end[k] < t.start[k] {
				continue // not running at the cursor, or (a malformed span) ending before it starts
			}
			if l := t.lane(k); l != "" && lane != "" && l != lane {
				continue
			}
			end := min(t.end[k], cursor)
			if best < 0 || end > bestEnd || end == bestEnd && t.end[k] < t.end[kids[best]] {
				best, bestEnd = j, end
			}
		}
		if best < 0 {
			break
		}
		k := kids[best]
		kids = slices.Delete(kids, best, best+1)
		if l := t.lane(k); l != "" {
			lane = l
		}
		self += cursor - bestEnd
		from := max(t.start[k], lo)
		t.walk(k, from, bestEnd)
		cursor = from
	}
	self += max(cursor-lo, 0)
	t.self[t.spans[i].Name] += self
}

// lane is the node whose replica span (or receipt) k is, or "".
func (t *traceTree) lane(k int) string {
	s := &t.spans[k]
	if strings.HasPrefix(s.Name, "replica.") || s.Name == string(tracing.SpanReceipt) {
		return s.Instance
	}
	return ""
}

// committed reports whether the trace got its commit receipt.
func (t *traceTree) committed() bool {
	if t.failed {
		return false
	}
	for _, k := range t.kids[t.root] {
		if t.spans[k].Name == string(tracing.SpanClientCommit) {
			return true
		}
	}
	return false
}

func (t *traceTree) total() int64 { return t.end[t.root] - t.start[t.root] }

func (t *traceTree) breakdown() *TraceBreakdown {
	b := &TraceBreakdown{TraceID: t.spans[t.root].TraceID, TotalUs: t.total() / 1000}
	for _, name := range spanOrder(t.self) {
		if us := t.self[name] / 1000; us > 0 || t.self[name] > 0 {
			b.Stages = append(b.Stages, StageTime{Stage: name, Us: us})
		}
	}
	return b
}

// spanOrder lists the names of m in pipeline order, unknown ones after,
// sorted.
func spanOrder[V any](m map[string]V) []string {
	var out, extra []string
	known := map[string]bool{}
	for _, s := range tracing.Stages() {
		known[string(s)] = true
		if _, ok := m[string(s)]; ok {
			out = append(out, string(s))
		}
	}
	for n := range m {
		if !known[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}

// waterfall draws the trace.
func (t *traceTree) waterfall() Waterfall {
	w := Waterfall{TraceID: t.spans[t.root].TraceID, Workload: t.workload, TotalUs: t.total() / 1000}
	keys := map[string]string{} // key prefix → node
	for _, s := range t.spans {
		if s.NodeKey != "" && s.Instance != "" {
			keys[s.NodeKey[:min(len(s.NodeKey), tracing.KeyPrefixHexLen)]] = s.Instance
		}
	}
	t0 := t.start[t.root]
	var visit func(i, depth int)
	visit = func(i, depth int) {
		s := &t.spans[i]
		node := s.Instance
		if node == "" {
			node = "client"
		}
		ws := WaterfallSpan{Name: s.Name, Node: node, Depth: depth, StartUs: (t.start[i] - t0) / 1000,
			DurUs: (t.end[i] - t.start[i]) / 1000, Critical: t.crit[i], Detail: spanDetail(s, keys)}
		if s.Status != nil && s.Status.Code == tracing.StatusError {
			ws.Error = s.Status.Message
			if ws.Error == "" {
				ws.Error = "failed"
			}
		}
		w.Spans = append(w.Spans, ws)
		kids := slices.Clone(t.kids[i])
		slices.SortStableFunc(kids, func(a, b int) int { return cmp.Compare(t.start[a], t.start[b]) })
		for _, k := range kids {
			visit(k, depth+1)
		}
	}
	visit(t.root, 0)
	return w
}

// spanDetail is what a waterfall row says of a span's attributes.
func spanDetail(s *tracing.FlatSpan, keys map[string]string) string {
	var parts []string
	get := func(k string) (tracing.AnyValue, bool) {
		for _, kv := range s.Attributes {
			if kv.Key == k {
				return kv.Value, true
			}
		}
		return tracing.AnyValue{}, false
	}
	if v, ok := get(string(tracing.AttrBatch)); ok {
		parts = append(parts, "batch of "+v.String())
	}
	if v, ok := get(string(tracing.AttrShard)); ok {
		parts = append(parts, "shard "+v.String())
	}
	if v, ok := get(string(tracing.AttrHeight)); ok {
		parts = append(parts, "height "+v.String())
	}
	if v, ok := get(string(tracing.AttrBlockTxs)); ok {
		parts = append(parts, v.String()+" txs")
	}
	if v, ok := get(string(tracing.AttrBlockBytes)); ok {
		parts = append(parts, v.String()+" bytes")
	}
	if v, ok := get(string(tracing.AttrQuorumSigners)); ok {
		var names []string
		for _, k := range v.Strings() {
			if n, ok := keys[k]; ok {
				names = append(names, n)
			} else {
				names = append(names, k)
			}
		}
		parts = append(parts, "quorum: "+strings.Join(names, ", "))
	}
	if v, ok := get(string(tracing.AttrPublishCommit)); ok && v.String() == "false" {
		parts = append(parts, "aborted")
	}
	if v, ok := get(string(tracing.AttrResent)); ok {
		parts = append(parts, "resent "+v.String()+"×")
	}
	return strings.Join(parts, ", ")
}

// SummarizeTraces summarises traces.json's requests (one trace each) for
// result.json and the report: counts, the p50 and p99 transactions'
// breakdowns, and the slowest ones' waterfalls. A trace of more than
// maxTraceSpans (1024) spans is malformed: only its spans' statistics count.
func SummarizeTraces(reqs []tracing.Request) *Traces {
	out := &Traces{Count: len(reqs)}
	var done []*traceTree
	nodes := map[string]bool{}
	durations := map[string][]int64{}
	for i := range reqs {
		t, ok := newTraceTree(&reqs[i])
		for j := range t.spans {
			if d := t.end[j] - t.start[j]; d >= 0 {
				durations[t.spans[j].Name] = append(durations[t.spans[j].Name], d)
			}
		}
		if !ok {
			continue
		}
		for _, n := range t.nodes {
			nodes[n] = true
		}
		if t.committed() {
			if len(t.nodes) > 0 {
				out.Complete++
			}
			done = append(done, t)
		}
	}
	for n := range nodes {
		out.Nodes = append(out.Nodes, n)
	}
	sort.Strings(out.Nodes)
	out.Spans = SpanStats(durations)
	if len(done) == 0 {
		return out
	}
	slices.SortStableFunc(done, func(a, b *traceTree) int { return cmp.Compare(a.total(), b.total()) })
	at := func(q float64) *traceTree {
		i := int(float64(len(done))*q+0.999999) - 1
		return done[min(max(i, 0), len(done)-1)]
	}
	out.P50, out.P99 = at(0.50).breakdown(), at(0.99).breakdown()
	for i := len(done) - 1; i >= 0 && len(out.Slowest) < slowestWaterfalls; i-- {
		out.Slowest = append(out.Slowest, done[i].waterfall())
	}
	return out
}

// stageMeaning says what each span's critical-path time is, for the
// breakdown table.
var stageMeaning = map[string]string{
	string(tracing.SpanTx):             "client, between its steps",
	string(tracing.SpanClientSend):     "network and QUIC, to and from the node",
	string(tracing.SpanIngress):        "node: decoding, checks, answer",
	string(tracing.SpanSigVerify):      "node: ed25519 check (batched)",
	string(tracing.SpanProduce):        "node: append to the log, until acked",
	string(tracing.SpanAccept):         "node: accepted answer written",
	string(tracing.SpanClientCommit):   "waiting between the stages below: for the leader's next round, for the block to reach the replica",
	string(tracing.SpanLeaderPoll):     "leader: poll of the log",
	string(tracing.SpanLeaderInflight): "leader: waiting for its replica, 8 blocks ahead",
	string(tracing.SpanBlockCut):       "leader: block cut and executed",
	string(tracing.SpanPublish):        "leader: Kafka transaction",
	string(tracing.SpanReplicaQueue):   "replica: block polled, behind earlier blocks",
	string(tracing.SpanReplicaRead):    "replica: block's range read",
	string(tracing.SpanExecute):        "replica: execution",
	string(tracing.SpanMerkle):         "replica: Merkle update",
	string(tracing.SpanAttest):         "replica: attestation signed and sent",
	string(tracing.SpanQuorum):         "replica: waiting for the quorum",
	string(tracing.SpanCommit):         "replica: Pebble commit, proofs, views",
	string(tracing.SpanReceipt):        "node: receipt written",
	string(tracing.SpanProofVerify):    "client: Merkle proof check",
	string(tracing.SpanVisible):        "client: read back until visible",
}

// traceRow is a row of the breakdown table.
type traceRow struct{ Stage, What, P50, P50Pct, P99, P99Pct string }

// spanRow is a row of the spans table: a span name's durations over
// every copy of it.
type spanRow struct{ Span, Count, P50, P99 string }

// tracesView is the report's traces section.
type tracesView struct {
	Summary            string
	Rows               []traceRow
	Spans              []spanRow
	P50Total, P99Total string
	P50Trace, P99Trace string
	Waterfalls         []waterfallView
}

type waterfallView struct {
	Title string
	Rows  []waterfallRow
}

type waterfallRow struct {
	Name, Node, Start, Dur, Detail, Error string
	Indent                                int    // nesting depth
	Left, Width                           string // the bar's place and length, percent of the trace
	Critical                              bool
}

func newTracesView(t *Traces) *tracesView {
	if t == nil {
		return nil
	}
	v := &tracesView{Summary: fmt.Sprintf("%d traces in %s (the transactions sampled at %.4g%%), %d of them committed with node spans", t.Count, t.File, t.Sample*100, t.Complete)}
	if len(t.Nodes) > 0 {
		v.Summary += " (from " + strings.Join(t.Nodes, ", ") + ")"
	}
	v.Summary += "."
	if t.DroppedSpans > 0 {
		v.Summary += fmt.Sprintf(" %d spans over the collector's bound were dropped.", t.DroppedSpans)
	}
	if t.P50 != nil && t.P99 != nil {
		p50, p99 := map[string]int64{}, map[string]int64{}
		for _, s := range t.P50.Stages {
			p50[s.Stage] = s.Us
		}
		for _, s := range t.P99.Stages {
			p99[s.Stage] = s.Us
		}
		all := map[string]bool{}
		for k := range p50 {
			all[k] = true
		}
		for k := range p99 {
			all[k] = true
		}
		pct := func(us, total int64) string {
			if total <= 0 {
				return ""
			}
			return fmt.Sprintf("%.1f%%", 100*float64(us)/float64(total))
		}
		for _, st := range spanOrder(all) {
			v.Rows = append(v.Rows, traceRow{Stage: st, What: stageMeaning[st],
				P50: FormatMicros(p50[st]), P50Pct: pct(p50[st], t.P50.TotalUs), P99: FormatMicros(p99[st]), P99Pct: pct(p99[st], t.P99.TotalUs)})
		}
		v.P50Total, v.P99Total = FormatMicros(t.P50.TotalUs), FormatMicros(t.P99.TotalUs)
		v.P50Trace, v.P99Trace = t.P50.TraceID, t.P99.TraceID
	}
	for _, sp := range t.Spans {
		v.Spans = append(v.Spans, spanRow{Span: sp.Span, Count: strconv.Itoa(sp.Count), P50: FormatMicros(sp.P50Us), P99: FormatMicros(sp.P99Us)})
	}
	for _, w := range t.Slowest {
		wv := waterfallView{Title: fmt.Sprintf("%s, trace %s: %s", w.Workload, w.TraceID, FormatMicros(w.TotalUs))}
		total := float64(max(w.TotalUs, 1))
		for _, s := range w.Spans {
			left := min(max(float64(s.StartUs)/total*100, 0), 100)
			width := min(max(float64(s.DurUs)/total*100, 0.3), 100-left)
			wv.Rows = append(wv.Rows, waterfallRow{Name: s.Name, Node: s.Node, Start: FormatMicros(s.StartUs), Dur: FormatMicros(s.DurUs),
				Detail: s.Detail, Error: s.Error, Indent: s.Depth, Left: fmt.Sprintf("%.2f", left), Width: fmt.Sprintf("%.2f", width), Critical: s.Critical})
		}
		v.Waterfalls = append(v.Waterfalls, wv)
	}
	return v
}
