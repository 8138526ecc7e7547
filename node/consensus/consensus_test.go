package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestCutterScript drives the cutter with a script of timed events and
// checks which blocks close when. Times are milliseconds from t0.
func TestCutterScript(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		ms   int
		add  int // bytes of an entry to add; 0 means Tick
		want string
	}
	cases := []struct {
		name  string
		cfg   CutterConfig
		steps []step
	}{
		{"count", CutterConfig{MaxTxs: 3, MaxWait: time.Second}, []step{
			{0, 1, ""}, {1, 1, ""}, {2, 1, "0,1,2"}, {3, 1, ""}, {4, 0, ""},
		}},
		{"max wait from first entry", CutterConfig{MaxTxs: 100, MaxWait: 20 * time.Millisecond}, []step{
			{0, 1, ""}, {10, 1, ""}, {19, 0, ""}, {20, 0, "0,1"}, {21, 0, ""},
			{30, 1, ""}, {49, 0, ""}, {50, 0, "2"},
		}},
		{"bytes", CutterConfig{MaxTxs: 100, MaxBytes: 10, MaxWait: time.Second}, []step{
			{0, 4, ""}, {1, 4, ""}, {2, 4, "0,1,2"}, {3, 50, "3"},
		}},
		{"empty never closes", CutterConfig{}, []step{{0, 0, ""}, {10_000, 0, ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCutter(tc.cfg)
			var off int64
			for i, s := range tc.steps {
				var got []Entry
				if s.add > 0 {
					got = c.Add(at(s.ms), Entry{Offset: off, Raw: make([]byte, s.add)})
					off++
				} else {
					got = c.Tick(at(s.ms))
				}
				var ids []string
				for _, e := range got {
					ids = append(ids, fmt.Sprint(e.Offset))
				}
				if g := strings.Join(ids, ","); g != s.want {
					t.Fatalf("step %d (t=%dms): block %q, want %q", i, s.ms, g, s.want)
				}
			}
		})
	}
}

func TestCutterDeadline(t *testing.T) {
	c := NewCutter(CutterConfig{MaxWait: 5 * time.Millisecond})
	if _, ok := c.Deadline(); ok {
		t.Fatal("deadline with nothing pending")
	}
	t0 := time.Unix(0, 0)
	c.Add(t0, Entry{Raw: []byte{1}})
	c.Add(t0.Add(time.Millisecond), Entry{Raw: []byte{1}})
	if d, ok := c.Deadline(); !ok || !d.Equal(t0.Add(5*time.Millisecond)) {
		t.Fatalf("deadline %v %v", d, ok)
	}
}

// TestCutterFlush: a leader adds a polled batch and flushes the rest; the
// blocks respect MaxTxs and MaxBytes and keep every entry once, in order.
func TestCutterFlush(t *testing.T) {
	c := NewCutter(CutterConfig{MaxTxs: 3, MaxBytes: 10})
	if c.Flush() != nil {
		t.Fatal("flush of nothing")
	}
	sizes := []int{1, 1, 1, 1, 8, 2, 1}
	var blocks [][]Entry
	for i, n := range sizes {
		if b := c.Add(time.Unix(0, 0), Entry{Offset: int64(i), Raw: make([]byte, n)}); b != nil {
			blocks = append(blocks, b)
		}
	}
	if b := c.Flush(); b != nil {
		blocks = append(blocks, b)
	}
	var got [][]int64
	for _, b := range blocks {
		var offs []int64
		for _, e := range b {
			offs = append(offs, e.Offset)
		}
		got = append(got, offs)
	}
	// [0 1 2] by count; [3 4] by bytes (1+8 < 10, then +2 ≥ 10 closes [3 4 5]).
	want := "[[0 1 2] [3 4 5] [6]]"
	if fmt.Sprint(got) != want {
		t.Fatalf("blocks %v, want %s", got, want)
	}
	if c.Pending() != 0 || c.Flush() != nil {
		t.Fatal("entries left after flush")
	}
}

func TestCutterConfigValidate(t *testing.T) {
	if err := (&CutterConfig{MaxTxs: -1, MaxBytes: 1, MaxWait: -1, Hold: "round"}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "max_txs") || !strings.Contains(err.Error(), "max_wait") || !strings.Contains(err.Error(), `hold "round": want shard or leader`) {
		t.Fatalf("validate: %v", err)
	}
	c := CutterConfig{}
	c.EnsureDefaults()
	if c.Hold != HoldShard || c.Validate() != nil {
		t.Fatalf("defaults: %+v %v", c, c.Validate())
	}
	if err := (&CutterConfig{MaxTxs: 1, MaxBytes: 1, Hold: HoldLeader}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := Header{Shard: 3, Height: 9, Parent: [32]byte{1}, FirstOffset: 10, NextOffset: 20, TxCount: 10,
		TxRoot: TxRoot([][32]byte{{1}, {2}}), StateRoot: [32]byte{4}, Time: 12345}
	got, err := DecodeHeader(h.Encode())
	if err != nil || got != h {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	h2 := h
	h2.TxCount++
	if h.Hash() == h2.Hash() {
		t.Fatal("hash ignores a field")
	}
	if TxRoot([][32]byte{{1}, {2}}) == TxRoot([][32]byte{{2}, {1}}) {
		t.Fatal("tx root ignores order")
	}
	bad := h
	bad.NextOffset = 5
	if _, err := DecodeHeader(bad.Encode()); !errors.Is(err, ErrHeader) {
		t.Fatalf("inverted range: %v", err)
	}
}

func FuzzDecodeHeader(f *testing.F) {
	h := Header{Shard: 1, Height: 2, NextOffset: 3}
	f.Add(h.Encode())
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			if !errors.Is(err, ErrHeader) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(h.Encode(), b) {
			t.Fatal("header does not re-encode to its input")
		}
	})
}

// TestCutterHold scripts a leader that asks Hold after every poll and
// flushes when it says no: at low load (nothing in flight) every poll's
// entries make a block at once; while the shard's previous block is in
// flight the block stays open until MaxWait after its first entry, until
// the previous block commits, or until it is full (Add closes it). Times
// are milliseconds from t0.
func TestCutterHold(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		ms       int
		add      int  // entries polled now (0: none, the leader only looks again)
		inflight bool // the previous block of the shard is in flight
		want     string
	}
	steps := []step{
		// Low load: cut at once.
		{0, 1, false, "0"},
		{5, 2, false, "1,2"},
		// Under load: held while in flight, up to MaxWait (20ms) after
		// the first entry, then cut although still in flight.
		{10, 1, true, ""},
		{15, 1, true, ""},
		{29, 0, true, ""},
		{30, 0, true, "3,4"},
		// The previous block commits: the held block is cut at once.
		{40, 1, true, ""},
		{45, 0, false, "5"},
		// Full before MaxWait: MaxTxs (4) closes it while in flight; the
		// rest waits for the next chance.
		{50, 3, true, ""},
		{51, 2, true, "6,7,8,9"},
		{52, 0, true, ""},
		{71, 0, true, "10"},
		{80, 0, true, ""}, // nothing pending: nothing to hold or cut
	}
	c := NewCutter(CutterConfig{MaxTxs: 4, MaxWait: 20 * time.Millisecond})
	var off int64
	for i, s := range steps {
		var blocks []string
		cut := func(b []Entry) {
			var ids []string
			for _, e := range b {
				ids = append(ids, fmt.Sprint(e.Offset))
			}
			blocks = append(blocks, strings.Join(ids, ","))
		}
		for range s.add {
			if b := c.Add(at(s.ms), Entry{Offset: off, Raw: []byte{1}}); b != nil {
				cut(b)
			}
			off++
		}
		if !c.Hold(at(s.ms), s.inflight) {
			if b := c.Flush(); b != nil {
				cut(b)
			}
		}
		if g := strings.Join(blocks, " "); g != s.want {
			t.Fatalf("step %d (t=%dms, in flight %v): blocks %q, want %q", i, s.ms, s.inflight, g, s.want)
		}
	}
}
