package sim

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"slices"
	"time"

	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/scenarios"
	"github.com/rustorium/rustorium/sim/des"
)

// Operations a node's (or the shared host's) cores are busy with, for the
// utilisation report.
const (
	opQUIC       = iota // a client stream: frame in, accepted and committed frames out
	opVerify            // ed25519 verification (batched)
	opProduce           // the producer's side of appending a record
	opLead              // the leader's round: cut, execute on the tip, publish
	opExecute           // a replica's execution and storage commit (hashes, Merkle, proofs, Pebble)
	opAttest            // signing and sending this node's attestation
	opReceive           // handling a peer's attestation
	opBroker            // broker request handling (the shared host only)
	opClient            // the load generator's side of a stream (the shared host only)
	opFsync             // a disk: fsync of a block commit or a broker write
	opOverhead          // the calibration's per-transaction and per-block CPU beyond the operations above
	opBackground        // other processes' threads on the shared host (Options.BackgroundLoad)
	opRead              // a node's read of a state key with its proof (kinds get and query)
	opAPI               // an HTTP API request (REST, WebSocket, GraphQL): its request in, its answers out
	opPebble            // Pebble's memtable flushes and compactions (pebbleWork)
	numOps
)

var opNames = [numOps]string{"quic", "verify", "produce", "lead", "execute", "attest", "attest_receive", "broker", "client", "fsync", "overhead", opRead: "read", opAPI: "api", opPebble: "pebble"}

// Protocol constants of the node, as its code has them.
const (
	pollMax          = 4096 // records a leader round polls (node/leader.go)
	maxInflight      = 8    // blocks a leader runs ahead of its own replica (node/leader.go)
	verifyMaxBatch   = 128  // sigverify.Options.MaxBatch's default
	publishRTTs      = 4    // broker round trips of a leader's Kafka transaction: produce, commit offsets, the forced heartbeat, end (see loopPublish)
	attestationBytes = consensus.AttestationSize
	headerBytes      = 200 // a block header record, about
	maxInFlightSends = 20000
)

// txn is one simulated transaction, or in cohort mode a cohort: n
// transactions of one workload sent to one node, intended from intended to
// last (spread evenly between them), with per-shard counts.
type txn struct {
	w         *workload
	intended  des.Time
	last      des.Time // a cohort's last intended send (intended in tx mode)
	n         int      // transactions: 1, or a cohort's
	perShard  []int32  // a cohort's transactions per shard (nil in tx mode)
	sent      des.Time
	node      int    // the node it was sent to
	shard     uint32 // ordering.ShardOf of its routing key
	size      int
	accepted  bool
	committed bool // some node committed its block
	block     *block
	done      bool // the client holds its receipt (or gave up); a cohort: every one of its transactions
	failed    bool
	// cohort mode: produced once its node sent it to the log (a kill of
	// the node then moves its receipts, not its transactions); owed, its
	// transactions whose receipt no node has sent yet; blocks, the
	// published blocks holding its parts (kept only when the scenario
	// stops nodes: failOverCohort looks in them).
	produced bool
	owed     int
	blocks   []*block
	// tx mode, for the spans the model times (engine.span): when its node
	// began the append to the log, and when the client held the accepted
	// receipt.
	produceAt, acceptedAt des.Time
}

// rec is n transactions of t in a shard's log: in cohort mode a part of a
// cohort's transactions of the shard (from..from+n of its of), in tx mode
// the one transaction (1 of 1).
type rec struct {
	t           *txn
	n, from, of int32
	done        bool // cohort mode: a node sent its receipts (or its cohort failed)
}

// intendedAt is the intended send time of the k-th transaction of rec's
// shard part: a cohort's sends spread evenly over its window.
func (r rec) intendedAt(k int32) des.Time {
	t := r.t
	if r.of <= 1 || t.last <= t.intended {
		return t.intended
	}
	return t.intended + des.Time(float64(t.last-t.intended)*float64(r.from+k)/float64(r.of-1))
}

// block is one block of a shard, as every node sees it.
type block struct {
	shard  uint32
	height uint64
	txs    []rec
	n      int // transactions
	bytes  int
	tree   int // keys in the shard's tree before the block
	// cohort mode: the aggregated attestations (nil in tx mode) and how
	// many nodes committed the block.
	votes   *votes
	commits int
	// need is how many commits free the votes: the nodes up when it was
	// published, less those stopped since, plus those restarted below it.
	need int
	// owed is how many of txs are not done: txs is dropped at 0.
	owed int
	// first is when some node first committed the block (0: none yet):
	// the shard's block production, for a kill's fail-over (stalls).
	first des.Time
	// round is the blocks published with it (nil: alone), which commit
	// with one fsync (groupSync).
	round *pubRound
	// leader is the node that published the block.
	leader int
}

// logShard is a shard's two partitions at the broker: transactions and
// blocks.
type logShard struct {
	id      uint32
	records []rec    // transactions-<shard>, by offset
	polled  logPos   // where the leaders consumed up to
	blocks  []*block // blocks-<shard>, by height-1
	writes  float64  // puts committed to the shard
	keys    float64  // the key space the shard's share of writes draws from
	broker  int      // the broker leading its partitions
}

// logPos is a position in a shard's records: a record's index and how
// many of its transactions (a cohort's part) before it were consumed.
type logPos struct {
	i    int
	part int32
}

// before reports whether p comes before q.
func (p logPos) before(q logPos) bool { return p.i < q.i || p.i == q.i && p.part < q.part }

// node is one simulated validator.
type node struct {
	id   int
	name string
	cpu  *des.Server
	disk *des.Server
	sync *groupSync
	up   bool
	// Pebble's background (pebbleWork): bytes in its memtable, flushes,
	// and MiB its next compaction rewrites beyond the base level (with
	// BaseMaxBytes: what L0 took since the last round).
	memIn       float64
	compactDue  float64 // flushes since the last compaction, in compactions (pebbleWork)
	compactDebt float64
	baseMiB     float64    // what its base level holds (calib.PebbleBackground.BaseMaxBytes)
	pebbleQ     []des.Time // its flushes and rounds of compactions to run, one at a time (pebbleJob)
	pebbleLife  int        // the life pebbleQ belongs to
	life        int        // counts its kills: work begun before one does nothing after
	paused      des.Time   // paused until
	key         ed25519.PrivateKey
	fin         finalizer
	// verifier: requests waiting, idle workers.
	vq   []func()
	idle int
	// leader state
	leads   []uint32 // shards this node leads
	inRound bool
	rounds  int64
	waitFor *roundWait
	// roundStart is, per shard, the position the round under way polled
	// from, until its publish begins (nil then).
	roundStart map[uint32]logPos
	inflight   map[uint32]int // published, not committed here
	held       *heldRound     // the round polling (and holding), until it executes
	// replica state per shard, and their Prepare combiner (prepare.go)
	reps []*replica
	prep combiner
	// outstanding are the transactions sent to this node, for fail-over.
	outstanding []*txn
	prune       int // prune outstanding of finished ones at this length
	// producers are its produce requests to each broker (embedded.go).
	producers []*producer
}

type roundWait struct {
	shard  uint32
	height uint64
	resume func()
}

// replica is a node's pipeline for one shard: blocks in height order,
// executed one at a time, each waiting for finality before its commit.
type replica struct {
	n         *node
	shard     uint32
	next      uint64 // the height it executes next
	avail     uint64 // the highest height fetched
	attested  uint64 // the highest height this node attested
	busy      bool   // executing, waiting for finality or committing
	committed uint64
	final     map[uint64]bool
	waiting   *block   // executed, waiting for finality
	attestAt  des.Time // when waiting's attestation was sent (replica.quorum's start)
}

// finalizer tracks finality at one node: the real consensus.Finality for
// small clusters, its honest-vote equivalent (a count of matching
// attestations, in height order) for large ones.
type finalizer interface {
	// local records this node's own result for (shard, height) and returns
	// the heights that became final.
	local(shard uint32, height uint64) ([]uint64, *consensus.Attestation)
	// receive records a peer's attestation.
	receive(a *consensus.Attestation) []uint64
}

// voteOf is the block hash and state root every honest node computes for
// (shard, height): a function of them only, since the simulation models
// honest nodes that agree.
func voteOf(shard uint32, height uint64) (hash, root [32]byte) {
	var b [12]byte
	binary.BigEndian.PutUint32(b[:4], shard)
	binary.BigEndian.PutUint64(b[4:], height)
	hash = sha256.Sum256(b[:])
	root = sha256.Sum256(hash[:])
	return hash, root
}

// realFinality is the node's own tracker (signing and verifying included).
type realFinality struct {
	f   *consensus.Finality
	key ed25519.PrivateKey
}

func (r *realFinality) local(shard uint32, height uint64) ([]uint64, *consensus.Attestation) {
	hash, root := voteOf(shard, height)
	out, err := r.f.Local(shard, height, hash, root)
	if err != nil {
		return nil, nil
	}
	var a *consensus.Attestation
	if len(out.Broadcast) > 0 {
		a = &out.Broadcast[0]
	}
	return finals(out), a
}

func (r *realFinality) receive(a *consensus.Attestation) []uint64 {
	out, err := r.f.Receive(*a)
	if err != nil {
		return nil
	}
	return finals(out)
}

func finals(out consensus.Output) []uint64 {
	hs := make([]uint64, len(out.Final))
	for i, f := range out.Final {
		hs[i] = f.Height
	}
	return hs
}

// countFinality is consensus.Finality's rule for honest validators that all
// compute the same result: a height is final once the one before is, this
// node has its own result, and quorum validators (this one included)
// attested it. No signatures are made or checked (their cost is still
// charged to the cores).
type countFinality struct {
	quorum int
	self   int
	shards []countShard
}

type countShard struct {
	final uint64
	votes map[uint64]int
	own   map[uint64]bool
}

func newCountFinality(shards, quorum, self int) *countFinality {
	c := &countFinality{quorum: quorum, self: self, shards: make([]countShard, shards)}
	for i := range c.shards {
		c.shards[i] = countShard{votes: map[uint64]int{}, own: map[uint64]bool{}}
	}
	return c
}

func (c *countFinality) local(shard uint32, height uint64) ([]uint64, *consensus.Attestation) {
	s := &c.shards[shard]
	if height <= s.final || s.own[height] {
		return nil, nil
	}
	s.own[height] = true
	s.votes[height]++
	return c.advance(s), &consensus.Attestation{Shard: shard, Height: height, Signer: ed25519.PublicKey{byte(c.self)}}
}

func (c *countFinality) receive(a *consensus.Attestation) []uint64 {
	s := &c.shards[a.Shard]
	if a.Height <= s.final {
		return nil
	}
	s.votes[a.Height]++
	return c.advance(s)
}

func (c *countFinality) advance(s *countShard) []uint64 {
	var out []uint64
	for {
		h := s.final + 1
		if !s.own[h] || s.votes[h] < c.quorum {
			return out
		}
		delete(s.own, h)
		delete(s.votes, h)
		s.final = h
		out = append(out, h)
	}
}

// costs prices the node's operations from a calibration, in virtual time.
type costs struct {
	c         *calib.Calibration
	merkle    calib.MerkleModel
	state     calib.StateModel
	sync      bool
	valueSize int
}

func ns(v float64) des.Time {
	if v <= 0 || math.IsNaN(v) {
		return 0
	}
	return des.Time(math.Round(v))
}

// read is a node's read of a state key with its proof on a tree of tree
// keys; proofVerify the client's check of the answer.
func (k costs) read(tree int) des.Time        { return ns(k.c.StateReadNs(tree)) }
func (k costs) proofVerify(tree int) des.Time { return ns(k.c.ProofVerifyNs(tree)) }

// quicStream is the node's CPU per client stream.
func (k costs) quicStream() des.Time { return ns(k.c.Ops.QUICStreamNs) }

// overhead is the calibrated per-transaction CPU no operation accounts for.
func (k costs) overhead() des.Time { return ns(k.c.Ops.TxOverheadNs) }

// blockOverhead is the calibrated per-block CPU no operation accounts for.
func (k costs) blockOverhead() des.Time { return ns(k.c.Ops.BlockOverheadNs) }

// verify is a batch of n verifications.
func (k costs) verify(n int) des.Time { return ns(k.c.VerifyBatchNs(n)) }

// produceBase is the produce→ack round trip's latency on an idle machine
// (loopback, client and broker included).
func (k costs) produceBase() des.Time { return ns(k.c.Ops.ProduceAck.P50Ns) }

// brokerRecord is the broker's CPU per appended record.
func (k costs) brokerRecord() des.Time { return ns(1e9 / k.c.Ops.ProduceCeilingTPS) }

// quicBase is a QUIC round trip's latency on an idle machine.
func (k costs) quicBase() des.Time { return ns(k.c.Ops.QUICRoundTrip.P50Ns) }

// peerHandoff is what a message between nodes (an attestation) takes
// beyond its link's delay on an idle machine: the peer protocol's queue
// and goroutines, quic-go and the network stacks at both ends, as the
// calibration's three-node run fitted it (calib.Ops.PeerHandoffNs), or,
// without that fit, half the calibrated QUIC echo, as a client's request
// takes. (Until session 24 peer messages took only their link's delay: on
// one machine, none. Until session 30 always half the echo: the fitted way
// was two to five times that.)
func (k costs) peerHandoff() des.Time { return ns(k.c.Ops.PeerHandoff()) }

// setClient prices the workload's requests by its clients' protocol:
// QUIC's stream cost and echo round trip, or an HTTP API's request cost
// and submission round trips (calib.APIOf: measured, or estimated from
// QUIC's). A get over GraphQL goes through REST, as the load generator
// sends it (GraphQL has no raw state-key query); a GraphQL submission is
// answered once, at the commit, so its acceptance is not timed.
func (e *engine) setClient(w *workload) {
	w.stream, w.base, w.op = e.k.quicStream(), e.k.quicBase(), opQUIC
	w.acc = w.base
	proto := w.sc.Client
	if proto == "" || proto == scenarios.ClientQUIC {
		return
	}
	if proto == scenarios.ClientGraphQL && w.sc.Kind == scenarios.KindGet {
		proto = scenarios.ClientREST
	}
	p := e.k.c.APIOf(string(proto))
	w.stream, w.base, w.acc, w.op, w.api = ns(p.RequestNs), ns(p.RoundTripNs), ns(p.AcceptedNs), opAPI, &p
	w.untimedAccept = proto == scenarios.ClientGraphQL && !w.read
	if p.Estimated && !slices.Contains(e.apiEstimated, string(proto)) {
		e.apiEstimated = append(e.apiEstimated, string(proto))
	}
}

// lead is the leader's execution of a block of n transactions on its tip:
// decoding, checks and the tx root, no Merkle work. Priced as writing the
// block's bytes into a Pebble batch without sync (the same memory work).
func (k costs) lead(n, bytes int) des.Time {
	return ns(k.c.PebbleCommitNs(bytes, false)) + des.Time(n)*des.Microsecond
}

// execute is a replica's execution and storage preparation and commit of
// a block of n puts into a tree of tree keys (without the fsync): the
// state commit measured at that block size in trees of that size
// (calib.StateModel; without ops.state_block_tree, calibrations before
// session 32: the state commit in a tree of about the block's keys plus
// the merkle_block fit's extra cost in the larger tree, half a small
// block's real cost), plus the value hashes' extra cost for values other
// than 32 bytes.
func (k costs) execute(n, tree int) des.Time {
	if n == 0 {
		return 0
	}
	v, ok := k.state.Ns(n, tree)
	if !ok {
		v = k.c.StateBlockNs(n) + max(k.merkle.Ns(n, tree)-k.merkle.Ns(n, n), 0)
	}
	v += float64(n) * (k.c.HashBytesNs(k.valueSize) - k.c.HashBytesNs(32))
	return ns(v)
}

// fsync is the disk time of a block commit's sync.
func (k costs) fsync(bytes int) des.Time {
	if !k.sync {
		return 0
	}
	return ns(k.c.PebbleCommitNs(bytes, true) - k.c.PebbleCommitNs(bytes, false))
}

func durationOf(t des.Time) time.Duration { return time.Duration(t) }

// Pebble's background work without the calibrated flush schedule
// (calib.PebbleBackground.FlushesPerCompaction): a compaction every this
// many flushes (Pebble's L0CompactionThreshold's default); Go preempts a
// goroutine that ran this long (its scheduler's time slice); and a flush
// or compaction goroutine holds its P this long on average before it lets
// it go (pebbleSlice).
//
// pebbleStreak was measured in a runtime trace of the three-node
// validation scenario on two cores (session 35): 175 times a Pebble job
// held a P, for 2.6 ms on average (p50 1.6 ms; half its time in holds
// longer than 5.3 ms, a tenth in holds longer than 10.7), its system
// calls included (it kept its P through them). Holds end when the job
// waits on a lock (three quarters of its time: its table writer's queue,
// the DB's mutex), comes back from a system call whose P the monitor
// handed to another thread, or is preempted at goQuantum.
const (
	compactionEvery = 4
	goQuantum       = 10 * des.Millisecond
	pebbleStreak    = 2600 * des.Microsecond
)

// pebbleWork: node n's Pebble took block b's writes (the calibration's
// bytes in per transaction; without them the block's own size). Each time
// a flush's worth came in (InBytesPerFlush: the memtable's arena fills
// before MemtableBytes of entries), a flush writes FlushedPerIn of it, and
// every FlushesPerCompaction flushes a compaction rewrites what they
// flushed WriteAmp − 1 times more, at the calibrated CPU per MiB written.
// (Until session 26 the model flushed every MemtableBytes, writing as
// much, and compacted every fourth flush: a three-node cluster's nodes,
// which flush together, flushed every 4.8 s against the real 2.9 and
// compacted every 19 s against the real 5.8, and the model charged
// Pebble 2.4 times less CPU than the calibration measured.) Each runs on
// one of the node's cores as Go runs a long goroutine: in holds of a P
// (sliced), each after the node's work waiting when the one before ends,
// so a compaction of 100 ms takes a core from the node's critical path in
// turns, as Pebble's does. Without ops.pebble_background nothing is
// charged.
func (e *engine) pebbleWork(n *node, b *block) {
	pb := e.k.c.Ops.PebbleBackground
	if pb == nil {
		return
	}
	if pb.InBytesPerTx > 0 {
		n.memIn += float64(b.n) * pb.InBytesPerTx
	} else {
		n.memIn += float64(b.bytes + b.n*300)
	}
	perFlush, flushedPerIn, every := float64(pb.MemtableBytes), 1.0, float64(compactionEvery)
	if pb.InBytesPerFlush > 0 && pb.FlushedPerIn > 0 && pb.FlushesPerCompaction >= 1 {
		perFlush, flushedPerIn, every = pb.InBytesPerFlush, pb.FlushedPerIn, pb.FlushesPerCompaction
	}
	for n.memIn >= perFlush {
		n.memIn -= perFlush
		mib := perFlush * flushedPerIn / (1 << 20)
		e.pebbleJob(n, ns(mib*pb.NsPerMiB))
		if pb.BaseMaxBytes > 0 {
			n.compactDebt += mib
		} else {
			n.compactDebt += mib * (pb.WriteAmp - 1)
		}
		if n.compactDue += 1 / every; n.compactDue >= 1-1e-9 {
			n.compactDue--
			e.pebbleJob(n, ns(n.compactionMiB(pb)*pb.NsPerMiB))
			n.compactDebt = 0
		}
	}
}

// compactionMiB is what node n's next compaction writes. With the
// calibration's base level (BaseMaxBytes), Pebble's L0→base compaction:
// what L0 holds (the flushes since the last one) merged with all the base
// level holds, which it rewrites (fresh random keys overlap all of it), so
// that each compaction writes one flush interval's worth more than the one
// before until the base level passes BaseMaxBytes and Pebble moves the
// base up a level (then it starts over empty). On session 34's host a
// three-node cluster's nodes wrote 5.9, 12.1 and 18.3 MB in their first
// three compactions (6.2 MB flushed between them), each the same at every
// node, and calibrate's in-memory Pebble 8.3, 10.0 and 11.6 (1.7 between).
// Without it, what the flushes since the last one wrote times WriteAmp − 1
// (compactDebt), the same every time.
func (n *node) compactionMiB(pb *calib.PebbleBackground) float64 {
	if pb.BaseMaxBytes <= 0 {
		return n.compactDebt
	}
	out := n.compactDebt + n.baseMiB
	if n.baseMiB = out; n.baseMiB*(1<<20) >= float64(pb.BaseMaxBytes) {
		n.baseMiB = 0
	}
	return out
}

// pebbleJob queues a flush or a round of compactions of cost at node n.
// Its Pebble runs them one after another (a round follows the flush that
// made it due; its compactions run one at a time), each on one of the
// node's cores as Go runs a long goroutine (sliced). On a shared host
// each is a long goroutine of the process's until its last slice ends:
// while such jobs are as many as the host's cores, the network waits for
// the runtime's monitor (des.Poller). (Until session 34 a flush and the
// compaction it made due ran side by side, and one node's pair would
// have held both of the host's cores.)
func (e *engine) pebbleJob(n *node, cost des.Time) {
	if cost <= 0 {
		return
	}
	if n.pebbleLife != n.life { // a kill ended the jobs of its last life
		n.pebbleQ, n.pebbleLife = nil, n.life
	}
	if n.pebbleQ = append(n.pebbleQ, cost); len(n.pebbleQ) == 1 {
		e.nextPebble(n, n.life)
	}
}

// nextPebble runs node n's next queued Pebble job, and the ones after it.
func (e *engine) nextPebble(n *node, life int) {
	if e.poller != nil {
		e.poller.Hold()
	}
	e.sliced(n, life, n.pebbleQ[0], func() {
		if e.poller != nil {
			e.poller.Release()
		}
		if n.life != life {
			return
		}
		if n.pebbleQ = n.pebbleQ[1:]; len(n.pebbleQ) > 0 {
			e.nextPebble(n, life)
		}
	})
}

// sliced runs cost of Pebble's work on one of node n's cores, a hold of
// a P at a time (pebbleSlice), then done; a kill of the node (its life
// changed) ends it. Each slice waits for an idle core and lets the node's
// other work go first, at most des.HogPatience (des.Server.Hog), as Go
// runs the goroutines the running ones ready before a long goroutine
// waiting in its global queue; once started it holds the core for the
// whole slice. (Until session 35 every slice was a job of goQuantum, in
// the queue with the node's work: three nodes' compaction rounds on two
// cores made each of a node's steps wait 7.4 ms at the median, where the
// real goroutines waited microseconds; the real node's Pebble CPU per MiB,
// twice the calibration's until then, made the three-node accepted p99 2.4
// times the real one that way.)
func (e *engine) sliced(n *node, life int, cost des.Time, done func()) {
	if cost <= 0 || n.life != life {
		done()
		return
	}
	part := min(cost, e.pebbleSlice())
	e.cpuOf(n).Hog(part, opPebble, func() { e.sliced(n, life, cost-part, done) })
}

// pebbleSlice is how long a Pebble job holds its P this time: drawn from
// an exponential distribution of mean pebbleStreak (whose median, 1.8 ms,
// and the hold its time's median is in, 4.4 ms, are about the measured 1.6
// and 5.3), at most goQuantum and at least a microsecond.
func (e *engine) pebbleSlice() des.Time {
	return min(max(des.Time(e.pebbleRand.ExpFloat64()*float64(pebbleStreak)), des.Microsecond), goQuantum)
}
