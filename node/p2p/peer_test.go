package p2p

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/tx"
)

// muteConn is a test socket that can silently drop everything the node
// sends, so that closing a node looks like a crash to its peers (no
// CONNECTION_CLOSE reaches them).
type muteConn struct {
	net.PacketConn
	mute atomic.Bool
}

func (m *muteConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if m.mute.Load() {
		return len(b), nil
	}
	return m.PacketConn.WriteTo(b, addr)
}

type rec struct {
	from ed25519.PublicKey
	typ  MsgType
	p    []byte
}

// inbox records what a node's peer handler accepted.
type inbox struct {
	mu   sync.Mutex
	msgs []rec
}

func (b *inbox) add(r rec) {
	b.mu.Lock()
	b.msgs = append(b.msgs, r)
	b.mu.Unlock()
}

func (b *inbox) all() []rec {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]rec(nil), b.msgs...)
}

func (b *inbox) count(match func(rec) bool) int {
	n := 0
	for _, r := range b.all() {
		if match(r) {
			n++
		}
	}
	return n
}

// attestHandler accepts MsgAttest frames holding an attestation signed by
// the sender, refuses msgRefuse, and accepts any other type (so that the
// tests see whether Peers itself keeps client messages away from it).
func attestHandler(in *inbox) PeerHandler {
	return func(from ed25519.PublicKey, typ MsgType, p []byte) error {
		switch typ {
		case MsgAttest:
			a, err := consensus.DecodeAttestation(p)
			if err != nil {
				return err
			}
			if err := a.Verify(); err != nil {
				return err
			}
			if !bytes.Equal(a.Signer, from) {
				return errors.New("attestation not signed by its sender")
			}
		case msgRefuse:
			return errors.New("refused")
		}
		in.add(rec{from, typ, p})
		return nil
	}
}

const (
	msgHello  = MsgAttest + 1
	msgRefuse = 200
)

type testNode struct {
	key   ed25519.PrivateKey
	raw   net.PacketConn // the node's socket, kept across restarts
	pc    *muteConn      // this run's view of raw
	peers []Peer
	cfg   func(*PeerConfig)
	in    *inbox
	srv   *Server
	log   *fakeLog
	stop  func()
}

func (n *testNode) pub() ed25519.PublicKey { return n.key.Public().(ed25519.PublicKey) }

// start (re)starts the node's server on its socket.
func (n *testNode) start(t *testing.T) {
	t.Helper()
	n.in, n.log = &inbox{}, &fakeLog{}
	n.pc = &muteConn{PacketConn: n.raw}
	pcfg := &PeerConfig{Peers: n.peers, Handler: attestHandler(n.in), MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	if n.cfg != nil {
		n.cfg(pcfg)
	}
	s, err := Listen(ServerConfig{Key: n.key, ChainID: 7, Ingress: n.log, PacketConn: n.pc, Peer: pcfg})
	if err != nil {
		t.Fatal(err)
	}
	n.srv = s
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			cancel()
			s.Close()
			s.Close()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(n.stop)
}

// cluster starts n nodes that list each other (and themselves) as peers.
func cluster(t *testing.T, n int, cfg func(i int, c *PeerConfig)) []*testNode {
	t.Helper()
	t.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true") // muteConn is not a *net.UDPConn
	nodes := make([]*testNode, n)
	var peers []Peer
	for i := range nodes {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		nodes[i] = &testNode{key: key(byte(20 + i)), raw: pc}
		peers = append(peers, Peer{Key: nodes[i].pub(), Addr: pc.LocalAddr().String()})
	}
	for i, nd := range nodes {
		nd.peers = peers
		if cfg != nil {
			nd.cfg = func(c *PeerConfig) { cfg(i, c) }
		}
		nd.start(t)
	}
	return nodes
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func signedAttest(k ed25519.PrivateKey, shard uint32, h uint64) []byte {
	a := consensus.Attestation{Shard: shard, Height: h, BlockHash: [32]byte{byte(h)}, StateRoot: [32]byte{byte(h), 1}}
	a.Sign(k)
	return a.Encode()
}

func statsOf(s *Server, k ed25519.PublicKey) PeerStats {
	for _, st := range s.Peers().Stats() {
		if st.Key.Equal(k) {
			return st
		}
	}
	return PeerStats{}
}

// TestPeersAttestations: three nodes broadcast signed attestations; each
// receives every other node's, in order, with the sender's verified key.
func TestPeersAttestations(t *testing.T) {
	const heights = 50
	nodes := cluster(t, 3, nil)
	for h := uint64(1); h <= heights; h++ {
		for _, n := range nodes {
			if err := n.srv.Peers().Broadcast(MsgAttest, signedAttest(n.key, 2, h)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d's attestations", i), func() bool { return len(n.in.all()) == 2*heights })
	}
	for i, n := range nodes {
		next := map[string]uint64{}
		for _, r := range n.in.all() {
			if r.from.Equal(n.pub()) {
				t.Fatalf("node %d received its own frame", i)
			}
			a, _ := consensus.DecodeAttestation(r.p)
			if a.Height != next[string(r.from)]+1 || a.Shard != 2 {
				t.Fatalf("node %d: height %d from %x after %d", i, a.Height, r.from[:4], next[string(r.from)])
			}
			next[string(r.from)] = a.Height
		}
		for _, st := range n.srv.Peers().Stats() {
			if st.Sent != heights || st.Dropped != 0 || st.Dials != 1 || !st.Connected || st.BadFrames != 0 || st.Received != heights {
				t.Fatalf("node %d stats for %x: %+v", i, st.Key[:4], st)
			}
		}
		if got := len(n.srv.Peers().Keys()); got != 2 {
			t.Fatalf("node %d has %d peers, want 2 (itself skipped)", i, got)
		}
	}
}

func peerTLS(k ed25519.PrivateKey, alpn string, server ed25519.PublicKey) *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS13, NextProtos: []string{alpn}, ServerName: "rustorium",
		InsecureSkipVerify: true, VerifyPeerCertificate: pinnedVerifier([]ed25519.PublicKey{server}),
	}
	if k != nil {
		cert, err := Certificate(k)
		if err != nil {
			panic(err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c
}

// rawDial opens a QUIC connection with the given identity (nil: none) and
// ALPN, bypassing Peers and Client.
func rawDial(t *testing.T, addr net.Addr, k ed25519.PrivateKey, alpn string, server ed25519.PublicKey) (*quic.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, addr.String(), peerTLS(k, alpn, server), &quic.Config{})
	if err == nil {
		t.Cleanup(func() { conn.CloseWithError(0, "") })
	}
	return conn, err
}

// TestPeersRefuseUnknownKeys: a node accepts peer connections only from
// keys in its set, and dials a peer only accepting the pinned key.
func TestPeersRefuseUnknownKeys(t *testing.T) {
	nodes := cluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	rogue := key(66)

	t.Run("as listener", func(t *testing.T) {
		refusedDial(t, a.srv.Addr(), rogue, ALPNPeer, a.pub())
		// A rogue node that lists a as its peer cannot reach it either.
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		r := &testNode{key: rogue, raw: pc, peers: []Peer{{Key: a.pub(), Addr: a.srv.Addr().String()}}}
		r.start(t)
		if err := r.srv.Peers().Broadcast(MsgAttest, signedAttest(rogue, 0, 1)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the rogue's dial to fail", func() bool { return statsOf(r.srv, a.pub()).DialFails >= 2 })
		if st := statsOf(r.srv, a.pub()); st.Dials != 0 || st.Connected {
			t.Fatalf("rogue connected: %+v", st)
		}
		if len(a.in.all()) != 0 {
			t.Fatal("a accepted frames from an unknown key")
		}
	})

	t.Run("as dialer", func(t *testing.T) {
		// The server at b's address is not the pinned key.
		if _, err := rawDial(t, b.srv.Addr(), a.key, ALPNPeer, key(77).Public().(ed25519.PublicKey)); err == nil ||
			!strings.Contains(err.Error(), "not pinned") {
			t.Fatalf("dial to an unpinned server: %v", err)
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		// c has a's identity, so b would accept it, but c expects key 77 at
		// b's address.
		c := &testNode{key: a.key, raw: pc, peers: []Peer{{Key: key(77).Public().(ed25519.PublicKey), Addr: b.srv.Addr().String()}}}
		c.start(t)
		if err := c.srv.Peers().Broadcast(MsgAttest, signedAttest(c.key, 0, 1)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the dial to the wrong key to fail", func() bool { return c.srv.Peers().Stats()[0].DialFails >= 2 })
		if st := c.srv.Peers().Stats()[0]; st.Dials != 0 {
			t.Fatalf("connected to the wrong key: %+v", st)
		}
		if len(b.in.all()) != 0 {
			t.Fatal("b received a frame")
		}
	})
}

// TestPeerALPNSeparation: the client and peer protocols share one socket
// but neither can speak the other.
func TestPeerALPNSeparation(t *testing.T) {
	nodes := cluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("client protocol still served", func(t *testing.T) {
		c := dialAddr(t, a.srv.Addr(), ClientConfig{ServerKey: a.pub()})
		call, err := c.Submit(ctx, put(7, "k"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := call.Accepted(); err != nil {
			t.Fatal(err)
		}
		if err := c.Echo(ctx, []byte("ping")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("client cannot send peer frames", func(t *testing.T) {
		// Even with a peer's key as its client certificate.
		c := dialAddr(t, a.srv.Addr(), ClientConfig{Key: b.key})
		call, err := rawStream(ctx, c, AppendFrame(nil, MsgAttest, signedAttest(b.key, 0, 1)))
		if err != nil {
			t.Fatal(err)
		}
		var rej *RejectError
		if _, err := call.Accepted(); !errors.As(err, &rej) || rej.Code != tx.CodeEncoding {
			t.Fatalf("peer frame on a client stream: %v", err)
		}
	})
	t.Run("peer ALPN without a certificate", func(t *testing.T) {
		refusedDial(t, a.srv.Addr(), nil, ALPNPeer, a.pub())
	})
	t.Run("peer cannot submit transactions", func(t *testing.T) {
		ingressed := func() int {
			a.log.mu.Lock()
			defer a.log.mu.Unlock()
			return len(a.log.got)
		}
		before := ingressed()
		conn, err := rawDial(t, a.srv.Addr(), b.key, ALPNPeer, a.pub())
		if err != nil {
			t.Fatal(err)
		}
		st, err := conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st.Write(AppendFrame(nil, MsgSubmit, put(7, "sneaky")))
		st.Close()
		waitFor(t, "the bad frame", func() bool { return statsOf(a.srv, b.pub()).BadFrames == 1 })
		if n := ingressed() - before; n != 0 || len(a.in.all()) != 0 {
			t.Fatalf("ingress saw %d, handler %d", n, len(a.in.all()))
		}
	})
	t.Run("server without peers refuses the peer ALPN", func(t *testing.T) {
		s := startServer(t, &fakeLog{})
		if s.Peers() != nil {
			t.Fatal("peers without a config")
		}
		refusedDial(t, s.Addr(), b.key, ALPNPeer, key(1).Public().(ed25519.PublicKey))
	})
	t.Run("unknown ALPN refused", func(t *testing.T) {
		refusedDial(t, a.srv.Addr(), b.key, "h3", a.pub())
	})
}

// refusedDial checks that a connection attempt fails: either the handshake
// failed at the dialer, or (TLS 1.3 finishes the client's side before the
// server checks the client's certificate) the server closed the connection
// right after with a TLS error, before any stream was accepted.
func refusedDial(t *testing.T, addr net.Addr, k ed25519.PrivateKey, alpn string, server ed25519.PublicKey) {
	t.Helper()
	conn, err := rawDial(t, addr, k, alpn, server)
	if err != nil {
		return
	}
	select {
	case <-conn.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was accepted")
	}
	var te *quic.TransportError
	if cause := context.Cause(conn.Context()); !errors.As(cause, &te) || !te.ErrorCode.IsCryptoError() {
		t.Fatalf("connection closed, but not by a TLS error: %v", cause)
	}
}

func dialAddr(t *testing.T, addr net.Addr, cfg ClientConfig) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr.String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestPeerBadFrames: a frame that breaks the protocol resets its stream
// only, is counted, and the peer's connection goes on.
func TestPeerBadFrames(t *testing.T) {
	nodes := cluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := rawDial(t, a.srv.Addr(), b.key, ALPNPeer, a.pub())
	if err != nil {
		t.Fatal(err)
	}
	good := AppendFrame(nil, MsgAttest, signedAttest(b.key, 0, 1))
	cases := []struct {
		name string
		b    []byte
	}{
		{"oversized", []byte{0, 1, 0, 1, byte(MsgAttest)}},
		{"empty", []byte{0, 0, 0, 0}},
		{"client type", AppendFrame(nil, MsgEcho, []byte("x"))},
		{"handler refuses", AppendFrame(nil, MsgAttest, []byte("not an attestation"))},
		{"forged signer", AppendFrame(nil, MsgAttest, signedAttest(a.key, 0, 1))},
		{"handler refuses the type", AppendFrame(nil, msgRefuse, nil)},
		{"client type with an empty payload", AppendFrame(nil, MsgSubmit, nil)},
		{"truncated", []byte{0, 0, 0, 9, byte(MsgAttest), 1}},
		{"good frames, then a bad one", append(append(append([]byte(nil), good...), good...), 0, 0, 0, 0)},
	}
	for i, tc := range cases {
		st, err := conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st.Write(tc.b)
		st.Close()
		waitFor(t, tc.name, func() bool { return statsOf(a.srv, b.pub()).BadFrames == uint64(i+1) })
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Write(good)
	waitFor(t, "a good frame after the bad ones", func() bool { return len(a.in.all()) == 3 })
	if conn.Context().Err() != nil {
		t.Fatal("the connection was closed")
	}
	if s := statsOf(a.srv, b.pub()); s.Received != 3 || s.BadFrames != uint64(len(cases)) {
		t.Fatalf("stats %+v", s)
	}
}

// TestPeerStreamResetRecovers: when the receiver resets a sender's stream
// (its handler refused a frame), the sender goes on with a new stream on
// the same connection.
func TestPeerStreamResetRecovers(t *testing.T) {
	nodes := cluster(t, 2, nil)
	a, b := nodes[0], nodes[1]
	if err := a.srv.Peers().Send(b.pub(), msgRefuse, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refusal", func() bool { return statsOf(b.srv, a.pub()).BadFrames == 1 })
	waitFor(t, "a frame after the reset", func() bool {
		_ = a.srv.Peers().Send(b.pub(), msgHello, nil)
		time.Sleep(5 * time.Millisecond)
		return len(b.in.all()) > 0
	})
	if st := statsOf(a.srv, b.pub()); st.Dials != 1 || !st.Connected {
		t.Fatalf("a reconnected instead of opening a new stream: %+v", st)
	}
}

// TestPeerRestart: a peer that restarts (cleanly, then as if it crashed)
// is reconnected to; OnConnect fires again so state can be resent.
func TestPeerRestart(t *testing.T) {
	var connects [3]atomic.Int32
	var nodes []*testNode
	nodes = cluster(t, 3, func(i int, c *PeerConfig) {
		c.OnConnect = func(p ed25519.PublicKey) {
			connects[i].Add(1)
			// What a runner does: send its open state again.
			_ = nodes[i].srv.Peers().Send(p, msgHello, []byte{byte(i)})
		}
	})
	a, b := nodes[0], nodes[1]
	hellosFrom := func(n *testNode, from *testNode) int {
		return n.in.count(func(r rec) bool { return r.typ == msgHello && r.from.Equal(from.pub()) })
	}
	for _, n := range nodes {
		if err := n.srv.Peers().Broadcast(MsgAttest, signedAttest(n.key, 0, 1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		waitFor(t, "first round", func() bool { return n.in.count(func(r rec) bool { return r.typ == MsgAttest }) == 2 })
	}

	outer := t // restarted nodes live until the test's end, not the subtest's
	t.Run("clean restart", func(t *testing.T) {
		b.stop()
		b.start(outer)
		// a redials b on its own (it saw the connection close) and says hello.
		waitFor(t, "a's hello to the restarted b", func() bool { return hellosFrom(b, a) >= 1 })
		if err := b.srv.Peers().Broadcast(MsgAttest, signedAttest(b.key, 0, 2)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "b's frame at a", func() bool {
			return a.in.count(func(r rec) bool { return r.from.Equal(b.pub()) && r.typ == MsgAttest }) == 2
		})
		if st := statsOf(a.srv, b.pub()); st.Dials < 2 {
			t.Fatalf("a's stats for b: %+v", st)
		}
	})

	t.Run("crash restart", func(t *testing.T) {
		// b vanishes without a word (its run's socket drops everything,
		// even packets quic-go sends after Close returns), then a new b runs
		// on the same socket. a learns at its next packet, through the
		// stateless reset that the new b sends under the same identity, well
		// before its 10s idle timeout.
		b.pc.mute.Store(true)
		b.stop()
		before := connects[0].Load()
		b.start(outer)
		deadline := time.Now().Add(8 * time.Second)
		for hellosFrom(b, a) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("a did not reconnect to the crashed b before its idle timeout; stats %+v", statsOf(a.srv, b.pub()))
			}
			_ = a.srv.Peers().Send(b.pub(), MsgAttest, signedAttest(a.key, 0, 3))
			time.Sleep(20 * time.Millisecond)
		}
		if connects[0].Load() <= before {
			t.Fatal("OnConnect did not fire again")
		}
	})
}

// TestPeersSlowPeer: a peer that stops reading costs its own queue only:
// Broadcast never blocks, that peer's frames are dropped and counted, and
// the other peer gets every frame.
func TestPeersSlowPeer(t *testing.T) {
	release := make(chan struct{})
	nodes := cluster(t, 3, func(i int, c *PeerConfig) {
		c.QueueLen = 4
		if i == 1 {
			in := &inbox{}
			h := attestHandler(in)
			c.Handler = func(from ed25519.PublicKey, typ MsgType, p []byte) error {
				<-release
				return h(from, typ, p)
			}
		}
	})
	t.Cleanup(func() { close(release) }) // before the nodes stop
	a, slow, fast := nodes[0], nodes[1], nodes[2]
	payload := make([]byte, 32<<10)
	const frames = 120 // 3.75 MiB, far beyond the slow peer's flow control window
	for i := range frames {
		if err := a.srv.Peers().Broadcast(msgHello, payload); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the fast peer", func() bool { return len(fast.in.all()) == i+1 })
	}
	if st := statsOf(a.srv, fast.pub()); st.Sent != frames || st.Dropped != 0 {
		t.Fatalf("fast peer: %+v", st)
	}
	if st := statsOf(a.srv, slow.pub()); st.Dropped == 0 || st.Sent+st.Dropped+uint64(st.Queued) > frames+1 {
		t.Fatalf("slow peer: %+v", st)
	}
}

func TestPeersAPI(t *testing.T) {
	nodes := cluster(t, 2, nil)
	p := nodes[0].srv.Peers()
	if err := p.Broadcast(MsgSubmit, nil); !errors.Is(err, ErrUnexpected) {
		t.Fatalf("client type: %v", err)
	}
	if err := p.Broadcast(MsgAttest, make([]byte, DefaultMaxFrame)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	if err := p.Send(key(99).Public().(ed25519.PublicKey), MsgAttest, nil); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("unknown peer: %v", err)
	}
	nodes[0].stop()
	if err := p.Broadcast(MsgAttest, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}

	// A full queue drops, counts and says so.
	dead, err := net.ListenPacket("udp", "127.0.0.1:0") // nothing answers here
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	n := &testNode{key: key(40), raw: pc, peers: []Peer{{Key: key(41).Public().(ed25519.PublicKey), Addr: dead.LocalAddr().String()}},
		cfg: func(c *PeerConfig) { c.QueueLen = 1; c.DialTimeout = 100 * time.Millisecond }}
	n.start(t)
	var full int
	for range 3 {
		if err := n.srv.Peers().Send(key(41).Public().(ed25519.PublicKey), MsgAttest, nil); errors.Is(err, ErrQueueFull) {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if st := n.srv.Peers().Stats()[0]; full == 0 || st.Dropped != uint64(full) {
		t.Fatalf("full queue: %d refused, stats %+v", full, st)
	}
	waitFor(t, "a failed dial", func() bool { return n.srv.Peers().Stats()[0].DialFails >= 1 })
}

func TestPeerConfigValidation(t *testing.T) {
	k := key(30).Public().(ed25519.PublicKey)
	h := func(ed25519.PublicKey, MsgType, []byte) error { return nil }
	cases := []struct {
		name string
		cfg  PeerConfig
		want string
	}{
		{"no handler", PeerConfig{}, "Handler is required"},
		{"short key", PeerConfig{Handler: h, Peers: []Peer{{Key: k[:5], Addr: "x:1"}}}, "not an ed25519"},
		{"twice", PeerConfig{Handler: h, Peers: []Peer{{Key: k, Addr: "x:1"}, {Key: k, Addr: "y:1"}}}, "listed twice"},
		{"no address", PeerConfig{Handler: h, Peers: []Peer{{Key: k}}}, "address is required"},
	}
	for _, tc := range cases {
		_, err := Listen(ServerConfig{Key: key(31), Ingress: &fakeLog{}, Peer: &tc.cfg})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// Our own entry needs no address: it is skipped.
	s, err := Listen(ServerConfig{Key: key(30), Ingress: &fakeLog{}, Peer: &PeerConfig{Handler: h, Peers: []Peer{{Key: k}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Peers().Keys()) != 0 {
		t.Fatal("self listed as a peer")
	}
}

// BenchmarkPeersAttest: attestations from one node to another over
// loopback QUIC, measured until the receiver's handler has them all.
func BenchmarkPeersAttest(b *testing.B) {
	var got atomic.Int64
	pcs := make([]net.PacketConn, 2)
	var peers []Peer
	for i := range pcs {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer pc.Close()
		pcs[i] = pc
		peers = append(peers, Peer{Key: key(byte(50 + i)).Public().(ed25519.PublicKey), Addr: pc.LocalAddr().String()})
	}
	var srvs []*Server
	for i := range pcs {
		s, err := Listen(ServerConfig{Key: key(byte(50 + i)), Ingress: &fakeLog{}, PacketConn: pcs[i], Peer: &PeerConfig{
			Peers: peers, QueueLen: 1 << 16,
			Handler: func(ed25519.PublicKey, MsgType, []byte) error { got.Add(1); return nil },
		}})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go s.Serve(ctx)
		defer func() { cancel(); s.Close() }()
		srvs = append(srvs, s)
	}
	att := signedAttest(key(50), 0, 1)
	b.SetBytes(int64(len(att)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for srvs[0].Peers().Broadcast(MsgAttest, att) != nil || statsOf(srvs[0], peers[1].Key).Queued > 1<<15 {
			time.Sleep(time.Millisecond)
		}
	}
	for got.Load() < int64(b.N) {
		if st := statsOf(srvs[0], peers[1].Key); st.Dropped > 0 {
			b.Fatalf("dropped: %+v", st)
		}
		time.Sleep(100 * time.Microsecond)
	}
}
