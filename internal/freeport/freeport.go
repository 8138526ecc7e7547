// Package freeport hands tests loopback addresses for a process they start
// and must name before it runs (a cluster file's peer and API addresses).
//
// Binding 127.0.0.1:0 and closing again is not enough for that: the port
// comes from the kernel's ephemeral range, and until the child binds it
// any outbound connection (a Kafka client's, an HTTP client's) may be
// handed the same port, and the child fails with "address already in
// use". The ports Loopback picks lie below the ephemeral range, where the
// kernel never assigns one by itself: only another explicit bind can take
// them, and Loopback checks that none holds one now.
package freeport

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lowest is the lowest port Loopback picks (well above the ports of
// services a developer machine runs, and of the test Kafka broker's 19092).
const lowest = 20000

// tries bounds the ports Loopback probes before it gives up.
const tries = 200

var (
	mu    sync.Mutex
	given = map[int]bool{} // never handed out twice by this process
	rng   = rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
)

// Loopback returns "127.0.0.1:N" where N is free for both TCP and UDP, lies
// below the kernel's ephemeral range and was not returned before in this
// process. It fails t when no such port is found.
func Loopback(t testing.TB) string {
	t.Helper()
	hi := ephemeralLow()
	mu.Lock()
	defer mu.Unlock()
	for range tries {
		p := lowest + rng.IntN(hi-lowest)
		if given[p] || !free(p) {
			continue
		}
		given[p] = true
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	t.Fatalf("freeport: no free port in [%d, %d) after %d tries", lowest, hi, tries)
	return ""
}

// free reports whether p can be bound on 127.0.0.1 for TCP and for UDP.
func free(p int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// ephemeralLow is the lowest port of the kernel's ephemeral range (Linux's
// ip_local_port_range; 32768, Linux's default, elsewhere or if unreadable),
// at least lowest+1000.
func ephemeralLow() int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	return max(low, lowest+1000)
}
