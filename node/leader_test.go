package node

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/tracing"
	"github.com/rustorium/rustorium/node/tx"
)

// TestLeaderHolding: a round stays open while a shard with pending
// transactions has its previous published block in flight (above the
// shard's committed height) and its block is younger than MaxWait; its
// deadline is the earliest such block's; a shard with nothing pending, or
// whose published blocks are committed, or with no published block (its
// blocks of this round commit with the round), does not hold it. With
// consensus.HoldLeader any block in flight holds every pending shard.
func TestLeaderHolding(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	published := func(heights ...uint64) tip {
		var tp tip
		for _, h := range heights {
			tp.blocks = append(tp.blocks, pendingBlock{hdr: consensus.Header{Height: h}})
		}
		tp.published = len(heights)
		return tp
	}
	cfg := consensus.CutterConfig{MaxTxs: 100, MaxWait: 20 * time.Millisecond}
	pending := func(at time.Time) *consensus.Cutter {
		c := consensus.NewCutter(cfg)
		c.Add(at, consensus.Entry{Raw: []byte{1}})
		return c
	}
	tips := []tip{published(4, 5), published(7), {}, published(2)}
	// A block cut in this round but not published: not in flight.
	tips[2].blocks = []pendingBlock{{hdr: consensus.Header{Height: 9}}}
	type holdCase struct {
		policy    consensus.Hold
		name      string
		cutters   map[uint32]*consensus.Cutter
		committed []uint64
		now       time.Time
		hold      bool
		deadline  time.Time
	}
	shard, lead := consensus.HoldShard, consensus.HoldLeader
	for _, tc := range []holdCase{
		{shard, "in flight", map[uint32]*consensus.Cutter{0: pending(ms(0))}, []uint64{4, 7, 0, 2}, ms(5), true, ms(20)},
		{shard, "committed", map[uint32]*consensus.Cutter{0: pending(ms(0))}, []uint64{5, 7, 0, 2}, ms(5), false, time.Time{}},
		{shard, "max wait", map[uint32]*consensus.Cutter{0: pending(ms(0))}, []uint64{4, 7, 0, 2}, ms(20), false, time.Time{}},
		{shard, "nothing pending", map[uint32]*consensus.Cutter{0: consensus.NewCutter(cfg)}, []uint64{0, 0, 0, 0}, ms(5), false, time.Time{}},
		{shard, "only this round's blocks", map[uint32]*consensus.Cutter{2: pending(ms(0))}, []uint64{0, 0, 0, 0}, ms(5), false, time.Time{}},
		{shard, "one shard of several holds", map[uint32]*consensus.Cutter{0: pending(ms(3)), 1: pending(ms(0)), 3: pending(ms(1))}, []uint64{4, 7, 0, 1}, ms(5), true, ms(21)},
		{shard, "earliest deadline", map[uint32]*consensus.Cutter{0: pending(ms(3)), 3: pending(ms(1))}, []uint64{4, 7, 0, 1}, ms(5), true, ms(21)},
		// consensus.HoldLeader: every pending shard holds while any block
		// the leader published is in flight, its own or another shard's.
		{lead, "another shard's block in flight", map[uint32]*consensus.Cutter{2: pending(ms(0))}, []uint64{5, 6, 0, 2}, ms(5), true, ms(20)},
		{lead, "every pending shard holds", map[uint32]*consensus.Cutter{0: pending(ms(3)), 1: pending(ms(0)), 3: pending(ms(1))}, []uint64{4, 7, 0, 1}, ms(5), true, ms(20)},
		{lead, "nothing in flight", map[uint32]*consensus.Cutter{2: pending(ms(0))}, []uint64{5, 7, 0, 2}, ms(5), false, time.Time{}},
		{lead, "max wait", map[uint32]*consensus.Cutter{2: pending(ms(0))}, []uint64{5, 6, 0, 2}, ms(20), false, time.Time{}},
	} {
		t.Run(string(tc.policy)+"/"+tc.name, func(t *testing.T) {
			l := &leader{policy: tc.policy}
			deadline, hold := l.holding(tc.now, tips, &round{cutters: tc.cutters}, tc.committed)
			if hold != tc.hold || !deadline.Equal(tc.deadline) {
				t.Fatalf("hold %v until %v, want %v until %v", hold, deadline, tc.hold, tc.deadline)
			}
		})
	}
}

// TestTraceRoundPollEnd: a block's sampled transactions get a leader.poll
// span from the round's first poll to the poll that gave the block its
// last transactions (a held block's later poll), never ending before it;
// a block of the first poll's transactions ends with that poll.
func TestTraceRoundPollEnd(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	l := &leader{n: &Node{tracer: tracing.New(tp, 1)}}
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	first, held := tx.ID{1}, tx.ID{2}
	l.cuts = []cutTrace{
		{ids: []tx.ID{first}, shard: 0, height: 1, txs: 1, cutStart: ms(2), cutEnd: ms(3)},
		{ids: []tx.ID{held}, shard: 1, height: 1, txs: 1, cutStart: ms(16), cutEnd: ms(17), pollEnd: ms(15)},
	}
	l.traceRound(7, 2, true, t0, ms(1), ms(17), ms(20))
	ends := map[string]time.Time{}
	for _, s := range rec.Ended() {
		if s.Name() == string(tracing.SpanLeaderPoll) {
			ends[s.SpanContext().TraceID().String()] = s.EndTime()
		}
	}
	if got := ends[tracing.TraceID(first).String()]; !got.Equal(ms(1)) {
		t.Errorf("first poll's transaction: poll ends at %v, want %v", got, ms(1))
	}
	if got := ends[tracing.TraceID(held).String()]; !got.Equal(ms(15)) {
		t.Errorf("held block's transaction: poll ends at %v, want %v (the later poll)", got, ms(15))
	}
	if len(l.cuts) != 0 {
		t.Errorf("cuts left after the round's trace: %d", len(l.cuts))
	}
}
