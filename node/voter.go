package node

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/metrics"
	"github.com/rustorium/rustorium/node/p2p"
)

// errHalted: the shard stopped after this node's state root diverged from
// the quorum's. The node keeps serving its other shards.
var errHalted = errors.New("node: shard halted after a state root divergence")

// voter runs the deterministic consensus.Finality tracker for the node: it
// feeds it this node's results and its peers' attestations, sends what the
// tracker says to send, raises its alarms, and wakes the shards waiting for
// a height to be final. It owns no goroutine; its methods are called from
// the shard pipelines and the peer streams.
type voter struct {
	log     *slog.Logger
	metrics *metrics.Node
	peers   *p2p.Peers // nil in a one-node cluster
	shards  int

	// archive returns this node's attestations of committed heights
	// [from, to) of a shard, signed again from the stored headers: the
	// tracker keeps only the last Retain, and a peer that was down longer
	// asks for older ones.
	archive func(shard uint32, from, to uint64) ([]consensus.Attestation, error)

	mu      sync.Mutex
	f       *consensus.Finality
	changed chan struct{} // closed and replaced when a height becomes final or a shard halts

	// signers keeps, when tracing, the validators counted for each final
	// height until its shard's replica takes them (signersOf); nil when
	// not tracing.
	signers map[shardHeight][]ed25519.PublicKey
}

type shardHeight struct {
	shard  uint32
	height uint64
}

// maxSigners bounds voter.signers: heights a replica never asks for (its
// blocks were committed before a restart) are dropped beyond it.
const maxSigners = 4096

// keepSigners makes the voter remember the signers of final heights for
// signersOf (tracing's replica.quorum spans).
func (v *voter) keepSigners() {
	v.mu.Lock()
	v.signers = map[shardHeight][]ed25519.PublicKey{}
	v.mu.Unlock()
}

// signersOf returns (and forgets) the validators counted when (shard,
// height) became final; nil when unknown or not tracing.
func (v *voter) signersOf(shard uint32, height uint64) []ed25519.PublicKey {
	v.mu.Lock()
	defer v.mu.Unlock()
	k := shardHeight{shard, height}
	s := v.signers[k]
	delete(v.signers, k)
	return s
}

// defaultRetain is Config.AttestationRetain's default.
const defaultRetain = 1 << 14

func newVoter(key ed25519.PrivateKey, validators []ed25519.PublicKey, quorum, shards, retain int, archive func(shard uint32, from, to uint64) ([]consensus.Attestation, error), log *slog.Logger, m *metrics.Node) (*voter, error) {
	if retain <= 0 {
		retain = defaultRetain
	}
	f, err := consensus.NewFinality(consensus.FinalityConfig{
		Key: key, Validators: validators, Quorum: quorum, Shards: shards,
		// A restarted or partitioned peer is sent this node's attestations
		// of the last Retain heights from memory; older ones come from
		// the stored headers (archive).
		Retain: uint64(retain),
		Window: 1 << 14,
	})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return &voter{log: log, metrics: m, shards: shards, f: f, archive: archive, changed: make(chan struct{})}, nil
}

// restore declares the heights this node committed before it started final.
func (v *voter) restore(shard uint32, height uint64) error {
	v.mu.Lock()
	out, err := v.f.Restore(shard, height)
	v.mu.Unlock()
	if err != nil {
		return err
	}
	v.handle(out)
	return nil
}

// local records this node's result for a block and sends the attestation.
func (v *voter) local(shard uint32, height uint64, blockHash, root [32]byte) error {
	v.mu.Lock()
	out, err := v.f.Local(shard, height, blockHash, root)
	v.mu.Unlock()
	v.handle(out)
	if errors.Is(err, consensus.ErrHalted) {
		return errHalted
	}
	return err
}

// receive is the peer protocol's handler: it takes attestations, and
// requests for this node's own.
func (v *voter) receive(from ed25519.PublicKey, typ p2p.MsgType, payload []byte) error {
	switch typ {
	case p2p.MsgAttest:
	case p2p.MsgAttestWant:
		if len(payload) != 12 {
			return fmt.Errorf("node: attest-want of %d bytes, want 12", len(payload))
		}
		v.answer(from, binary.BigEndian.Uint32(payload), binary.BigEndian.Uint64(payload[4:]))
		return nil
	default:
		return fmt.Errorf("node: unexpected peer message %v", typ)
	}
	a, err := consensus.DecodeAttestation(payload)
	if err != nil {
		return err
	}
	if !a.Signer.Equal(from) {
		// Relaying is not part of the protocol: a peer speaks for itself.
		return fmt.Errorf("node: peer %x sent an attestation signed by %x", []byte(from[:4]), []byte(a.Signer[:4]))
	}
	v.mu.Lock()
	out, err := v.f.Receive(a)
	v.mu.Unlock()
	v.handle(out)
	if errors.Is(err, consensus.ErrTooFarAhead) {
		return nil // sent again on reconnect once we caught up
	}
	return err
}

// Catching up. Delivery between peers is best-effort, so a node that was
// down, cut off or slow misses attestations. Two mechanisms bring them back
// without ever flooding a peer's bounded send queue:
//   - push: on (re)connecting to a peer, a node sends it its attestations
//     of the heights it has not finalized yet and of the last few final ones;
//   - pull: a shard that waits for a height longer than wantAfter asks
//     every peer for its attestations from that height up (MsgAttestWant),
//     and each answers with at most wantBatch of them, so a node far
//     behind catches up batch by batch as it commits. Heights older than
//     the tracker retains are answered from the committed headers
//     (archive), so no outage is too long to catch up from.
const (
	resendFinal = 32
	wantAfter   = 100 * time.Millisecond
	wantBatch   = 128
)

// resend sends a (re)connected peer this node's recent attestations.
func (v *voter) resend(peer ed25519.PublicKey) {
	if v.peers == nil {
		return
	}
	var own []consensus.Attestation
	v.mu.Lock()
	for s := range uint32(v.shards) {
		from := v.f.Finalized(s)
		from -= min(from, resendFinal-1)
		own = append(own, v.f.OwnFrom(s, from, wantBatch)...)
	}
	v.mu.Unlock()
	v.send(peer, own)
}

// answer sends a peer that asked for them this node's attestations of the
// shard from height up, a batch at most.
func (v *voter) answer(peer ed25519.PublicKey, shard uint32, from uint64) {
	if v.peers == nil || shard >= uint32(v.shards) {
		return
	}
	v.mu.Lock()
	own := v.f.OwnFrom(shard, from, wantBatch)
	v.mu.Unlock()
	if len(own) == 0 || own[0].Height > from {
		to := from + wantBatch
		if len(own) > 0 {
			to = min(to, own[0].Height)
		}
		old, err := v.archive(shard, from, to)
		if err != nil {
			v.log.Warn("reading committed attestations for a peer", "shard", shard, "from", from, "err", err)
		}
		own = append(old, own...)[:min(len(old)+len(own), wantBatch)]
	}
	v.send(peer, own)
}

// want asks every peer for their attestations of the shard from height up.
func (v *voter) want(shard uint32, height uint64) {
	if v.peers == nil {
		return
	}
	var b [12]byte
	binary.BigEndian.PutUint32(b[:], shard)
	binary.BigEndian.PutUint64(b[4:], height)
	if err := v.peers.Broadcast(p2p.MsgAttestWant, b[:]); err != nil {
		v.log.Warn("asking peers for attestations", "shard", shard, "height", height, "err", err)
	}
}

func (v *voter) send(peer ed25519.PublicKey, own []consensus.Attestation) {
	for _, a := range own {
		if err := v.peers.Send(peer, p2p.MsgAttest, a.Encode()); err != nil {
			v.log.Warn("sending attestations", "peer", hex.EncodeToString(peer[:4]), "err", err)
			return
		}
	}
}

// handle carries out a tracker output: broadcast, wake waiters, alarm.
func (v *voter) handle(out consensus.Output) {
	if out.Empty() {
		return
	}
	if v.peers != nil {
		for _, a := range out.Broadcast {
			if err := v.peers.Broadcast(p2p.MsgAttest, a.Encode()); err != nil {
				v.log.Warn("broadcasting an attestation", "err", err)
			}
		}
	}
	halted := false
	for _, a := range out.Alarms {
		shard := strconv.FormatUint(uint64(a.Shard), 10)
		v.metrics.Alarms.WithLabelValues(shard, a.Kind.String()).Inc()
		attrs := []any{"shard", a.Shard, "height", a.Height, "kind", a.Kind.String(),
			"ours_block", hex.EncodeToString(a.Ours.BlockHash[:8]), "ours_root", hex.EncodeToString(a.Ours.StateRoot[:8]),
			"theirs_block", hex.EncodeToString(a.Theirs.BlockHash[:8]), "theirs_root", hex.EncodeToString(a.Theirs.StateRoot[:8])}
		if a.Kind == consensus.AlarmDivergence {
			v.metrics.Halted.WithLabelValues(shard).Set(1)
			v.log.Error("ALARM: this node's state root diverged from the quorum's; the shard stops here", attrs...)
			halted = true
			continue
		}
		v.log.Error("ALARM: "+a.Kind.String(), attrs...)
	}
	if len(out.Final) > 0 || halted {
		v.mu.Lock()
		if v.signers != nil {
			if len(v.signers) > maxSigners {
				clear(v.signers)
			}
			for _, f := range out.Final {
				v.signers[shardHeight{f.Shard, f.Height}] = f.Signers
			}
		}
		close(v.changed)
		v.changed = make(chan struct{})
		v.mu.Unlock()
	}
}

// await waits until (shard, height) is final, returning errHalted if the
// shard halts first. Every wantAfter without progress it asks the peers for
// the attestations it may have missed.
func (v *voter) await(ctx context.Context, shard uint32, height uint64) error {
	t := time.NewTimer(wantAfter)
	defer t.Stop()
	for {
		v.mu.Lock()
		final, halted, ch := v.f.Finalized(shard) >= height, v.f.Halted(shard), v.changed
		v.mu.Unlock()
		switch {
		case final:
			return nil
		case halted:
			return errHalted
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		case <-t.C:
			v.want(shard, height)
			t.Reset(wantAfter)
		}
	}
}

// halted reports whether the shard stopped after a divergence.
func (v *voter) halted(shard uint32) bool {
	h, _ := v.state(shard)
	return h
}

// state reports whether the shard halted, and a channel closed at the next
// change (a height becoming final or a shard halting).
func (v *voter) state(shard uint32) (halted bool, changed <-chan struct{}) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.f.Halted(shard), v.changed
}
