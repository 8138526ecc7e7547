package netem

import (
	"net"
	"testing"
	"time"
)

// echoProcess is a plain UDP socket that answers every datagram, as a
// process the Network cannot wrap would.
func echoProcess(t *testing.T) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() { pc.Close() })
	return pc
}

// roundTrip sends one datagram from a plain client socket to addr and
// returns how long the answer took, or false when none came within wait.
func roundTrip(t *testing.T, client net.PacketConn, addr net.Addr, wait time.Duration) (time.Duration, bool) {
	t.Helper()
	start := time.Now()
	if _, err := client.WriteTo([]byte("ping"), addr); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 64)
	n, _, err := client.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		return 0, false
	}
	return time.Since(start), true
}

// TestRelayImpairsBothWays: a relay in front of a process's socket makes
// its traffic node-1's: a client's datagram is delayed on clients→node-1,
// the answer on node-1→clients, loss on either link drops the round trip,
// and a partition cuts it until healed.
func TestRelayImpairsBothWays(t *testing.T) {
	nw := New(Options{Seed: 1})
	defer nw.Close()
	proc := echoProcess(t)
	public, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r, err := nw.Relay("node-1", public, proc.LocalAddr(), "clients")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	client, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	if _, ok := roundTrip(t, client, public.LocalAddr(), time.Second); !ok {
		t.Fatal("no answer through an unimpaired relay")
	}
	if err := nw.SetLink("clients", "node-1", Impairment{Delay: 60 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := nw.SetLink("node-1", "clients", Impairment{Delay: 40 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if d, ok := roundTrip(t, client, public.LocalAddr(), 2*time.Second); !ok || d < 100*time.Millisecond {
		t.Fatalf("round trip %v (answered %t), want at least 100ms (60ms there, 40ms back)", d, ok)
	}
	for _, dir := range [][2]string{{"clients", "node-1"}, {"node-1", "clients"}} {
		nw.SetLink(dir[0], dir[1], Impairment{Loss: 1})
		if _, ok := roundTrip(t, client, public.LocalAddr(), 300*time.Millisecond); ok {
			t.Fatalf("an answer with all of %s→%s lost", dir[0], dir[1])
		}
		nw.SetLink(dir[0], dir[1], Impairment{})
	}
	heal := nw.Partition([]string{"clients"}, []string{"node-1"})
	if _, ok := roundTrip(t, client, public.LocalAddr(), 300*time.Millisecond); ok {
		t.Fatal("an answer across a partition")
	}
	heal()
	if _, ok := roundTrip(t, client, public.LocalAddr(), time.Second); !ok {
		t.Fatal("no answer after the partition healed")
	}
	// Another process's socket, registered as node-2: its datagrams take
	// node-2→node-1, not the clients' links.
	peer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := nw.Register("node-2", peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	nw.SetLink("clients", "node-1", Impairment{Loss: 1})
	nw.SetLink("node-2", "node-1", Impairment{Delay: 80 * time.Millisecond})
	if d, ok := roundTrip(t, peer, public.LocalAddr(), 2*time.Second); !ok || d < 80*time.Millisecond {
		t.Fatalf("node-2's round trip %v (answered %t), want at least node-2→node-1's 80ms", d, ok)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}
