package calib

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/rustorium/rustorium/reports"
)

// Version is the calibration file format's version.
const Version = 1

// MaxFileSize bounds a calibration file Decode reads.
const MaxFileSize = 1 << 20

// ErrFormat reports bytes that are not a calibration file of this version:
// bad JSON, an unknown field, a missing operation, or a cost that is not a
// positive finite number. The wrapping text names the field.
var ErrFormat = errors.New("calib: bad calibration file")

// Calibration is this machine's cost of each operation the node does, as
// `rustorium calibrate` measured it with the node's own code. Costs of
// CPU-bound operations are the process's CPU time on one core (getrusage,
// so that other processes' load does not stretch them); disk, broker and
// QUIC round trips are wall times. In nanoseconds; sizes in bytes or
// entries as named.
type Calibration struct {
	// Version is the format's version (1).
	Version int `json:"version"`
	// Quick says the figures come from `calibrate --quick`: few samples,
	// for tests.
	Quick bool `json:"quick,omitempty"`
	// Machine is where the figures were measured.
	Machine Machine `json:"machine"`
	// Busy lists the end-to-end runs during which other processes and the
	// hypervisor took more than a quarter of a core (reports.Resources.Busy),
	// each as "RATE/s: why" (the three-node run's as "three nodes at
	// RATE/s: why"): the overheads, the peer hand-off, the schedule lag
	// and the hop delay fitted from them are suspect.
	// Empty: every run had the machine to itself (or none ran: Quick).
	Busy []string `json:"busy,omitempty"`
	// Ops holds the cost of every operation.
	Ops Ops `json:"ops"`
}

// Machine describes where a calibration was measured.
type Machine struct {
	CPUModel  string `json:"cpu_model"`
	Cores     int    `json:"cores"` // logical CPUs the node could use (GOMAXPROCS)
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// Ops is the cost of each operation; the tables are sorted by their sizes.
type Ops struct {
	// Poseidon2Ns is one Poseidon 2-to-1 hash (the tree's node hash).
	Poseidon2Ns float64 `json:"poseidon2_ns"`
	// HashBytes is Poseidon HashBytes (a value or key to a field element)
	// by input size, per hash as the node runs it: in batches of eight
	// (poseidon.HashBytesMany; since session 19, one at a time before).
	HashBytes []SizeCost `json:"hash_bytes"`
	// MerkleBlock is one batch update of the sparse Merkle tree (Apply and
	// Commit) by block size and tree size.
	MerkleBlock []MerkleCost `json:"merkle_block"`
	// StateBlock is a replica's storage commit of one block of puts
	// (storage.CommitBlock without fsync: value hashes, Merkle update, a
	// proof per write, one Pebble batch) by block size, 32-byte values.
	StateBlock []SizeCost `json:"state_block"`
	// StateBlockTree is StateBlock in grown trees: a replica's storage
	// commit of one block of puts (block_size) into a shard whose tree
	// already holds tree_size keys (StateCommitTree), one core. A small
	// block's writes each climb the whole tree, so the cost grows with the
	// tree far faster for it than the merkle_block fit (measured on blocks
	// of 100 and 1000) says: a put alone into a tree of 25k keys costs
	// 238 µs on session 32's machine, where state_block's 55 µs plus the
	// fit's growth gave 104 (StateModel). Absent (calibrations before
	// session 32): the simulator prices a block that way.
	StateBlockTree []MerkleCost `json:"state_block_tree,omitempty"`
	// StateRead is a node's read of one state key with its proof
	// (storage.DB.Read; a quarter of the keys absent) by the keys in the
	// shard's tree (Size), one core. Absent: not measured (calibrations
	// before session 22); the simulator then estimates it (costs.read).
	StateRead []SizeCost `json:"state_read,omitempty"`
	// ProofVerify is a client's check of such a read's answer
	// (storage.VerifyProof: the key's and value's HashBytes and a Poseidon
	// 2-to-1 per level of the proof), by the keys in the shard's tree.
	// Absent: estimated from Poseidon2Ns and HashBytes.
	ProofVerify []SizeCost `json:"proof_verify,omitempty"`
	// Ed25519VerifyNs is one ed25519 signature verification on its own.
	Ed25519VerifyNs float64 `json:"ed25519_verify_ns"`
	// Ed25519Batch is one batch verification of size signatures
	// (sigverify.Batch), the whole batch's cost.
	Ed25519Batch []SizeCost `json:"ed25519_batch"`
	// Ed25519SignNs is one ed25519 signature.
	Ed25519SignNs float64 `json:"ed25519_sign_ns"`
	// PebbleCommit is one Pebble batch commit on disk by batch size, with
	// and without fsync.
	PebbleCommit []PebbleCost `json:"pebble_commit"`
	// ProduceAck is a produce→ack round trip on the embedded broker (one
	// record, acks=all, idempotent producer), idle machine, the calls
	// started BaseGap apart.
	ProduceAck Latency `json:"produce_ack"`
	// ProduceCeilingTPS is the embedded broker's records per second under
	// 20000 (quick: 2000) asynchronous produces of tx-sized records.
	ProduceCeilingTPS float64 `json:"produce_ceiling_tps"`
	// QUICRoundTrip is a QUIC echo round trip over loopback through the
	// node's server (a new stream, one tx-sized frame each way), the calls
	// started BaseGap apart.
	QUICRoundTrip Latency `json:"quic_round_trip"`
	// Paced is the same two round trips with the calls started further
	// apart (Paced.GapNs, a 300/s workload's interval), in blocks
	// alternating with those of ProduceAck and QUICRoundTrip so that both
	// paces see the same seconds of the machine. An idle machine wakes
	// more slowly the longer it idled (on this project's VM the echo's
	// median a quarter and produce→ack's a half more at 3.3 ms than at
	// 1 ms, over eighteen calibrations), so a scenario sending at
	// 300/s meets longer hops than one at 1000/s; the simulator prices a
	// scenario's hops at its pace (AtGap). Absent (calibrations before
	// session 31): every pace is priced as BaseGap's.
	Paced *Paced `json:"paced,omitempty"`
	// QUICStreamNs is the CPU cost of one client stream at the node's side:
	// the process's CPU time over concurrent echoes, per echo, halved
	// because the client runs in the same process.
	QUICStreamNs float64 `json:"quic_stream_ns"`
	// API is the node's HTTP APIs (node/api), one entry per protocol
	// (rest, ws, graphql): a put's submission through the API server until
	// its receipt, and the CPU per submission (see APICost). Absent
	// (calibrations before session 23), or a protocol missing: the
	// simulator estimates it from the QUIC figures (APIOf).
	API []APICost `json:"api,omitempty"`
	// PebbleBackground is Pebble's own work behind the node's writes, its
	// memtable flushes and compactions, which run on a core of their own
	// in chunks (see PebbleBackground). Absent (calibrations before
	// session 23): not modelled.
	PebbleBackground *PebbleBackground `json:"pebble_background,omitempty"`
	// AttestSignNs is signing one attestation (consensus.Attestation.Sign).
	AttestSignNs float64 `json:"attest_sign_ns"`
	// AttestReceiveNs is handling one peer attestation: decoding it and
	// the finality tracker's Receive, signature check included.
	AttestReceiveNs float64 `json:"attest_receive_ns"`
	// TxOverheadNs is the CPU per committed transaction that the
	// operations above do not account for (the Go runtime, the Kafka
	// client and broker per request, receipts, the load generator): a
	// short real run's CPU per committed transaction
	// (resources.cpu_us_per_tx) less what the simulator charges for the
	// same run with this calibration, fitted together with BlockOverheadNs
	// over two runs (see BlockOverheadNs). 0: not measured (calibrate
	// --quick).
	TxOverheadNs float64 `json:"tx_overhead_ns,omitempty"`
	// BlockOverheadNs is the CPU per committed block that the operations
	// above do not account for (the Kafka client's and the embedded
	// broker's requests and syscalls of a leader round and of the
	// replica's fetch, goroutine hand-offs, fsync's kernel time). With
	// TxOverheadNs it is fitted to two short real runs (1000 and 3000
	// puts/s): each run's CPU per second less the simulator's charge is
	// TxOverheadNs per transaction plus BlockOverheadNs per block. 0: not
	// measured, or the fit gave no per-block part.
	BlockOverheadNs float64 `json:"block_overhead_ns,omitempty"`
	// ScheduleLag is the load generator's schedule lag (how late a send
	// left after its intended time, loadgen's lag) in the same two real
	// runs, each at the share of the machine's cores the run's process
	// took: Go runs the pacer's timer when its P next schedules, so the
	// lag grows with the machine's load. Sorted by HostBusy; absent: not
	// measured (calibrate --quick), and the simulator sends on time.
	ScheduleLag []LagPoint `json:"schedule_lag,omitempty"`
	// HopDelay is a network hand-off's delay in the same real runs (a
	// loopback UDP datagram to a goroutine waiting in the netpoller,
	// HopProbe, beside the run's load), at each run's load: the wait of
	// every packet a node or client reads for a P. Sorted by HostBusy;
	// absent: not measured (calibrate --quick, or before session 26), and
	// the simulator adds no stall to the hops.
	HopDelay []LagPoint `json:"hop_delay,omitempty"`
	// ClientWay is a QUIC client's way to its node or back in the same
	// real runs, at each run's load: half of what the client.send span's
	// median takes beyond the node.ingress span's (the request's way in
	// and the accepted answer's way out, both through the load
	// generator's and the node's quic-go loops and goroutines, each a
	// hand-off that waits for a P and, on a machine with idle cores, for a
	// thread to wake). On a shared host the simulator prices a QUIC
	// client's ways with it (ClientWayAt) instead of half the idle echo
	// stretched by the load: at 1000/s on session 33's host the real ways
	// took 232 µs each against an echo of 48 µs. Sorted by HostBusy;
	// absent: not measured (calibrate --quick, or before session 33), and
	// the simulator stretches half the echo.
	ClientWay []WayPoint `json:"client_way,omitempty"`
	// ProduceWay is a node's produce→ack round trip in the same real runs
	// (the node.produce span's median), at each run's load: the embedded
	// broker's answer as a node's producer gets it while the process
	// does its other work. On a shared host the simulator scales every
	// loopback Kafka hand-off (an acknowledgment, a fetch's answer, a
	// leader's wake-up, the first answer of its transaction) and a WAL
	// sync by it over the idle produce→ack (ProduceScaleAt) instead of
	// stretching them by the load: at 1000/s on session 33's host the
	// real node.produce took 70 µs against an idle 24, where the stretch
	// made 43. Sorted by HostBusy; absent: not measured (calibrate
	// --quick, or before session 33), and the simulator stretches them.
	ProduceWay []WayPoint `json:"produce_way,omitempty"`
	// WALSync is a node's write-ahead log sync in the same real runs (the
	// mean of Pebble's WAL syncs in the measured phase, each a write and
	// an fdatasync that one or more commits wait for: the run's
	// cost.wal_sync_mean_us), at each run's load. On a shared host the
	// simulator's group commit syncs for its idle cost plus what the load
	// added to this (WALSyncExtraAt) instead of scaling the idle sync like
	// a Kafka hand-off: at 1000/s on session 45's host strace timed the
	// WAL's fdatasync at 159 µs at the median and 434 on average, against
	// an idle synced commit of 77, and the real replica.commit took 0.43
	// ms against a simulated 0.07. Sorted by HostBusy; absent: not
	// measured (calibrate --quick, or before session 46), and the sync
	// scales as ProduceWay says.
	WALSync []MeanPoint `json:"wal_sync,omitempty"`
	// MerkleWay is a replica's Merkle update in the same real runs (the
	// replica.merkle span's median: storage's Prepare of the block, which
	// yields its P between the tree's heights and waits behind the
	// goroutines that run meanwhile), at each run's load. On a shared host
	// the simulator holds a node's Prepare batch for what the load added
	// to this beyond the batch's CPU (MerkleExtraAt): at 1000/s on
	// session 46's host the real span took 0.71 ms, the model's job 0.26.
	// Sorted by HostBusy; absent: not measured (calibrate --quick, or
	// before session 46), and the batch takes its CPU and its wait for a
	// core only.
	MerkleWay []WayPoint `json:"merkle_way,omitempty"`
	// PeerHandoffNs is what a message between two nodes (an attestation)
	// takes beyond its link's delay on an idle machine: from the sender's
	// broadcast to the receiver's handler, through the peer protocol's
	// send queue and goroutine, quic-go and the network stack at both
	// ends. The simulator stretches it by the receiver's load as every
	// hand-off. Fitted to a short real run of three nodes (calibrate's
	// cluster run, Cluster): the value with which the simulated run's
	// replica.quorum p50 is the real one's. Nil: not
	// measured, and the simulator takes half the QUIC round trip, a
	// client request's way in (until session 30 always; the fitted way was
	// two to five times that on this project's host, see Cluster).
	PeerHandoffNs *float64 `json:"peer_handoff_ns,omitempty"`
	// Cluster is what calibrate measured in its three-node run and what
	// the fitted model made of the same run; absent with PeerHandoffNs.
	Cluster *ClusterFit `json:"cluster,omitempty"`
}

// BaseGap is the time between the starts of the calls whose round trips
// give Ops.ProduceAck, Ops.QUICRoundTrip and Ops.API: a 1000/s workload's
// interval.
const BaseGap = time.Millisecond

// PacedGap is the time between the starts of the calls of Ops.Paced: a
// 300/s workload's interval (make validate-sim's slowest scenarios).
const PacedGap = time.Second / 300

// Paced holds round trips measured at a slower pace than BaseGap (see
// Ops.Paced).
type Paced struct {
	// GapNs is the time between the starts of consecutive calls (PacedGap
	// when calibrate measured it); more than BaseGap.
	GapNs float64 `json:"gap_ns"`
	// ProduceAck and QUICRoundTrip are as Ops's, at this pace.
	ProduceAck    Latency `json:"produce_ack"`
	QUICRoundTrip Latency `json:"quic_round_trip"`
}

// ClusterFit records calibrate's three-node run (3 nodes, quorum 2, 4
// shards, one process, as make validate-sim's cluster scenarios run) and
// the model's figures for it once PeerHandoffNs is fitted, so that a
// reader sees how well the fit closed and how far the model's CPU is from
// the run's (the model charges a replica the whole per-block overhead).
type ClusterFit struct {
	// RateTPS is the run's offered (and committed) puts a second.
	RateTPS float64 `json:"rate_tps"`
	// HostBusy is the share of the machine's cores the run's process
	// took, real and simulated.
	HostBusy    float64 `json:"host_busy"`
	SimHostBusy float64 `json:"sim_host_busy"`
	// QuorumP50Ns is the replica.quorum span's median over every node's
	// copy (a node's attestation sent until its block is final there),
	// real and simulated.
	QuorumP50Ns    float64 `json:"quorum_p50_ns"`
	SimQuorumP50Ns float64 `json:"sim_quorum_p50_ns"`
}

// PeerHandoff is PeerHandoffNs, half the QUIC round trip's median when
// not measured.
func (o *Ops) PeerHandoff() float64 {
	if o.PeerHandoffNs == nil {
		return o.QUICRoundTrip.P50Ns / 2
	}
	return *o.PeerHandoffNs
}

// APICost is one HTTP API protocol's figures, measured through the node's
// API server on loopback over a backend that answers every submission at
// once (accepted, then committed with a receipt of a 20-level proof).
type APICost struct {
	// Protocol is the scenario format's client name: rest, ws or graphql.
	Protocol string `json:"protocol"`
	// RoundTrip is one submission at a time, from the request until its
	// receipt (REST: POST /v1/tx?wait=committed, its streamed events;
	// WebSocket: a submit message on an open connection, its accepted and
	// committed messages; GraphQL: the submit mutation, answered once).
	RoundTrip Latency `json:"round_trip"`
	// Accepted is the same submissions until their accepted answer
	// (GraphQL's, answered once, until that answer): the request's way to
	// the node and the accepted answer's back, where RoundTrip adds the
	// receipt's encoding, sending and parsing after it. Absent
	// (calibrations before session 31): taken as RoundTrip.
	Accepted *Latency `json:"accepted,omitempty"`
	// Loaded is the same protocol's ways in a loaded process: calibrate's
	// API run (one node, the three protocols' clients side by side, at
	// apiRunRate each). Absent: not measured (calibrate --quick, or before
	// session 36), and the simulator stretches the idle ways by the load.
	Loaded *APILoaded `json:"loaded,omitempty"`
	// RequestNs is the CPU of one submission at the node's side: the
	// process's CPU time over 64 concurrent callers, per submission,
	// halved as for QUIC (the client runs in the same process), less the
	// server's signature check (Ed25519VerifyNs), which the simulator
	// charges on its own.
	RequestNs float64 `json:"request_ns"`
}

// APILoaded is an HTTP API protocol's ways between its clients and the
// node in a real run (the medians over its traced transactions), at the
// share of the machine's cores the run's process took. Under load a way
// is goroutine hand-offs, each waiting for a P, more than the protocol's
// own work: on session 35's host the REST and WebSocket requests took
// about 90 µs each in the api validation's runs, where one at a time on
// an idle machine the WebSocket's took half the REST one's.
type APILoaded struct {
	// HostBusy is the share of the machine's cores the run's process took
	// (recorded, not used: the ways hardly follow the load, LoadedWay).
	HostBusy float64 `json:"host_busy"`
	// RequestWayNs is the request's way: from the client's send (the
	// client.send span's start) to the node's admission (node.ingress's
	// start).
	RequestWayNs float64 `json:"request_way_ns"`
	// AcceptedWayNs is the accepted answer's way: from the node's
	// produce→ack (node.produce's end) to the client holding it
	// (client.send's end). 0 for GraphQL, whose submission is answered
	// once.
	AcceptedWayNs float64 `json:"accepted_way_ns,omitempty"`
	// ReceiptWayNs is the receipt's way: from the block's commit at the
	// node (replica.commit's end) to the client holding the receipt
	// (client.commit_wait's end).
	ReceiptWayNs float64 `json:"receipt_way_ns"`
}

// PebbleBackground prices the flushes and compactions of a node's Pebble.
type PebbleBackground struct {
	// MemtableBytes is the node's memtable (storage.Options.MemTableBytes'
	// default): a flush follows each time that much came in.
	MemtableBytes int64 `json:"memtable_bytes"`
	// NsPerMiB is the CPU per MiB a flush or a compaction writes: since
	// session 35 measured in the node itself, from a CPU profile of
	// calibrate's end-to-end runs (the samples in Pebble's flush and
	// compaction goroutines over the tables they wrote), when those runs
	// compacted and sampled enough of it; else (calibrate --quick, older
	// files) on one core with the node's table options and fresh 32-byte
	// entries: on disk, the median of three measurements (in memory until
	// session 34). On session 35's host the node's took 3.1–3.8 ms per
	// MiB, the one-core measurement 1.5–1.9.
	NsPerMiB float64 `json:"ns_per_mib"`
	// WriteAmp is what the flushes and compactions wrote over what the
	// flushes wrote, in the same measurement (at least 1): each flushed
	// byte is written WriteAmp − 1 times more by compactions.
	WriteAmp float64 `json:"write_amp"`
	// InBytesPerTx is what comes into Pebble per committed put (its WAL
	// bytes: cost.pebble_bytes_per_tx / cost.pebble_write_amp of the
	// end-to-end runs, their mean). 0 (calibrate --quick): the simulator
	// uses the block's own size, which leaves out the node's other
	// records.
	InBytesPerTx float64 `json:"in_bytes_per_tx,omitempty"`
	// InBytesPerFlush is what came in per full memtable flushed in the
	// same measurement: less than MemtableBytes, as the memtable's arena
	// holds each entry with its skiplist node. FlushedPerIn is what the
	// flushes wrote per byte that came in (tables hold filters and indexes
	// besides the entries), and FlushesPerCompaction how many memtables
	// were flushed per compaction on average. Memtables are counted as the
	// arena bytes the flushes took over MemtableBytes (since session 27;
	// before, flush jobs, one of which may flush several memtables). 0
	// (calibrations before session 26): a flush every MemtableBytes,
	// writing as much, and a compaction every fourth.
	InBytesPerFlush      float64 `json:"in_bytes_per_flush,omitempty"`
	FlushedPerIn         float64 `json:"flushed_per_in,omitempty"`
	FlushesPerCompaction float64 `json:"flushes_per_compaction,omitempty"`
	// BaseMaxBytes is the node's Pebble's LBaseMaxBytes: a compaction
	// rewrites the base level with what L0 flushed, until the base level
	// holds this much and Pebble moves it up a level. 0 (calibrations
	// before session 34): a compaction writes what the flushes since the
	// last one wrote times WriteAmp − 1.
	BaseMaxBytes int64 `json:"base_max_bytes,omitempty"`
}

// LagPoint is a delay's distribution measured at a load: the schedule
// lag's (Ops.ScheduleLag) or a network hand-off's (Ops.HopDelay).
type LagPoint struct {
	// HostBusy is the share of the machine's cores the run's process
	// took (resources.cpu_pct_mean / 100 / cores), in (0, 1].
	HostBusy float64 `json:"host_busy"`
	P50Ns    float64 `json:"p50_ns"`
	P99Ns    float64 `json:"p99_ns"`
	// P90Ns and P999Ns are the 90th and 99.9th percentiles, the shape of
	// the tail (Quantile). 0: not measured (schedule lag points before
	// session 26, which recorded p50 and p99 only).
	P90Ns  float64 `json:"p90_ns,omitempty"`
	P999Ns float64 `json:"p999_ns,omitempty"`
}

// WayPoint is a latency's median measured at a load (Ops.ClientWay).
type WayPoint struct {
	// HostBusy is the share of the machine's cores the run's process
	// took, in (0, 1], as LagPoint's.
	HostBusy float64 `json:"host_busy"`
	P50Ns    float64 `json:"p50_ns"`
}

// MeanPoint is a latency's mean at a host busy share (Ops.WALSync).
type MeanPoint struct {
	// HostBusy is the share of the machine's cores the run's process
	// took, in (0, 1], as LagPoint's.
	HostBusy float64 `json:"host_busy"`
	MeanNs   float64 `json:"mean_ns"`
}

// loadPoint is a latency measured at a host busy share, a WayPoint's
// median or a MeanPoint's mean: what wayAt interpolates.
type loadPoint interface {
	WayPoint | MeanPoint
	at() (busy, ns float64)
}

func (p WayPoint) at() (float64, float64)  { return p.HostBusy, p.P50Ns }
func (p MeanPoint) at() (float64, float64) { return p.HostBusy, p.MeanNs }

// checkPoints reports through bad the points of field (ops.<field>) whose
// load is not in (0, 1] above the one before, or whose latency (named
// value in the file) is not a positive cost.
func checkPoints[P loadPoint](field, value string, pts []P, bad func(string, ...any)) {
	prev := 0.0
	for i, p := range pts {
		busy, v := p.at()
		name := fmt.Sprintf("ops.%s[%d]", field, i)
		if !(busy > 0 && busy <= 1) || (i > 0 && busy <= prev) {
			bad("%s.host_busy: %v is not in (0, 1] above the previous point's", name, busy)
		}
		if !(v > 0) || math.IsInf(v, 0) {
			bad("%s.%s: %v is not a positive cost", name, value, v)
		}
		prev = busy
	}
}

// HasTail reports whether the point has the percentiles Quantile needs.
func (p LagPoint) HasTail() bool { return p.P90Ns > 0 && p.P999Ns > 0 }

// Quantile is the delay's u-quantile (ns) for u in [0, 1) from the point's
// percentiles (HasTail): linear from 0 to the p50 below it, and above it
// a power law between successive percentiles — log lag linear in
// log(1 − u) through p50, p90, p99 and p99.9 —, held at the p99.9 beyond
// it (a run of a few tens of seconds measures little past it: the
// longest lag of make run's 40 s was 1.3 times its p99.9). A heavy tail
// (the rare stalls of a busy Go process: a P held in a system call, a
// long non-preemptible stretch, a flush) is so drawn as measured, not as
// a log-normal through p50 and p99 would put it.
func (p LagPoint) Quantile(u float64) float64 {
	switch {
	case !(u > 0):
		return 0
	case u <= 0.5:
		return p.P50Ns * u / 0.5
	}
	if u >= 0.999 {
		return p.P999Ns
	}
	knots := [...]struct{ q, x float64 }{{0.5, p.P50Ns}, {0.9, p.P90Ns}, {0.99, p.P99Ns}, {0.999, p.P999Ns}}
	i := 1
	for i < len(knots)-1 && u > knots[i].q {
		i++
	}
	a, b := knots[i-1], knots[i]
	if !(a.x > 0) || !(b.x >= a.x) {
		return max(a.x, b.x)
	}
	f := math.Log((1-u)/(1-a.q)) / math.Log((1-b.q)/(1-a.q))
	return a.x * math.Pow(b.x/a.x, f)
}

// SizeCost is a cost at a size (bytes for hashes, entries for blocks and
// batches).
type SizeCost struct {
	Size   int     `json:"size"`
	CostNs float64 `json:"cost_ns"`
}

// MerkleCost is a Merkle batch update's cost by block and tree size (keys
// in the tree before the block).
type MerkleCost struct {
	BlockSize int     `json:"block_size"`
	TreeSize  int     `json:"tree_size"`
	CostNs    float64 `json:"cost_ns"`
}

// PebbleCost is a Pebble batch commit's cost by batch size in bytes.
type PebbleCost struct {
	SizeBytes int     `json:"size_bytes"`
	Sync      bool    `json:"sync"`
	CostNs    float64 `json:"cost_ns"`
}

// Latency summarises a sampled round trip.
type Latency struct {
	P50Ns  float64 `json:"p50_ns"`
	P99Ns  float64 `json:"p99_ns"`
	MeanNs float64 `json:"mean_ns"`
}

// Encode returns c as indented JSON with a trailing newline.
func (c *Calibration) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Decode strictly decodes and validates a calibration file: unknown
// fields, trailing data, another version, a missing operation or a cost
// that is not positive fail with an error wrapping ErrFormat.
func Decode(data []byte) (*Calibration, error) {
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrFormat, len(data), MaxFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Calibration
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrFormat, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrFormat)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Load reads and decodes the calibration file at path.
func Load(path string) (*Calibration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("calib: read %s: %w", path, err)
	}
	c, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate checks that every operation is present with positive, finite
// costs and sizes, tables sorted.
func (c *Calibration) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	pos := func(name string, v float64) {
		if !(v > 0) || math.IsInf(v, 0) {
			bad("%s: %v is not a positive cost", name, v)
		}
	}
	if c.Version != Version {
		bad("version %d, want %d", c.Version, Version)
	}
	if c.Machine.Cores < 1 {
		bad("machine.cores: %d < 1", c.Machine.Cores)
	}
	o := &c.Ops
	pos("ops.poseidon2_ns", o.Poseidon2Ns)
	pos("ops.ed25519_verify_ns", o.Ed25519VerifyNs)
	pos("ops.ed25519_sign_ns", o.Ed25519SignNs)
	pos("ops.produce_ceiling_tps", o.ProduceCeilingTPS)
	pos("ops.quic_stream_ns", o.QUICStreamNs)
	pos("ops.attest_sign_ns", o.AttestSignNs)
	pos("ops.attest_receive_ns", o.AttestReceiveNs)
	if o.TxOverheadNs < 0 || math.IsNaN(o.TxOverheadNs) || math.IsInf(o.TxOverheadNs, 0) {
		bad("ops.tx_overhead_ns: %v is not a cost", o.TxOverheadNs)
	}
	if o.BlockOverheadNs < 0 || math.IsNaN(o.BlockOverheadNs) || math.IsInf(o.BlockOverheadNs, 0) {
		bad("ops.block_overhead_ns: %v is not a cost", o.BlockOverheadNs)
	}
	if v := o.PeerHandoffNs; v != nil && (!(*v >= 0) || math.IsInf(*v, 0)) {
		bad("ops.peer_handoff_ns: %v is not a cost", *v)
	}
	if f := o.Cluster; f != nil {
		for name, v := range map[string]float64{"rate_tps": f.RateTPS, "host_busy": f.HostBusy, "sim_host_busy": f.SimHostBusy,
			"quorum_p50_ns": f.QuorumP50Ns, "sim_quorum_p50_ns": f.SimQuorumP50Ns} {
			if !(v >= 0) || math.IsInf(v, 0) {
				bad("ops.cluster.%s: %v is not a figure", name, v)
			}
		}
	}
	delays := func(field string, pts []LagPoint) {
		for i, p := range pts {
			name := fmt.Sprintf("ops.%s[%d]", field, i)
			if !(p.HostBusy > 0 && p.HostBusy <= 1) || (i > 0 && p.HostBusy <= pts[i-1].HostBusy) {
				bad("%s.host_busy: %v is not in (0, 1] above the previous point's", name, p.HostBusy)
			}
			pos(name+".p50_ns", p.P50Ns)
			pos(name+".p99_ns", p.P99Ns)
			if p.P99Ns < p.P50Ns {
				bad("%s: p99_ns %v below p50_ns %v", name, p.P99Ns, p.P50Ns)
			}
			if p.P90Ns != 0 || p.P999Ns != 0 {
				if !(p.P90Ns >= p.P50Ns && p.P90Ns <= p.P99Ns && p.P999Ns >= p.P99Ns) || math.IsInf(p.P999Ns, 0) {
					bad("%s: p90_ns %v and p999_ns %v are not in order with p50_ns %v and p99_ns %v", name, p.P90Ns, p.P999Ns, p.P50Ns, p.P99Ns)
				}
			}
		}
	}
	delays("schedule_lag", o.ScheduleLag)
	delays("hop_delay", o.HopDelay)
	checkPoints("client_way", "p50_ns", o.ClientWay, bad)
	checkPoints("produce_way", "p50_ns", o.ProduceWay, bad)
	checkPoints("merkle_way", "p50_ns", o.MerkleWay, bad)
	checkPoints("wal_sync", "mean_ns", o.WALSync, bad)
	if b := o.PebbleBackground; b != nil {
		if b.MemtableBytes < 1<<10 {
			bad("ops.pebble_background.memtable_bytes: %d < 1 KiB", b.MemtableBytes)
		}
		pos("ops.pebble_background.ns_per_mib", b.NsPerMiB)
		if !(b.WriteAmp >= 1) || math.IsInf(b.WriteAmp, 0) {
			bad("ops.pebble_background.write_amp: %v is not at least 1", b.WriteAmp)
		}
		for name, v := range map[string]float64{"in_bytes_per_tx": b.InBytesPerTx, "in_bytes_per_flush": b.InBytesPerFlush,
			"flushed_per_in": b.FlushedPerIn, "flushes_per_compaction": b.FlushesPerCompaction} {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				bad("ops.pebble_background.%s: %v is not a size", name, v)
			}
		}
		if b.BaseMaxBytes < 0 || (b.BaseMaxBytes > 0 && b.BaseMaxBytes < b.MemtableBytes) {
			bad("ops.pebble_background.base_max_bytes: %d is neither 0 nor at least a memtable", b.BaseMaxBytes)
		}
	}
	seen := map[string]bool{}
	for i, a := range o.API {
		name := fmt.Sprintf("ops.api[%d]", i)
		if _, ok := apiEstimate[a.Protocol]; !ok || seen[a.Protocol] {
			bad("%s.protocol: %q is not rest, ws or graphql, or repeats", name, a.Protocol)
		}
		seen[a.Protocol] = true
		pos(name+".request_ns", a.RequestNs)
		pos(name+".round_trip.p50_ns", a.RoundTrip.P50Ns)
		pos(name+".round_trip.p99_ns", a.RoundTrip.P99Ns)
		pos(name+".round_trip.mean_ns", a.RoundTrip.MeanNs)
		if l := a.Accepted; l != nil {
			pos(name+".accepted.p50_ns", l.P50Ns)
			pos(name+".accepted.p99_ns", l.P99Ns)
			pos(name+".accepted.mean_ns", l.MeanNs)
			if l.P50Ns > a.RoundTrip.P50Ns {
				bad("%s.accepted.p50_ns: %v above the round trip's %v", name, l.P50Ns, a.RoundTrip.P50Ns)
			}
		}
		if l := a.Loaded; l != nil {
			if !(l.HostBusy > 0) || l.HostBusy > 1 {
				bad("%s.loaded.host_busy: %v is not a share of the cores", name, l.HostBusy)
			}
			pos(name+".loaded.request_way_ns", l.RequestWayNs)
			pos(name+".loaded.receipt_way_ns", l.ReceiptWayNs)
			if !(l.AcceptedWayNs >= 0) || math.IsInf(l.AcceptedWayNs, 0) {
				bad("%s.loaded.accepted_way_ns: %v is not a latency", name, l.AcceptedWayNs)
			}
		}
	}
	latencies := map[string]Latency{"ops.produce_ack": o.ProduceAck, "ops.quic_round_trip": o.QUICRoundTrip}
	if p := o.Paced; p != nil {
		if !(p.GapNs > float64(BaseGap)) || math.IsInf(p.GapNs, 0) {
			bad("ops.paced.gap_ns: %v is not a gap longer than %v", p.GapNs, BaseGap)
		}
		latencies["ops.paced.produce_ack"], latencies["ops.paced.quic_round_trip"] = p.ProduceAck, p.QUICRoundTrip
	}
	for name, l := range latencies {
		pos(name+".p50_ns", l.P50Ns)
		pos(name+".p99_ns", l.P99Ns)
		pos(name+".mean_ns", l.MeanNs)
	}
	sizes := func(name string, t []SizeCost) {
		if len(t) == 0 {
			bad("%s: no entries", name)
		}
		for i, p := range t {
			pos(fmt.Sprintf("%s[%d].cost_ns", name, i), p.CostNs)
			if p.Size < 0 || (i > 0 && p.Size <= t[i-1].Size) {
				bad("%s[%d].size: %d is not above the previous size", name, i, p.Size)
			}
		}
	}
	sizes("ops.hash_bytes", o.HashBytes)
	sizes("ops.state_block", o.StateBlock)
	sizes("ops.ed25519_batch", o.Ed25519Batch)
	if len(o.StateRead) > 0 {
		sizes("ops.state_read", o.StateRead)
	}
	if len(o.ProofVerify) > 0 {
		sizes("ops.proof_verify", o.ProofVerify)
	}
	if len(o.MerkleBlock) == 0 {
		bad("ops.merkle_block: no entries")
	}
	for i, p := range o.MerkleBlock {
		pos(fmt.Sprintf("ops.merkle_block[%d].cost_ns", i), p.CostNs)
		if p.BlockSize < 1 || p.TreeSize < 0 {
			bad("ops.merkle_block[%d]: block_size %d, tree_size %d", i, p.BlockSize, p.TreeSize)
		}
	}
	twice := map[[2]int]bool{}
	for i, p := range o.StateBlockTree {
		pos(fmt.Sprintf("ops.state_block_tree[%d].cost_ns", i), p.CostNs)
		if p.BlockSize < 1 || p.TreeSize < 1 {
			bad("ops.state_block_tree[%d]: block_size %d, tree_size %d", i, p.BlockSize, p.TreeSize)
		}
		if k := [2]int{p.BlockSize, p.TreeSize}; twice[k] {
			bad("ops.state_block_tree[%d]: block_size %d, tree_size %d given twice", i, p.BlockSize, p.TreeSize)
		} else {
			twice[k] = true
		}
	}
	var syncs [2]int
	for i, p := range o.PebbleCommit {
		pos(fmt.Sprintf("ops.pebble_commit[%d].cost_ns", i), p.CostNs)
		if p.SizeBytes < 0 {
			bad("ops.pebble_commit[%d].size_bytes: %d < 0", i, p.SizeBytes)
		}
		syncs[b2i(p.Sync)]++
	}
	if syncs[0] == 0 || syncs[1] == 0 {
		bad("ops.pebble_commit: needs entries with and without sync")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrFormat, err)
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// interpolate is the cost at size on a table sorted by size: linear
// between points and beyond the last two, along the first segment below
// the first point (never below half its cost).
func interpolate(t []SizeCost, size float64) float64 {
	switch {
	case len(t) == 0:
		return 0
	case len(t) == 1:
		if t[0].Size > 0 && size > float64(t[0].Size) {
			return t[0].CostNs * size / float64(t[0].Size)
		}
		return t[0].CostNs
	case size <= float64(t[0].Size):
		// Below the table: along its first segment, never below half the
		// first point's cost.
		a, b := t[0], t[1]
		f := (size - float64(a.Size)) / float64(b.Size-a.Size)
		return max(a.CostNs+f*(b.CostNs-a.CostNs), a.CostNs/2)
	}
	i := sort.Search(len(t), func(i int) bool { return float64(t[i].Size) >= size })
	if i == len(t) {
		i = len(t) - 1
	}
	a, b := t[i-1], t[i]
	f := (size - float64(a.Size)) / float64(b.Size-a.Size)
	return max(a.CostNs+f*(b.CostNs-a.CostNs), 0)
}

// interpolateLog is interpolate over log2(size+1) for costs that grow
// with a tree's depth, such as a read's by the keys in the tree: each
// point's cost is taken as at least every smaller tree's (a larger tree
// never costs less; a measured dip is noise), straight on beyond the
// table's last two points, and below the first point along the first two
// (never below half the first point's cost).
func interpolateLog(t []SizeCost, size float64) float64 {
	if len(t) < 2 {
		return interpolate(t, size)
	}
	x := func(n float64) float64 { return math.Log2(max(n, 0) + 1) }
	i := sort.Search(len(t), func(i int) bool { return float64(t[i].Size) >= size })
	i = min(max(i, 1), len(t)-1)
	var ca, cb float64 // the running maxima at points i-1 and i
	for j := range i + 1 {
		ca, cb = cb, max(cb, t[j].CostNs)
	}
	a, b := t[i-1], t[i]
	f := (x(size) - x(float64(a.Size))) / (x(float64(b.Size)) - x(float64(a.Size)))
	return max(ca+f*(cb-ca), t[0].CostNs/2)
}

// proofLevels estimates the levels of a proof in a sparse Merkle tree of
// n random keys: about log2(n) + 1.
func proofLevels(n int) float64 { return math.Log2(float64(max(n, 1))) + 1 }

// StateReadNs is a node's read of a state key with its proof on a shard
// whose tree holds treeKeys keys: Ops.StateRead, or without it an
// estimate, a Pebble no-sync commit of 1 KiB per level of the proof (the
// read's Pebble lookup and tree walk; within 10% of the reads measured on
// trees of 1k to 100k keys on the machine of session 22).
func (c *Calibration) StateReadNs(treeKeys int) float64 {
	if len(c.Ops.StateRead) > 0 {
		return interpolateLog(c.Ops.StateRead, float64(treeKeys))
	}
	return proofLevels(treeKeys) * c.PebbleCommitNs(1024, false)
}

// ProofVerifyNs is a client's check of a read's answer on a shard whose
// tree holds treeKeys keys: Ops.ProofVerify, or without it the check's
// hashes, HashBytes of the key and of a 32-byte value and two Poseidon
// 2-to-1 per level (storage.VerifyProof; within 10% of the checks measured
// on trees of 1k to 100k keys on the machine of session 22).
func (c *Calibration) ProofVerifyNs(treeKeys int) float64 {
	if len(c.Ops.ProofVerify) > 0 {
		return interpolateLog(c.Ops.ProofVerify, float64(treeKeys))
	}
	return 2*c.HashBytesNs(32) + 2*proofLevels(treeKeys)*c.Ops.Poseidon2Ns
}

// APIPrice is how the simulator prices an HTTP API protocol's
// submissions (Calibration.APIOf).
type APIPrice struct {
	// RoundTripNs and AcceptedNs are the submission's round trips to its
	// receipt and to its accepted answer (p50s), less the signature check
	// in them, which the simulator charges on its own as QUIC's echo has
	// none; never below half the QUIC echo, and AcceptedNs never above
	// RoundTripNs.
	RoundTripNs, AcceptedNs float64
	// RequestNs is the CPU per submission at the node.
	RequestNs float64
	// Estimated says the figures are estimates from QUIC's (apiEstimate):
	// the calibration has no entry for the protocol.
	Estimated bool
	// Loaded is the protocol's ways measured in a loaded process (nil:
	// not measured).
	Loaded *APILoaded
}

// APILeg names one of a submission's ways between its client and the
// node.
type APILeg int

const (
	LegRequest  APILeg = iota // the request, to the node's admission
	LegAccepted               // the accepted answer, from the produce→ack
	LegReceipt                // the receipt, from the block's commit
)

// LoadedWay is the protocol's way leg when calibrate measured it under
// load (Loaded): that way, at every load. The ways of a loaded process
// hardly follow its load: on session 33's host a QUIC client's way took
// 133, 243 and 142 µs at 0.21, 0.43 and 0.78 of the cores busy, and on
// session 36's calibrate's API run at 0.25 took the REST and WebSocket
// requests 92 and 94 µs where the api validation's runs at 0.42 took 90
// and 95; interpolated from the idle way and stretched beyond the run's
// load, as ClientWayAt does, they came out 2.2 times that at 0.42. False
// without the measurement (or a GraphQL accepted answer, which has none).
func (p APIPrice) LoadedWay(leg APILeg) (float64, bool) {
	l := p.Loaded
	if l == nil {
		return 0, false
	}
	var v float64
	switch leg {
	case LegRequest:
		v = l.RequestWayNs
	case LegAccepted:
		v = l.AcceptedWayNs
	case LegReceipt:
		v = l.ReceiptWayNs
	}
	return v, v > 0
}

// APIOf prices an HTTP API protocol's submissions: from Ops.API's entry
// (its accepted round trip the full one when it has none), or without one
// an estimate, the QUIC figures times the ratios measured here
// (apiEstimate), the accepted round trip then the full one.
func (c *Calibration) APIOf(protocol string) APIPrice {
	floor := c.Ops.QUICRoundTrip.P50Ns / 2
	for _, a := range c.Ops.API {
		if a.Protocol == protocol {
			rt := max(a.RoundTrip.P50Ns-c.Ops.Ed25519VerifyNs, floor)
			acc := rt
			if a.Accepted != nil {
				acc = min(max(a.Accepted.P50Ns-c.Ops.Ed25519VerifyNs, floor), rt)
			}
			return APIPrice{RoundTripNs: rt, AcceptedNs: acc, RequestNs: a.RequestNs, Loaded: c.pooledRequest(a)}
		}
	}
	r := apiEstimate[protocol]
	rt := r[0] * c.Ops.QUICRoundTrip.P50Ns
	return APIPrice{RoundTripNs: rt, AcceptedNs: rt, RequestNs: r[1] * c.Ops.QUICStreamNs, Estimated: true}
}

// pooledRequest is a's loaded ways with its request's way the protocol's
// own CPU (RequestNs) plus the hand-offs common to the protocols: the
// median over the measured protocols of their request ways less their
// CPU. calibrate's API run fires the three clients' requests at the same
// instants, and which of them a burst serves first is that run's: its
// way is the burst's first hand-off, the others wait for a core behind
// it. Across session 36's 24 calibrations the WebSocket request took
// 34–118 µs and the REST one 49–145, where over the api validation's 24
// real runs of sessions 33–35 both took 90–95 µs; less their CPU, the
// ways of the two not served first lay within 20 µs of each other (about
// 60–85 µs) and the first's fell to 25 or less. The median of three drops
// the first.
// nil when a has no loaded ways.
func (c *Calibration) pooledRequest(a APICost) *APILoaded {
	if a.Loaded == nil {
		return nil
	}
	var common []float64
	for _, b := range c.Ops.API {
		if b.Loaded != nil && b.Loaded.RequestWayNs > 0 {
			common = append(common, b.Loaded.RequestWayNs-b.RequestNs)
		}
	}
	l := *a.Loaded
	if h := reports.Median(common); h > 0 {
		l.RequestWayNs = a.RequestNs + h
	}
	return &l
}

// AtGap is the calibration as it prices work whose calls start gap apart:
// c itself when gap is BaseGap or less or c has no Ops.Paced; else a copy
// whose produce→ack and QUIC round trips lie between the BaseGap figures
// and Ops.Paced's, linearly in the gap (Paced's beyond Paced.GapNs: no
// extrapolation either way), and whose HTTP API round trips (measured at
// BaseGap only) grow as the QUIC round trip's p50 does. A fitted
// PeerHandoffNs is kept: calibrate fits it on a 300/s run with the
// calibration at that pace.
func (c *Calibration) AtGap(gap time.Duration) *Calibration {
	p := c.Ops.Paced
	if p == nil || gap <= BaseGap {
		return c
	}
	w := min((float64(gap)-float64(BaseGap))/(p.GapNs-float64(BaseGap)), 1)
	between := func(a, b Latency) Latency {
		return Latency{P50Ns: a.P50Ns + w*(b.P50Ns-a.P50Ns), P99Ns: a.P99Ns + w*(b.P99Ns-a.P99Ns), MeanNs: a.MeanNs + w*(b.MeanNs-a.MeanNs)}
	}
	out := *c
	out.Ops.ProduceAck = between(c.Ops.ProduceAck, p.ProduceAck)
	out.Ops.QUICRoundTrip = between(c.Ops.QUICRoundTrip, p.QUICRoundTrip)
	if len(c.Ops.API) > 0 {
		r := out.Ops.QUICRoundTrip.P50Ns / c.Ops.QUICRoundTrip.P50Ns
		out.Ops.API = slices.Clone(c.Ops.API)
		scale := func(l *Latency) { l.P50Ns, l.P99Ns, l.MeanNs = l.P50Ns*r, l.P99Ns*r, l.MeanNs*r }
		for i := range out.Ops.API {
			a := &out.Ops.API[i]
			scale(&a.RoundTrip)
			if a.Accepted != nil {
				acc := *a.Accepted
				scale(&acc)
				a.Accepted = &acc
			}
		}
	}
	return &out
}

// apiEstimate is, per HTTP API protocol, its submission round trip (less
// the signature check) and CPU per request as multiples of QUIC's echo
// round trip and stream cost: the mean of two calibrations on this
// project's 2-core machine (2026-12-04; REST 1.82 and 1.65, 3.18 and
// 4.21; WebSocket 1.02 and 1.53, 2.30 and 4.57; GraphQL 2.18 and 2.37,
// 7.85 and 8.81).
var apiEstimate = map[string][2]float64{
	"rest":    {1.7, 3.7},
	"ws":      {1.3, 3.4},
	"graphql": {2.3, 8.3},
}

// HashBytesNs is the cost of HashBytes of n bytes.
func (c *Calibration) HashBytesNs(n int) float64 { return interpolate(c.Ops.HashBytes, float64(n)) }

// StateBlockNs is a replica's storage commit (without fsync) of a block of
// n puts.
func (c *Calibration) StateBlockNs(n int) float64 {
	if n <= 0 {
		return 0
	}
	return interpolate(c.Ops.StateBlock, float64(n))
}

// StateModel prices a replica's storage commit by block size and the
// keys already in the shard's tree (StateModel.Ns), for callers that price
// many blocks.
type StateModel struct {
	trees []int        // ascending; the first is 0: state_block, a tree of about the block's keys
	rows  [][]SizeCost // per tree: cost by block size
}

// StateModel tabulates Ops.StateBlock and Ops.StateBlockTree by tree
// size; its Ns says false when StateBlockTree is absent.
func (c *Calibration) StateModel() StateModel {
	m := StateModel{trees: []int{0}, rows: [][]SizeCost{c.Ops.StateBlock}}
	pts := slices.Clone(c.Ops.StateBlockTree)
	slices.SortFunc(pts, func(a, b MerkleCost) int { return cmp.Or(a.TreeSize-b.TreeSize, a.BlockSize-b.BlockSize) })
	for _, p := range pts {
		if last := len(m.trees) - 1; m.trees[last] != p.TreeSize {
			m.trees = append(m.trees, p.TreeSize)
			m.rows = append(m.rows, nil)
		}
		last := len(m.rows) - 1
		m.rows[last] = append(m.rows[last], SizeCost{Size: p.BlockSize, CostNs: p.CostNs})
	}
	return m
}

// Ns is a replica's storage commit (without fsync) of a block of n puts
// into a shard whose tree holds tree keys: each measured tree's cost at n
// (interpolate over its block sizes; tree 0 is state_block), then
// interpolateLog over the trees (linear in log2 of the tree's keys, never
// less for a larger tree, straight on beyond the largest measured tree).
// False when the calibration has no StateBlockTree.
func (m StateModel) Ns(n, tree int) (float64, bool) {
	if len(m.trees) < 2 {
		return 0, false
	}
	if n <= 0 {
		return 0, true
	}
	var buf [8]SizeCost // no allocation per block for the usual few trees
	at := buf[:0]
	for i, t := range m.trees {
		at = append(at, SizeCost{Size: t, CostNs: interpolate(m.rows[i], float64(n))})
	}
	return interpolateLog(at, float64(max(tree, 0))), true
}

// VerifyBatchNs is the cost of verifying n signatures in one batch (one
// signature: a single verification).
func (c *Calibration) VerifyBatchNs(n int) float64 {
	if n <= 0 {
		return 0
	}
	if n == 1 {
		return c.Ops.Ed25519VerifyNs
	}
	return interpolate(c.Ops.Ed25519Batch, float64(n))
}

// MaxLagBusy bounds the load LagAt extrapolates to (as the simulator's
// shared work never takes more than 90% of the cores); calibrate records
// no schedule lag measured above it.
const MaxLagBusy = 0.9

// LagAt is the schedule lag's p50 and p99 (ns) at a host busy share busy
// (LagPointAt).
func (c *Calibration) LagAt(busy float64) (p50, p99 float64) {
	p := c.LagPointAt(busy)
	return p.P50Ns, p.P99Ns
}

// LagPointAt is the schedule lag at a host busy share busy: each
// percentile piecewise linear in the load's queueing factor
// busy/(1−busy) through the ScheduleLag points, from no lag on an idle
// host, and along the last segment beyond the last point, never below
// that point (busy at most 0.9: a p50 that fell between the points, as
// the pacer sends more per wake-up at a higher rate, is held). The tail's
// percentiles (p90, p99.9) are interpolated only when every point has
// them (else 0: LagPoint.HasTail is false). Zero without points.
func (c *Calibration) LagPointAt(busy float64) LagPoint { return delayAt(c.Ops.ScheduleLag, busy) }

// HopDelayAt is a network hand-off's delay at a host busy share busy,
// from the HopDelay points as LagPointAt's from the ScheduleLag points.
func (c *Calibration) HopDelayAt(busy float64) LagPoint { return delayAt(c.Ops.HopDelay, busy) }

// delayAt is LagPointAt over the points pts.
func delayAt(pts []LagPoint, busy float64) LagPoint {
	if len(pts) == 0 || !(busy > 0) {
		return LagPoint{}
	}
	tail := !slices.ContainsFunc(pts, func(p LagPoint) bool { return !p.HasTail() })
	x := queueing(busy)
	x0, prev := 0.0, LagPoint{}
	for i, p := range pts {
		x1 := queueing(p.HostBusy)
		if x <= x1 || i == len(pts)-1 {
			f := 1.0
			if x1 > x0 {
				f = (x - x0) / (x1 - x0)
			}
			at := func(a, b float64) float64 {
				v := max(a+f*(b-a), 0)
				if x > x1 { // beyond the last point: never below it
					v = max(v, b)
				}
				return v
			}
			out := LagPoint{HostBusy: min(busy, MaxLagBusy), P50Ns: at(prev.P50Ns, p.P50Ns), P99Ns: at(prev.P99Ns, p.P99Ns)}
			if tail {
				out.P90Ns = min(max(at(prev.P90Ns, p.P90Ns), out.P50Ns), out.P99Ns)
				out.P999Ns = max(at(prev.P999Ns, p.P999Ns), out.P99Ns)
			}
			return out
		}
		x0, prev = x1, p
	}
	return LagPoint{}
}

// ClientWayAt is a QUIC client's way to its node or back at a host busy
// share busy, when the calibration measured it (Ops.ClientWay): piecewise
// linear in the load's queueing factor busy/(1−busy) through the points,
// from idle (the way on an idle machine, half the echo at the
// scenario's pace) at no load, and beyond the last point as that point
// stretched by the factor (busy at most MaxLagBusy), so that a way
// measured at one load grows as every stretched hand-off does. The
// points need not rise with the load: on an idle machine a hand-off
// waits for a thread to wake, so the ways at 300/s may be longer than at
// 1000/s. False without points.
func (c *Calibration) ClientWayAt(busy, idle float64) (float64, bool) {
	return wayAt(c.Ops.ClientWay, busy, idle)
}

// ProduceScaleAt is how many times its idle latency a loopback Kafka
// hand-off takes at a host busy share busy, when the calibration measured
// the produce→ack under load (Ops.ProduceWay): the produce→ack there, as
// ClientWayAt interpolates the client ways from idle at no load, over
// idle (the produce→ack on an idle machine at the scenario's pace).
// False without points or without an idle latency.
func (c *Calibration) ProduceScaleAt(busy, idle float64) (float64, bool) {
	v, ok := wayAt(c.Ops.ProduceWay, busy, idle)
	if !ok || !(idle > 0) {
		return 0, false
	}
	return v / idle, true
}

// WALSyncExtraAt is how much longer than on an idle machine a node's WAL
// sync takes at a host busy share busy, when the calibration measured it
// under load (Ops.WALSync): the mean sync there, interpolated from idle
// at no load as ClientWayAt interpolates the client ways, less idle (the
// sync on an idle machine: a synced commit less an unsynced one of the
// same bytes); never below 0. False without points or without an idle
// latency.
func (c *Calibration) WALSyncExtraAt(busy, idle float64) (float64, bool) {
	return extraAt(c.Ops.WALSync, busy, idle)
}

// MerkleExtraAt is how much longer than its CPU a replica's Merkle update
// takes at a host busy share busy, when the calibration measured it under
// load (Ops.MerkleWay): as WALSyncExtraAt, over idle (the update's CPU).
func (c *Calibration) MerkleExtraAt(busy, idle float64) (float64, bool) {
	return extraAt(c.Ops.MerkleWay, busy, idle)
}

// extraAt is a latency measured by load (pts) at a host busy share busy,
// interpolated from idle at no load as wayAt does, less idle; never
// below 0. Above the last point's load it is the last point's, not
// stretched by the queueing factor as a way is: a simulated host busier
// than the real one (three nodes: 0.91 against 0.80 in session 46's
// cluster3) read the WAL sync and the Merkle update 2.7 times the last
// point at 0.9, and the three-node replica.commit came out three times
// the real one, whose WAL syncs were shorter than that point's. False
// without points or without an idle latency.
func extraAt[P loadPoint](pts []P, busy, idle float64) (float64, bool) {
	if len(pts) > 0 {
		last, _ := pts[len(pts)-1].at()
		busy = min(busy, last)
	}
	v, ok := wayAt(pts, busy, idle)
	if !ok || !(idle > 0) {
		return 0, false
	}
	return max(v-idle, 0), true
}

// queueing is a host busy share's queueing factor busy/(1−busy), busy
// held to [0, MaxLagBusy]: the axis delayAt and wayAt interpolate along.
func queueing(busy float64) float64 {
	busy = min(max(busy, 0), MaxLagBusy)
	return busy / (1 - busy)
}

// wayAt is ClientWayAt's interpolation over pts.
func wayAt[P loadPoint](pts []P, busy, idle float64) (float64, bool) {
	if len(pts) == 0 {
		return 0, false
	}
	x := queueing(busy)
	x0, v0 := 0.0, idle
	for _, p := range pts {
		b, v := p.at()
		x1 := queueing(b)
		if x <= x1 {
			if x1 <= x0 {
				return v, true
			}
			return v0 + (x-x0)/(x1-x0)*(v-v0), true
		}
		x0, v0 = x1, v
	}
	return v0 * x / x0, true
}

// PebbleCommitNs is the cost of committing a Pebble batch of n bytes.
func (c *Calibration) PebbleCommitNs(n int, sync bool) float64 {
	var t []SizeCost
	for _, p := range c.Ops.PebbleCommit {
		if p.Sync == sync {
			t = append(t, SizeCost{Size: p.SizeBytes, CostNs: p.CostNs})
		}
	}
	sort.Slice(t, func(i, j int) bool { return t[i].Size < t[j].Size })
	return interpolate(t, float64(n))
}

// MerkleBlockNs is a Merkle batch update of block writes into a tree of
// tree keys, from the measured points fitted by least squares as a
// per-write cost a + b·log2(tree+block) − c·log2(block): a write's path
// climbs with the log of the tree, and the top log2(block) levels are
// shared by the block's writes. Never below the cheapest measured per-write
// cost.
func (c *Calibration) MerkleBlockNs(block, tree int) float64 {
	return c.MerkleModel().Ns(block, tree)
}

// MerkleModel is the fitted Merkle update cost (MerkleBlockNs), for callers
// that price many blocks.
type MerkleModel [4]float64

// MerkleModel fits the merkle_block points once.
func (c *Calibration) MerkleModel() MerkleModel { return MerkleModel(c.merkleFit()) }

// Ns is the cost of a block of block writes into a tree of tree keys.
func (f MerkleModel) Ns(block, tree int) float64 {
	if block <= 0 {
		return 0
	}
	u, v := math.Log2(float64(tree+block)), math.Log2(float64(block))
	return float64(block) * max(f[0]+f[1]*u+f[2]*v, f[3])
}

// merkleFit returns a, b, −c and the cheapest per-write cost measured.
func (c *Calibration) merkleFit() [4]float64 {
	pts := c.Ops.MerkleBlock
	if len(pts) == 0 {
		return [4]float64{}
	}
	lowest := math.Inf(1)
	var m [3][4]float64 // normal equations, augmented
	blocks := map[int]bool{}
	for _, p := range pts {
		y := p.CostNs / float64(p.BlockSize)
		lowest = min(lowest, y)
		blocks[p.BlockSize] = true
		x := [3]float64{1, math.Log2(float64(p.TreeSize + p.BlockSize)), math.Log2(float64(p.BlockSize))}
		for i := range 3 {
			for j := range 3 {
				m[i][j] += x[i] * x[j]
			}
			m[i][3] += x[i] * y
		}
	}
	n := 3
	if len(blocks) < 2 { // one block size: no c
		n = 2
	}
	if sol, ok := solve(m, n); ok && sol[1] >= 0 {
		return [4]float64{sol[0], sol[1], sol[2], lowest}
	}
	var sum float64
	for _, p := range pts {
		sum += p.CostNs / float64(p.BlockSize)
	}
	mean := sum / float64(len(pts))
	return [4]float64{mean, 0, 0, lowest}
}

// solve solves the first n rows and columns of the augmented system m by
// Gaussian elimination with partial pivoting.
func solve(m [3][4]float64, n int) ([3]float64, bool) {
	var a [3][4]float64
	for i := range n {
		for j := range n {
			a[i][j] = m[i][j]
		}
		a[i][3] = m[i][3]
	}
	for col := range n {
		p := col
		for r := col + 1; r < n; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[p][col]) {
				p = r
			}
		}
		if math.Abs(a[p][col]) < 1e-9 {
			return [3]float64{}, false
		}
		a[col], a[p] = a[p], a[col]
		for r := range n {
			if r == col {
				continue
			}
			f := a[r][col] / a[col][col]
			for k := col; k < n; k++ {
				a[r][k] -= f * a[col][k]
			}
			a[r][3] -= f * a[col][3]
		}
	}
	var x [3]float64
	for i := range n {
		x[i] = a[i][3] / a[i][i]
		if math.IsNaN(x[i]) || math.IsInf(x[i], 0) {
			return [3]float64{}, false
		}
	}
	return x, true
}
