package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestLoopback checks that the ports are distinct, below the ephemeral
// range, bindable for both networks, and that a port held by someone else
// is never returned.
func TestLoopback(t *testing.T) {
	hi := ephemeralLow()
	seen := map[string]bool{}
	for range 50 {
		a := Loopback(t)
		if seen[a] {
			t.Fatalf("%s returned twice", a)
		}
		seen[a] = true
		_, ps, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(ps)
		if p < lowest || p >= hi {
			t.Fatalf("%s outside [%d, %d)", a, lowest, hi)
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("tcp %s: %v", a, err)
		}
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			t.Fatalf("udp %s: %v", a, err)
		}
		// Held now: free must say so for either network.
		if free(p) {
			t.Fatalf("free(%d) while it is bound", p)
		}
		ln.Close()
		if free(p) {
			t.Fatalf("free(%d) while its UDP port is bound", p)
		}
		pc.Close()
	}
}
