package p2p

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rustorium/rustorium/node/tx"
)

// fakeStream records when its credit is released.
type fakeStream struct {
	name string
	log  *[]string
}

func (f fakeStream) ReleaseStreamCredit() { *f.log = append(*f.log, f.name) }

func TestCredits(t *testing.T) {
	t.Run("released creditLag replies after finishing, oldest first", func(t *testing.T) {
		var got []string
		c := newCredits(DefaultMaxStreams)
		c.finish(fakeStream{"a", &got})
		c.reply()
		c.finish(fakeStream{"b", &got})
		for range creditLag - 1 {
			c.reply()
		}
		if len(got) != 0 {
			t.Fatalf("released %v after %d replies, want none before %d", got, creditLag, creditLag+1)
		}
		c.reply() // a's creditLag+1st
		if !slices.Equal(got, []string{"a"}) {
			t.Fatalf("released %v, want [a]", got)
		}
		c.reply()
		c.reply()
		if !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("released %v, want [a b] once each", got)
		}
	})
	t.Run("at most max held", func(t *testing.T) {
		var got []string
		c := newCredits(64 * 3) // max 3
		for i := range 5 {
			c.finish(fakeStream{fmt.Sprint(i), &got})
		}
		if !slices.Equal(got, []string{"0", "1"}) || len(c.held) != 3 {
			t.Fatalf("released %v, %d held; want [0 1] and 3 held", got, len(c.held))
		}
	})
	t.Run("a small stream limit defers nothing", func(t *testing.T) {
		var got []string
		c := newCredits(63)
		c.finish(fakeStream{"a", &got})
		if !slices.Equal(got, []string{"a"}) {
			t.Fatalf("released %v, want [a] at once", got)
		}
		c.reply() // no-op
	})
}

// countingConn counts the datagrams a server writes.
type countingConn struct {
	net.PacketConn
	writes atomic.Int64
}

func (c *countingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.writes.Add(1)
	return c.PacketConn.WriteTo(b, addr)
}

// heldLog accepts every transaction and leaves its commit receipt to the
// test: each Submit's receipt channel waits in pending.
type heldLog struct {
	fakeLog
	pending chan chan Committed
}

func (h *heldLog) Submit(ctx context.Context, t *tx.Tx, id tx.ID, raw []byte) (Accepted, <-chan Committed, error) {
	acc, _, err := h.fakeLog.Submit(ctx, t, id, raw)
	ch := make(chan Committed, 1)
	select {
	case h.pending <- ch:
	case <-ctx.Done(): // the test failed before taking the last one: the server closes
		return Accepted{}, nil, ctx.Err()
	}
	return acc, ch, err
}

// TestStreamCreditRidesWithReplies: a client's transactions one after the
// other, each committed after its accepted receipt reached the client,
// cost the server two packets each — accepted and committed, the stream
// credit riding in a later one. quic-go's own release sent each stream's
// MAX_STREAMS frame in a third.
func TestStreamCreditRidesWithReplies(t *testing.T) {
	raw, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	pc := &countingConn{PacketConn: raw}
	log := &heldLog{pending: make(chan chan Committed, 1)}
	s := startServerWith(t, ServerConfig{Key: key(1), ChainID: 7, Ingress: log, PacketConn: pc})
	c := dial(t, s, ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	submit := func(i int) {
		call, err := c.Submit(ctx, put(7, fmt.Sprint("k", i)))
		if err != nil {
			t.Fatal(err)
		}
		acc, err := call.Accepted()
		if err != nil {
			t.Fatal(err)
		}
		receipt := <-log.pending
		receipt <- Committed{ID: acc.ID, Shard: acc.Shard, Height: uint64(i + 2), Proof: []byte("proof")}
		if _, err = call.Committed(); err != nil {
			t.Fatal(err)
		}
	}
	submit(-1) // the handshake's packets out of the count
	const n = 200
	w0 := pc.writes.Load()
	for i := range n {
		submit(i)
	}
	perTx := float64(pc.writes.Load()-w0) / n
	t.Logf("server packets a transaction: %.2f", perTx)
	if perTx > 2.5 {
		t.Fatalf("the server sent %.2f packets a transaction, want 2 (accepted, committed; the credit in one of them)", perTx)
	}
}

// TestStreamCreditNoStall: every stream's credit comes back. On a
// connection limit of 128 streams (two held at most), 128 clients' streams
// at once, then 300 one at a time: a credit never released would stall the
// client at its 129th stream.
func TestStreamCreditNoStall(t *testing.T) {
	s := startServerWith(t, ServerConfig{Key: key(1), ChainID: 7, Ingress: &fakeLog{}, MaxStreams: 128})
	c := dial(t, s, ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for w := range 128 {
		wg.Go(func() {
			for i := range 4 {
				if err := roundTrip(ctx, c, put(7, fmt.Sprint("w", w, "-", i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i := range 300 {
		if err := c.Echo(ctx, []byte{byte(i)}); err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
	}
}
