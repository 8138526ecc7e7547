package p2p

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"
	"time"
)

// TestClientBytes: the client connections' bytes hold at least the payloads
// they carried each way, and stay counted after the connection ends.
func TestClientBytes(t *testing.T) {
	s := startServer(t, &fakeLog{})
	if b := s.ClientBytes(); b != (WireBytes{}) {
		t.Fatalf("before any client: %+v", b)
	}
	if b := s.PeerBytes(); b != (WireBytes{}) {
		t.Fatalf("no peer protocol: %+v", b)
	}
	c := dial(t, s, ClientConfig{ServerKey: key(1).Public().(ed25519.PublicKey)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const size, echoes = 4000, 5
	for range echoes {
		if err := c.Echo(ctx, bytes.Repeat([]byte{1}, size)); err != nil {
			t.Fatal(err)
		}
	}
	open := s.ClientBytes()
	if open.Received < size*echoes || open.Sent < size*echoes {
		t.Fatalf("open connection: %+v, want at least %d each way", open, size*echoes)
	}
	c.Close()
	waitFor(t, "the server to end the connection", func() bool { return s.clients.Load() == 0 })
	ended := s.ClientBytes()
	if ended.Sent < open.Sent || ended.Received < open.Received {
		t.Fatalf("after the connection ended: %+v, less than while open %+v", ended, open)
	}
	if ended.Received > 2*open.Received {
		t.Fatalf("after the connection ended: %+v, counted twice? (open %+v)", ended, open)
	}
}

// TestPeerBytes: attestations between two nodes count as peer bytes on
// both, sent by one and received by the other, and not as client bytes.
func TestPeerBytes(t *testing.T) {
	const heights = 50
	nodes := cluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	var payload int
	for h := uint64(1); h <= heights; h++ {
		p := signedAttest(a.key, 1, h)
		payload += len(p)
		if err := a.srv.Peers().Broadcast(MsgAttest, p); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the attestations", func() bool { return len(b.in.all()) == heights })
	if got := a.srv.PeerBytes(); got.Sent < uint64(payload) {
		t.Fatalf("sender's peer bytes %+v, want at least %d sent", got, payload)
	}
	if got := b.srv.PeerBytes(); got.Received < uint64(payload) {
		t.Fatalf("receiver's peer bytes %+v, want at least %d received", got, payload)
	}
	for i, n := range nodes {
		if got := n.srv.ClientBytes(); got != (WireBytes{}) {
			t.Fatalf("node %d counted peer traffic as client bytes: %+v", i, got)
		}
	}
}
