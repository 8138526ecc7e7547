// Package tracing is Rustorium's OpenTelemetry glue. It follows one
// transaction from the client's send to its proof check across every node
// of a cluster without changing the signed bytes: a transaction's trace id
// is the first 16 bytes of its id (the SHA-256 of its encoding), the span
// ids of its three anchor spans (the client's root "tx", "client.send" and
// "client.commit_wait") are derived from the next 8, and whether it is
// traced at all is decided from its trace id (Sampled, the rule of
// OpenTelemetry's TraceIDRatioBased sampler). So the client and every node
// agree on which transactions are traced and where their spans hang
// without carrying any context.
//
// It holds the span names (the contract, SpanName), the Tracer the node and
// the harness record spans with (nil traces nothing, at no cost), tracer
// provider construction from an OTLP endpoint string (Config, NewProvider),
// and traces.json: OTLP/JSON, one ExportTraceServiceRequest per line and
// per trace (Collector gathers spans in process or from an OTLP/HTTP
// Receiver, WriteFile and ReadFile).
package tracing

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// SpanName names a span. The names are a contract (docs/DESIGN.md lists
// them): the report's breakdown and outside tools select spans by name.
type SpanName string

// The spans of one transaction, in pipeline order. Client spans come from
// the harness's load generator, the others from the nodes: ingress spans
// from the node the client sent to, leader spans from the shard's leader,
// replica spans from every node.
const (
	// SpanTx is the client's root span: from the send to the client's
	// last step (commit receipt, proof check or read-back). Span id:
	// AnchorRoot.
	SpanTx SpanName = "tx"
	// SpanClientSend is the client's send up to its accepted receipt. Span
	// id: AnchorSend; the node's ingress spans are its children.
	SpanClientSend SpanName = "client.send"
	// SpanIngress is a node's handling of the submission, from the
	// request's arrival (QUIC stream or HTTP request) to the accepted
	// answer written.
	SpanIngress SpanName = "node.ingress"
	// SpanSigVerify is the signature check (rustorium.sigverify.batch: how
	// many signatures its batch checked together).
	SpanSigVerify SpanName = "node.sigverify"
	// SpanProduce is the append to the shard's transactions log, up to the
	// broker's acknowledgement (rustorium.shard, rustorium.offset).
	SpanProduce SpanName = "node.produce"
	// SpanAccept is the accepted answer's write to the client.
	SpanAccept SpanName = "node.accept"
	// SpanClientCommit is the client's wait from the accepted receipt to
	// the commit receipt. Span id: AnchorCommit; the leader's and the
	// replicas' spans are its children.
	SpanClientCommit SpanName = "client.commit_wait"
	// SpanLeaderPoll is the leader round's poll of the log that returned
	// the transaction (rustorium.leader.records).
	SpanLeaderPoll SpanName = "leader.poll"
	// SpanLeaderInflight is the leader waiting, before it cuts the
	// transaction's block, until its own replica commits the oldest of
	// the shard's blocks it published (it runs at most 8 ahead), when it
	// had to.
	SpanLeaderInflight SpanName = "leader.inflight"
	// SpanBlockCut is the leader cutting and executing the transaction's
	// block (rustorium.shard, rustorium.block.height, rustorium.block.txs,
	// rustorium.block.bytes).
	SpanBlockCut SpanName = "leader.cut"
	// SpanPublish is the leader's Kafka transaction that published the
	// block (rustorium.leader.blocks, rustorium.publish.committed).
	SpanPublish SpanName = "leader.publish"
	// SpanReplicaQueue is a replica's block from its poll of the blocks
	// stream to the start of its work: waiting behind the earlier blocks
	// of the shard.
	SpanReplicaQueue SpanName = "replica.queue"
	// SpanReplicaRead is a replica reading the block's transaction range
	// from its copy of the log (every replica span: rustorium.shard,
	// rustorium.block.height, rustorium.block.txs).
	SpanReplicaRead SpanName = "replica.read"
	// SpanExecute is a replica executing the block.
	SpanExecute SpanName = "replica.execute"
	// SpanMerkle is a replica's Merkle update: the block's new state root.
	SpanMerkle SpanName = "replica.merkle"
	// SpanAttest is a replica signing and sending its attestation.
	SpanAttest SpanName = "replica.attest"
	// SpanQuorum is a replica waiting until a quorum attested its result
	// (rustorium.quorum.signers: the validators counted, key prefixes).
	SpanQuorum SpanName = "replica.quorum"
	// SpanCommit is a replica's commit: the Pebble batch, the proofs and
	// the views, up to delivering the receipts.
	SpanCommit SpanName = "replica.commit"
	// SpanReceipt is the commit receipt's write to the client, by the node
	// it sent to.
	SpanReceipt SpanName = "node.receipt"
	// SpanProofVerify is the client checking the receipt's Merkle proof.
	SpanProofVerify SpanName = "client.proof_verify"
	// SpanVisible is the client reading its write back until it shows.
	SpanVisible SpanName = "client.visible"
)

// Stages lists every span name in pipeline order.
func Stages() []SpanName {
	return []SpanName{SpanTx, SpanClientSend, SpanIngress, SpanSigVerify, SpanProduce, SpanAccept,
		SpanClientCommit, SpanLeaderPoll, SpanLeaderInflight, SpanBlockCut, SpanPublish,
		SpanReplicaQueue, SpanReplicaRead, SpanExecute, SpanMerkle, SpanAttest, SpanQuorum, SpanCommit,
		SpanReceipt, SpanProofVerify, SpanVisible}
}

// Attribute keys of the spans and resources.
const (
	AttrTxID            = attribute.Key("rustorium.tx.id")     // root: the transaction id, hex
	AttrWorkload        = attribute.Key("rustorium.workload")  // root
	AttrKind            = attribute.Key("rustorium.kind")      // root: the workload's kind (put, transfer)
	AttrSend            = attribute.Key("rustorium.send")      // root: the send's index in its workload
	AttrLagUs           = attribute.Key("rustorium.lag_us")    // root: how late the send went out
	AttrTransport       = attribute.Key("rustorium.transport") // node.ingress: quic, http
	AttrBatch           = attribute.Key("rustorium.sigverify.batch")
	AttrShard           = attribute.Key("rustorium.shard")
	AttrOffset          = attribute.Key("rustorium.offset")
	AttrHeight          = attribute.Key("rustorium.block.height")
	AttrBlockTxs        = attribute.Key("rustorium.block.txs")
	AttrBlockBytes      = attribute.Key("rustorium.block.bytes")
	AttrSampledInBlock  = attribute.Key("rustorium.block.sampled") // how many traced transactions the block holds (each trace gets a copy of the block's spans)
	AttrLeaderRecords   = attribute.Key("rustorium.leader.records")
	AttrLeaderBlocks    = attribute.Key("rustorium.leader.blocks")
	AttrPublishCommit   = attribute.Key("rustorium.publish.committed")
	AttrQuorumSigners   = attribute.Key("rustorium.quorum.signers")
	AttrNodeKey         = attribute.Key("rustorium.node.key")  // resource: the node's public key, hex
	AttrServiceName     = attribute.Key("service.name")        // resource: ServiceNode or ServiceHarness
	AttrServiceInstance = attribute.Key("service.instance.id") // resource: the node's id
	AttrResent          = attribute.Key("rustorium.resent")    // root: failed over to another node
)

// The service names of the resources (service.name).
const (
	ServiceNode    = "rustorium-node"
	ServiceHarness = "rustorium-harness"
)

// KeyPrefixHexLen is the hex characters of a key prefix in
// rustorium.quorum.signers.
const KeyPrefixHexLen = 16

// DefaultSample is the share of transactions traced when tracing is on and
// no share is given: the node's --trace-sample and the harness's.
const DefaultSample = 0.01

// TraceID is a transaction's trace id: the first 16 bytes of its id.
func TraceID(id [32]byte) trace.TraceID {
	var t trace.TraceID
	copy(t[:], id[:16])
	return t
}

// Anchor names one of a transaction's three spans whose ids every process
// derives from the transaction id, so spans of other processes can hang
// under them.
type Anchor uint8

// The anchors.
const (
	AnchorRoot   Anchor = iota // SpanTx
	AnchorSend                 // SpanClientSend
	AnchorCommit               // SpanClientCommit
)

// SpanID is the span id of anchor a of the transaction id: bytes 16..23 of
// the id read as a big-endian integer, plus a (0 root, 1 send, 2 commit
// wait), modulo 2^64; the value 0, which is not a valid span id, becomes 1.
func SpanID(id [32]byte, a Anchor) trace.SpanID {
	v := binary.BigEndian.Uint64(id[16:24]) + uint64(a)
	if v == 0 {
		v = 1
	}
	var s trace.SpanID
	binary.BigEndian.PutUint64(s[:], v)
	return s
}

// Threshold is the sampling threshold of share, the rule of OpenTelemetry's
// TraceIDRatioBased: a trace id is sampled when the big-endian integer of
// its last 8 bytes, shifted right by one, is below share × 2^63. A share of
// 1 or more samples every id (math.MaxUint64), 0 or less none (0).
func Threshold(share float64) uint64 {
	switch {
	case share >= 1:
		return ^uint64(0)
	case share <= 0:
		return 0
	}
	return uint64(share * (1 << 63))
}

// Sampled reports whether the transaction id is traced at share.
func Sampled(id [32]byte, share float64) bool { return sampledAt(id, Threshold(share)) }

func sampledAt(id [32]byte, threshold uint64) bool {
	if threshold == ^uint64(0) {
		return true
	}
	return binary.BigEndian.Uint64(id[8:16])>>1 < threshold
}

// Tracer records the spans of sampled transactions. The nil Tracer samples
// nothing and records nothing; every method is safe on it, so code that
// traces costs a nil check when tracing is off.
type Tracer struct {
	tr        trace.Tracer
	threshold uint64
}

// New returns a Tracer recording through tp the transactions sampled at
// share; nil (tracing off) when tp is nil or share is 0 or less.
func New(tp trace.TracerProvider, share float64) *Tracer {
	if tp == nil || share <= 0 {
		return nil
	}
	return &Tracer{tr: tp.Tracer("github.com/rustorium/rustorium"), threshold: Threshold(share)}
}

// Sampled reports whether the transaction id is traced.
func (t *Tracer) Sampled(id [32]byte) bool {
	return t != nil && sampledAt(id, t.threshold)
}

// SampledIDs returns the sampled ones of ids (nil when none is, or t is
// nil). ids is any slice of 32-byte ids.
func SampledIDs[ID ~[32]byte](t *Tracer, ids []ID) []ID {
	if t == nil {
		return nil
	}
	var out []ID
	for _, id := range ids {
		if sampledAt(id, t.threshold) {
			out = append(out, id)
		}
	}
	return out
}

// parent is the context of a span whose parent is anchor a of the
// transaction id, in another process.
func parent(ctx context.Context, id [32]byte, a Anchor) context.Context {
	return trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: TraceID(id), SpanID: SpanID(id, a), TraceFlags: trace.FlagsSampled, Remote: true,
	}))
}

// Start starts a span of the transaction id under its anchor a, at start.
// The returned context carries it, for Child. End it with End.
func (t *Tracer) Start(ctx context.Context, id [32]byte, a Anchor, name SpanName, start time.Time, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return t.tr.Start(parent(ctx, id, a), string(name), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
}

// Record records a finished span of the transaction id, under its anchor
// a, from start to end.
func (t *Tracer) Record(id [32]byte, a Anchor, name SpanName, start, end time.Time, attrs ...attribute.KeyValue) {
	_, sp := t.tr.Start(parent(context.Background(), id, a), string(name), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	sp.End(trace.WithTimestamp(end))
}

// StartAnchor starts anchor a's own span of the transaction id (its span id
// derived, SpanID): the root (no parent) or a child of the root. Only the
// client starts them, through a provider built with IDGenerator.
func (t *Tracer) StartAnchor(id [32]byte, a Anchor, name SpanName, start time.Time, attrs ...attribute.KeyValue) trace.Span {
	ctx := withIDs(context.Background(), TraceID(id), SpanID(id, a))
	if a != AnchorRoot {
		ctx = parent(ctx, id, AnchorRoot)
	}
	_, sp := t.tr.Start(ctx, string(name), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	return sp
}

// Recording reports whether ctx carries a span being recorded: a sampled
// transaction's, started with Start.
func Recording(ctx context.Context) bool {
	return trace.SpanFromContext(ctx).IsRecording()
}

// Child records a finished child span of ctx's span, from start to end;
// nothing when ctx's span is not recording.
func Child(ctx context.Context, name SpanName, start, end time.Time, attrs ...attribute.KeyValue) {
	sp := trace.SpanFromContext(ctx)
	if !sp.IsRecording() {
		return
	}
	_, c := sp.TracerProvider().Tracer("github.com/rustorium/rustorium").Start(ctx, string(name), trace.WithTimestamp(start), trace.WithAttributes(attrs...))
	c.End(trace.WithTimestamp(end))
}

// KeyPrefix is a validator key's prefix as rustorium.quorum.signers
// names it: its first 8 bytes in hex.
func KeyPrefix(key []byte) string {
	return hex.EncodeToString(key[:min(len(key), KeyPrefixHexLen/2)])
}

// End ends span (nil: none), marked failed with err when err is not nil.
func End(span trace.Span, err error, opts ...trace.SpanEndOption) {
	if span == nil {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
	}
	span.End(opts...)
}
