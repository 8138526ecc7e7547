package sim

import (
	"fmt"
	"time"

	"github.com/rustorium/rustorium/netem"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
	"github.com/rustorium/rustorium/sim/des"
)

// Cohort mode (scenario simulation.mode: cohort, or auto at and above
// scenarios.CohortAutoRate tx/s offered). An open loop's sends are grouped
// per window (simulation.window) and per node into cohorts: one txn
// carrying n transactions, their intended send times spread evenly over
// the window and their count per shard (from the real keys' ShardOf). A
// cohort moves through the same resources as a transaction, each cost
// multiplied by n and split over the cores; the broker appends each
// shard's part to its log, the leader polls and cuts them with the node's
// Cutter transaction by transaction, and blocks are executed, attested and
// committed by every node as in tx mode. Attestations are aggregated per
// block: each one's arrival at every peer is computed on its link without
// an event, and a node's quorum is the quorum-th earliest arrival (its own
// included). Latencies are recorded per transaction, each from its own
// intended time.
//
// Timeline events act as in tx mode. A message on a partitioned link is
// held until the heal (tripThen). A stopped node's cohorts that had not
// reached the log go to the next node when they find it stopped
// (cohortIngress); those that had fail over at once (cohortFailOver): the
// client sends them again to the next node, which answers from its stored
// receipts what it committed and the rest as it commits. A restarted node
// gets its peers' attestations of the blocks above what it committed
// again (cohortRejoin).

// Cohort sizing: the automatic window holds about cohortTarget sends per
// node, between minWindow and maxWindow.
const (
	cohortTarget = 100
	minWindow    = des.Millisecond
	maxWindow    = 20 * des.Millisecond
)

// cohortMode decides the simulation's mode: whether transactions move in
// cohorts, and the cohort window.
func cohortMode(sc *scenarios.Scenario) (bool, des.Time) {
	mode := scenarios.SimAuto
	var window des.Time
	if sc.Simulation != nil {
		if sc.Simulation.Mode != "" {
			mode = sc.Simulation.Mode
		}
		window = des.Time(sc.Simulation.Window)
	}
	offered := offeredRate(sc)
	switch mode {
	case scenarios.SimTx:
		return false, 0
	case scenarios.SimAuto:
		if offered < scenarios.CohortAutoRate || cohortRefuses(sc) != nil {
			return false, 0
		}
	}
	if window == 0 {
		window = minWindow
		if offered > 0 {
			window = des.Time(float64(sc.Cluster.Nodes*cohortTarget) / offered * float64(des.Second))
		}
		window = min(max(window, minWindow), maxWindow)
	}
	return true, window
}

// offeredRate is the open loops' total peak rate in tx/s (0 with a closed
// loop).
func offeredRate(sc *scenarios.Scenario) float64 {
	var r float64
	for _, w := range sc.Workload {
		switch w.Mode() {
		case scenarios.ModeRate:
			r += w.Rate.PerSecond()
		case scenarios.ModeRamp:
			r += max(w.Ramp.From.PerSecond(), w.Ramp.To.PerSecond())
		default:
			return 0
		}
	}
	return r
}

// cohortRefuses names what cohort mode does not model: closed loops.
func cohortRefuses(sc *scenarios.Scenario) error {
	for i, w := range sc.Workload {
		if m := w.Mode(); m != scenarios.ModeRate && m != scenarios.ModeRamp && m != scenarios.ModeMaxRate {
			return fmt.Errorf("%w: workload[%d] (%s): load mode %s in cohort mode (open loops only)", ErrUnsupported, i, w.Name, m)
		}
	}
	return nil
}

// ---- load ----

// cohortWindow forms the cohorts of the workload's sends intended in
// [from, from+window), one per node that gets any (the workload's round
// robin), and sends each at its sends' mean intended time. Sends beyond
// the open loop's in-flight bound are dropped and counted.
func (e *engine) cohortWindow(w *workload, from des.Time) {
	to := min(from+e.window, e.loadEnd)
	pending := e.pending[:0]
	byNode := e.byNode
	for {
		at := des.Time(w.pacer.At(w.next))
		if at >= to {
			break
		}
		w.next++
		if w.inflight >= maxInFlightSends {
			e.dropSend(w, at)
			w.keys.Next() // the key the send would have drawn
			continue
		}
		n := e.pickNode(w)
		if n == nil {
			e.keyShard(w) // the key the send would have drawn
			w.rec.Sent(e.wall(at), e.wall(at))
			w.rec.Error("accepted: node unreachable", e.wall(at), e.wall(at))
			continue
		}
		c := byNode[n.id]
		if c == nil {
			c = &txn{w: w, intended: at, node: n.id, size: w.size, perShard: make([]int32, len(e.shards))}
			byNode[n.id] = c
			pending = append(pending, c)
		}
		c.last = at
		c.n++
		c.perShard[e.keyShard(w)]++
		w.inflight++
		w.rec.Sent(e.wall(at), e.wall(at))
	}
	for _, c := range pending {
		byNode[c.node] = nil
		c.owed = c.n
		if e.stops {
			e.track(e.nodes[c.node], c)
		}
		mid := c.intended + (c.last-c.intended)/2
		c.sent = mid
		e.s.At(mid, func() { e.cohortSend(c) })
	}
	e.pending = pending[:0]
	if to < e.loadEnd {
		e.s.At(to, func() { e.cohortWindow(w, to) })
	}
}

// dropSend counts a send the in-flight bound stopped: added to the
// recorder's snapshot at the end (as many Sent and Error calls would).
func (e *engine) dropSend(w *workload, at des.Time) {
	if at < e.measureStart {
		w.dropDiscarded++
		return
	}
	if at < e.measureEnd {
		w.dropped++
	}
	iv := int((at - e.measureStart) / des.Second) // the recorder's interval
	for len(w.dropsByInterval) <= iv {
		w.dropsByInterval = append(w.dropsByInterval, 0)
	}
	w.dropsByInterval[iv]++
}

// addDrops adds the dropped sends to the snapshot: counted as sent and as
// "dropped" errors, with no schedule lag.
func (e *engine) addDrops(snap *reports.Snapshot) {
	for _, w := range e.wls {
		ws := snap.Workload(w.sc.Name)
		if ws == nil {
			continue
		}
		ws.Discarded += w.dropDiscarded
		var total int64
		for iv, n := range w.dropsByInterval {
			if n == 0 {
				continue
			}
			total += n
			for len(ws.Intervals) <= iv {
				ws.Intervals = append(ws.Intervals, reports.IntervalSnapshot{Start: time.Duration(len(ws.Intervals)) * snap.Interval})
			}
			ws.Intervals[iv].Sent += n
			ws.Intervals[iv].Errors += n
		}
		if total == 0 {
			continue
		}
		ws.Sent += total
		ws.Errors += total
		if ws.ErrorsByKind == nil {
			ws.ErrorsByKind = map[string]int64{}
		}
		ws.ErrorsByKind["dropped"] += total
		_ = ws.Lag.RecordValues(0, total)
	}
}

// ---- the write path ----

// spread runs a job of cost (the work of n transactions) on server v, split
// over up to n of its cores; it returns when the last part ends.
func (e *engine) spread(v *des.Server, cost des.Time, n int, op int) des.Time {
	k := min(n, v.Slots())
	if k <= 1 {
		return v.Start(cost, op)
	}
	var end des.Time
	part := cost / des.Time(k)
	for i := range k {
		c := part
		if i == 0 {
			c += cost - part*des.Time(k)
		}
		end = max(end, v.Start(c, op))
	}
	return end
}

// recordAll records that rec's transactions reached the stage at done.
func (e *engine) recordAll(st reports.Stage, r rec, done des.Time) {
	at := e.wall(done)
	w := r.t.w
	for k := range r.n {
		in := e.wall(r.intendedAt(k))
		w.rec.Record(st, in, in, at)
	}
}

// whole is a cohort as one rec: all its transactions.
func whole(c *txn) rec { return rec{t: c, n: int32(c.n), of: int32(c.n)} }

// cohortSend: the clients send the cohort to its node.
func (e *engine) cohortSend(c *txn) {
	n := e.nodes[c.node]
	if e.host != nil {
		e.spread(e.host, c.w.stream*des.Time(c.n), c.n, opClient)
	}
	e.tripThen(e.clientLink(n, true), c.size*c.n, func(at des.Time) {
		if c.w.read {
			// stretched by the node's load, as tx mode's reads are (a
			// read's latency is mostly these hops)
			e.s.At(at+e.way(n, c.w, legRead), func() { e.cohortRead(n, c) })
			return
		}
		e.s.At(at+c.w.requestLeg(), func() { e.cohortIngress(n, c) })
	})
}

// cohortRead serves a cohort of reads (kinds get and query) that reached
// node n, as read serves one: after a pause, the node's streams and state
// reads (each at its shard's tree size, split over the cores), the
// answers back, then each client's check of its proof (on the shared
// host's cores, else on the clients' own machines, in parallel) → read. A
// stopped node's cohort goes to the next node.
func (e *engine) cohortRead(n *node, c *txn) {
	const why = "read: node unreachable (redialing)"
	e.gate(n, func() {
		if !n.up {
			e.cohortRetry(c, why)
			return
		}
		var cost, verify des.Time
		for s, k := range c.perShard {
			if k > 0 {
				tree := int(e.shards[s].treeSize())
				cost += des.Time(k) * (c.w.stream + e.k.read(tree))
				verify += des.Time(k) * e.k.proofVerify(tree)
			}
		}
		end := e.spread(e.cpuOf(n), cost, c.n, opRead)
		life := n.life
		e.s.At(end, func() {
			if n.life != life {
				e.cohortRetry(c, why)
				return
			}
			e.tripThen(e.clientLink(n, false), readAnswerBytes*c.n, func(at des.Time) {
				e.s.At(at+e.way(n, c.w, legRead), func() {
					done := func() {
						e.recordAll(reports.StageRead, whole(c), e.s.Now())
						c.w.inflight -= c.owed
						c.owed, c.done = 0, true
					}
					if e.host != nil {
						e.s.At(e.spread(e.host, verify, c.n, opClient), done)
					} else {
						e.s.After(verify/des.Time(c.n), done)
					}
				})
			})
		})
	})
}

// tripThen calls arrive with the arrival time of a message of size bytes
// on l: at once (with a time ahead) when the link is open; when it is
// partitioned, on the message's arrival after the heal (the link holds it,
// as Send does).
func (e *engine) tripThen(l *des.Link, size int, arrive func(at des.Time)) {
	if at, ok := l.Trip(size); ok {
		arrive(at)
		return
	}
	l.Send(size, func() { arrive(e.s.Now()) })
}

// cohortIngress: the node's streams, overhead and batched signature checks
// for the cohort's transactions (after a pause), then its produce. A
// stopped node's cohort goes to the next node.
func (e *engine) cohortIngress(n *node, c *txn) {
	const why = "accepted: node unreachable (redialing)"
	e.gate(n, func() {
		if !n.up {
			e.cohortRetry(c, why)
			return
		}
		cpu := e.cpuOf(n)
		cpu.Share(e.k.overhead()*des.Time(c.n), opOverhead)
		end := e.spread(cpu, c.w.stream*des.Time(c.n), c.n, c.w.op)
		full, rest := c.n/verifyMaxBatch, c.n%verifyMaxBatch
		cost := des.Time(full)*e.k.verify(verifyMaxBatch) + e.k.verify(rest)
		end = max(end, e.spread(cpu, cost, (c.n+verifyMaxBatch-1)/verifyMaxBatch, opVerify))
		life := n.life
		e.s.At(end, func() {
			if n.life != life {
				e.cohortRetry(c, why)
				return
			}
			e.recordAll(reports.StageIngress, whole(c), end)
			e.cohortProduce(n, c)
		})
	})
}

// cohortRetry sends cohort c, which its node did not take (it stopped),
// to the next node that is up (the workload's failover), or fails it.
func (e *engine) cohortRetry(c *txn, why string) {
	m := e.pickNode(c.w)
	if m == nil || c.w.sc.Failover != nil && !*c.w.sc.Failover {
		e.failCohort(c, why)
		return
	}
	c.node = m.id
	e.track(m, c)
	e.cohortSend(c)
}

// failCohort gives up cohort c's transactions that no node sent a receipt
// of: each an error now (their intended times those of the cohort's
// last ones), its parts in blocks done.
func (e *engine) failCohort(c *txn, why string) {
	now := e.wall(e.s.Now())
	left := rec{t: c, n: int32(c.owed), from: int32(c.n - c.owed), of: int32(c.n)}
	for k := range left.n {
		c.w.rec.Error(why, e.wall(left.intendedAt(k)), now)
	}
	c.w.inflight -= c.owed
	c.owed, c.failed = 0, true
	for _, b := range c.blocks {
		for i := range b.txs {
			if r := &b.txs[i]; r.t == c && !r.done {
				b.settle(i, false)
			}
		}
		b.dropSettled()
	}
}

// cohortStop: node n stopped. The blocks above what it committed no
// longer wait for its commit to drop their votes; its cohorts that reached
// the log fail over now; the others find it stopped where they are
// (cohortIngress).
func (e *engine) cohortStop(n *node) {
	for _, r := range n.reps {
		sh := e.shards[r.shard]
		for h := r.committed + 1; h <= uint64(len(sh.blocks)); h++ {
			b := sh.blocks[h-1]
			b.need--
			if v := b.votes; v != nil {
				v.peers[n.id] = nil
				if b.commits >= b.need {
					b.votes = nil
				}
			}
		}
	}
	out := n.outstanding
	n.outstanding = nil
	for _, c := range out {
		switch {
		case c.node != n.id || c.done || c.failed:
		case !c.produced:
			n.outstanding = append(n.outstanding, c)
		default:
			e.cohortFailOver(c)
		}
	}
}

// cohortFailOver: cohort c's node stopped after it sent c to the log. The
// client sends it again, with the same bytes, to the next node that is up
// (or fails it, without failover); until it arrives (cohortResent) no
// node answers it.
func (e *engine) cohortFailOver(c *txn) {
	const why = "committed: node unreachable (redialing)"
	c.node = -1
	m := e.pickNode(c.w)
	if m == nil || c.w.sc.Failover != nil && !*c.w.sc.Failover {
		e.failCohort(c, why)
		return
	}
	if e.host != nil {
		e.spread(e.host, c.w.stream*des.Time(c.owed), c.owed, opClient)
	}
	e.tripThen(e.clientLink(m, true), c.size*c.owed, func(at des.Time) {
		e.s.At(at+c.w.requestLeg(), func() { e.cohortResent(m, c) })
	})
}

// cohortResent: cohort c's resend reached node m: its streams, then the
// receipts of what m committed already (from its stored receipts); the
// rest m sends as it commits (cohortReceipts).
func (e *engine) cohortResent(m *node, c *txn) {
	if c.failed || c.owed == 0 {
		return
	}
	if !m.up {
		e.cohortFailOver(c)
		return
	}
	c.node = m.id
	e.track(m, c)
	e.spread(e.cpuOf(m), c.w.stream*des.Time(c.owed), c.owed, c.w.op)
	var mine []rec
	for _, b := range c.blocks {
		if m.reps[b.shard].committed < b.height {
			continue
		}
		for i := range b.txs {
			if r := &b.txs[i]; r.t == c && !r.done {
				mine = append(mine, *r)
				b.settle(i, true)
			}
		}
		b.dropSettled()
	}
	e.sendReceipts(m, mine)
}

// cohortRejoin: node n restarted. The blocks above what it committed wait
// for its commit again before dropping their votes, and every peer that is
// up and attested one sends its attestation again (as peers do to a node
// that reconnects): n's quorum for it counts those arrivals.
func (e *engine) cohortRejoin(n *node) {
	q := e.quorum - 1
	resent := 0
	for _, r := range n.reps {
		sh := e.shards[r.shard]
		for h := r.committed + 1; h <= uint64(len(sh.blocks)); h++ {
			b := sh.blocks[h-1]
			b.need++
			v := e.votesOf(b)
			v.own[n.id], v.at[n.id], v.final[n.id], v.peers[n.id] = -1, -1, false, nil
			for _, p := range e.nodes {
				if p == n || !p.up || p.reps[r.shard].attested < h {
					continue
				}
				resent++
				e.tripThen(e.peerLink(p, n), attestationBytes, func(at des.Time) {
					if b.votes != v || v.final[n.id] || !n.up {
						return
					}
					pushBounded(&v.peers[n.id], at+e.k.peerHandoff(), q)
					e.checkFinal(n, b)
				})
			}
		}
	}
	if resent > 0 {
		e.spread(e.cpuOf(n), ns(e.k.c.Ops.AttestReceiveNs)*des.Time(resent), resent, opReceive)
	}
}

// cohortProduce appends the cohort's shard parts to their partitions: one
// produce request per broker leading any of them.
func (e *engine) cohortProduce(n *node, c *txn) {
	c.produced = true
	e.spread(e.cpuOf(n), e.k.brokerRecord()*des.Time(c.n), c.n, opProduce)
	byBroker := make([][]uint32, len(e.brokers))
	for s, k := range c.perShard {
		if k > 0 {
			b := e.shards[s].broker
			byBroker[b] = append(byBroker[b], uint32(s))
		}
	}
	// The accepted stage's records of each broker's part spread over the
	// whole cohort's window.
	var done int32
	for bi, shards := range byBroker {
		if len(shards) == 0 {
			continue
		}
		var count int32
		for _, s := range shards {
			count += c.perShard[s]
		}
		part := rec{t: c, n: count, from: done, of: int32(c.n)}
		done += count
		b := e.brokers[bi]
		at, _ := e.brokerLink(n, true).Trip(c.size * int(count))
		e.cohortBroker(n, b, c, shards, part, at)
	}
}

// cohortBroker: a produce request reaches the partitions' leader at at:
// its handling and replication (no fsync: see the brokers in newEngine),
// then the records are in the log and the acknowledgment goes back. The
// handling is queued on the broker's cores when the request is sent (not
// when it arrives, to save an event: the brokers are far from busy in
// cohort-mode scenarios).
func (e *engine) cohortBroker(n *node, b *broker, c *txn, shards []uint32, part rec, at des.Time) {
	end := max(e.spread(b.cpu, e.k.brokerRecord()*des.Time(part.n), int(part.n), opBroker), at)
	appended := func() {
		for _, s := range shards {
			sh := e.shards[s]
			k := c.perShard[s]
			sh.records = append(sh.records, rec{t: c, n: k, of: k})
			e.wakeLeader(sh)
		}
		e.accepted += int64(part.n)
		if !n.up || c.w.untimedAccept {
			return // the client's connection broke, or it is answered with the receipts only
		}
		back, _ := e.brokerLink(n, false).Trip(64)
		at := back + e.k.produceBase()
		sent := e.s.Now()
		e.tripThen(e.clientLink(n, false), 64, func(at2 des.Time) {
			e.recordAll(reports.StageAccepted, part, at+(at2-sent)+c.w.acceptLeg())
		})
	}
	e.s.At(end+e.replicateDelay(), appended)
}

// replicateDelay is replicate's wait.
func (e *engine) replicateDelay() des.Time {
	if len(e.brokers) < 2 {
		return 0
	}
	return 2 * e.link(endpointBroker, endpointBroker+"-peer").Impairment().Delay
}

// clientLink is the link clients → n (to) or n → clients.
func (e *engine) clientLink(n *node, to bool) *des.Link {
	i := n.id * 2
	if !to {
		i++
	}
	if l := e.endLinks[i]; l != nil {
		return l
	}
	if to {
		e.endLinks[i] = e.link(endpointClients, n.name)
	} else {
		e.endLinks[i] = e.link(n.name, endpointClients)
	}
	return e.endLinks[i]
}

// brokerLink is the link n → broker (to) or broker → n.
func (e *engine) brokerLink(n *node, to bool) *des.Link {
	i := len(e.nodes)*2 + n.id*2
	if !to {
		i++
	}
	if l := e.endLinks[i]; l != nil {
		return l
	}
	if to {
		e.endLinks[i] = e.link(n.name, endpointBroker)
	} else {
		e.endLinks[i] = e.link(endpointBroker, n.name)
	}
	return e.endLinks[i]
}

// peerLink is the link a → b between nodes.
func (e *engine) peerLink(a, b *node) *des.Link {
	row := e.peerLinks[a.id]
	if row == nil {
		row = make([]*des.Link, len(e.nodes))
		e.peerLinks[a.id] = row
	}
	if row[b.id] == nil {
		row[b.id] = e.link(a.name, b.name)
	}
	return row[b.id]
}

// ---- finality ----

// votes is a block's aggregated attestations: for every node, the
// earliest arrivals of its peers' attestations (a max-heap of at most
// quorum−1), its own attestation's time, and the finality it scheduled.
type votes struct {
	peers [][]des.Time
	own   []des.Time // -1: not attested yet
	at    []des.Time // the scheduled finality, -1: none
	final []bool
}

func (e *engine) votesOf(b *block) *votes {
	if b.votes == nil {
		n := len(e.nodes)
		v := &votes{peers: make([][]des.Time, n), own: make([]des.Time, n), at: make([]des.Time, n), final: make([]bool, n)}
		for i := range n {
			v.own[i], v.at[i] = -1, -1
		}
		b.votes = v
	}
	return b.votes
}

// cohortAttest: node n attested block b now. Its attestation's arrival at
// every peer is computed on the link; the peers' handling of it is charged
// to n's cores as the work n does for the peers' attestations of b.
func (e *engine) cohortAttest(n *node, b *block) {
	v := e.votesOf(b)
	now := e.s.Now()
	v.own[n.id] = now
	for _, p := range e.nodes {
		if p == n || !p.up { // a stopped node gets it again when it restarts (cohortRejoin)
			continue
		}
		l := e.peerLink(n, p)
		at, ok := l.Trip(attestationBytes)
		if !ok {
			l.Send(attestationBytes, func() { e.attestationArrived(p, b, v, e.s.Now()) })
			continue
		}
		e.attestationArrived(p, b, v, at)
	}
	e.checkFinal(n, b)
	if k := len(e.nodes) - 1; k > 0 {
		e.spread(e.cpuOf(n), ns(e.k.c.Ops.AttestReceiveNs)*des.Time(k), k, opReceive)
	}
}

// attestationArrived: a peer's attestation of block b reaches node p's
// link end at at, and counts after its QUIC hand-off (peerHandoff).
func (e *engine) attestationArrived(p *node, b *block, v *votes, at des.Time) {
	if b.votes != v || v.final[p.id] || !p.up {
		return
	}
	pushBounded(&v.peers[p.id], at+e.k.peerHandoff(), e.quorum-1)
	e.checkFinal(p, b)
}

// checkFinal schedules block b's finality at node p: at the latest of
// p's own attestation and the quorum−1 earliest arrivals of its peers'.
// An attestation made later cannot arrive before now + minIn[p] (the
// peers' least link delay to p), so a candidate later than that is checked
// again then rather than rescheduled at every earlier arrival; on links
// with no least delay every improvement reschedules.
func (e *engine) checkFinal(p *node, b *block) {
	v := b.votes
	at, ok := e.candidate(p, b)
	if !ok {
		return
	}
	if e.minIn[p.id] <= 0 {
		if v.at[p.id] >= 0 && v.at[p.id] <= at {
			return
		}
		v.at[p.id] = at
		e.s.At(at, func() {
			if v.at[p.id] == at {
				e.final(p, b)
			}
		})
		return
	}
	if v.at[p.id] < 0 {
		e.recheck(p, b, at)
	}
}

// recheck schedules p's next look at block b's candidate finality cand.
func (e *engine) recheck(p *node, b *block, cand des.Time) {
	v := b.votes
	at := min(cand, e.s.Now()+e.minIn[p.id])
	v.at[p.id] = at
	e.s.At(at, func() {
		if b.votes != v {
			return // dropped: every node up committed it
		}
		v.at[p.id] = -1
		cand, ok := e.candidate(p, b)
		if !ok {
			return // p stopped, or the block is final there
		}
		if cand <= e.s.Now() {
			e.final(p, b)
			return
		}
		e.recheck(p, b, cand)
	})
}

// candidate is when block b is final at p given the attestations made so
// far; ok is false while p has not attested it or too few peers have.
func (e *engine) candidate(p *node, b *block) (des.Time, bool) {
	v := b.votes
	if v == nil || v.final[p.id] || v.own[p.id] < 0 {
		return 0, false
	}
	at := v.own[p.id]
	if q := e.quorum - 1; q > 0 {
		h := v.peers[p.id]
		if len(h) < q {
			return 0, false
		}
		at = max(at, h[0])
	}
	return at, true
}

// final: block b is final at node p, which commits it (once its pause
// ends; a stopped node does nothing, its votes are redone when it
// restarts: cohortRejoin).
func (e *engine) final(p *node, b *block) {
	v := b.votes
	if v == nil || v.final[p.id] || !p.up {
		return
	}
	if p.paused > e.s.Now() {
		e.s.At(p.paused, func() { e.final(p, b) })
		return
	}
	v.final[p.id] = true
	v.peers[p.id] = nil
	r := p.reps[b.shard]
	if r.waiting == b {
		r.waiting = nil
		e.commit(p, r, b)
	}
}

// setMinIn computes every node's least link delay from its peers (the
// delay less the jitter distribution's lowest value, at least 0).
func (e *engine) setMinIn() {
	if e.minIn == nil {
		e.minIn = make([]des.Time, len(e.nodes))
	}
	for _, p := range e.nodes {
		lo := des.Time(-1)
		for _, x := range e.nodes {
			if x == p {
				continue
			}
			imp := e.impairment(x.name, p.name)
			d := max(imp.Delay+des.Time(netem.JitterQuantile(imp.Distribution, 0)*float64(imp.Jitter)), 0)
			if lo < 0 || d < lo {
				lo = d
			}
		}
		e.minIn[p.id] = max(lo, 0)
	}
}

// pushBounded keeps in *h (a max-heap) the k smallest values pushed.
func pushBounded(h *[]des.Time, x des.Time, k int) {
	if k <= 0 {
		return
	}
	s := *h
	if len(s) == k {
		if x >= s[0] {
			return
		}
		s[0] = x
		siftDownMax(s, 0)
		return
	}
	if s == nil {
		s = make([]des.Time, 0, k)
	}
	s = append(s, x)
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if s[p] >= s[i] {
			break
		}
		s[p], s[i] = s[i], s[p]
		i = p
	}
	*h = s
}

func siftDownMax(s []des.Time, i int) {
	for {
		l := 2*i + 1
		if l >= len(s) {
			return
		}
		m := l
		if r := l + 1; r < len(s) && s[r] > s[l] {
			m = r
		}
		if s[m] <= s[i] {
			return
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
}

// cohortReceipts: node n committed block b: the receipts of the
// transactions sent to it go to their clients. The block's transactions
// count as committed at the first node; its records are dropped once every
// node committed it.
func (e *engine) cohortReceipts(n *node, b *block) {
	if b.commits == 0 {
		e.committed += int64(b.n)
	}
	b.commits++
	var mine []rec
	for i := range b.txs {
		r := &b.txs[i]
		switch {
		case r.done:
		case r.t.failed:
			b.settle(i, false)
		case r.t.node == n.id:
			mine = append(mine, *r)
			b.settle(i, true)
		}
	}
	b.dropSettled()
	if b.commits >= b.need {
		b.votes = nil
	}
	e.sendReceipts(n, mine)
}

// settle marks the block's i-th part done: its receipts sent (counted off
// its cohort's owed), or its cohort failed.
func (b *block) settle(i int, receipt bool) {
	r := &b.txs[i]
	r.done = true
	b.owed--
	if receipt {
		if r.t.owed -= int(r.n); r.t.owed == 0 {
			r.t.done = true
		}
	}
}

// dropSettled drops the block's parts once every one is done.
func (b *block) dropSettled() {
	if b.owed == 0 {
		b.txs = nil
	}
}

// sendReceipts: node n sends its clients the receipts of parts.
func (e *engine) sendReceipts(n *node, parts []rec) {
	if len(parts) == 0 {
		return
	}
	bytes := 0
	var leg des.Time // the slowest protocol's, when workloads of several share the receipts
	for _, r := range parts {
		bytes += 64 * int(r.n)
		e.commitsByNode[n.id] += int64(r.n)
		leg = max(leg, r.t.w.receiptLeg())
	}
	e.tripThen(e.clientLink(n, false), bytes, func(at des.Time) {
		e.s.At(at+leg, func() {
			for _, r := range parts {
				e.cohortReceipt(r)
			}
		})
	})
}

// cohortReceipt: the clients hold the receipts of rec's transactions.
func (e *engine) cohortReceipt(r rec) {
	w := r.t.w
	now := e.s.Now()
	to := des.Time(w.sc.Timeout)
	for k := range r.n {
		at := r.intendedAt(k)
		if to > 0 && now-at > to {
			w.rec.Error("committed: timeout", e.wall(at), e.wall(now))
		} else {
			w.rec.Record(reports.StageCommitted, e.wall(at), e.wall(at), e.wall(now))
		}
	}
	w.inflight -= int(r.n)
}
