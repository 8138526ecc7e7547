package p2p

import (
	"context"
	"testing"
)

// BenchmarkEcho is one QUIC round trip on a fresh stream through the server:
// the floor under every submit.
func BenchmarkEcho(b *testing.B) {
	s := startServer(b, &fakeLog{})
	c := dial(b, s, ClientConfig{})
	payload := make([]byte, 180)
	ctx := context.Background()
	for b.Loop() {
		if err := c.Echo(ctx, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmitAccepted is a submit up to its accepted receipt against an
// ingress that acknowledges at once: the QUIC path plus decoding and the
// signature check.
func BenchmarkSubmitAccepted(b *testing.B) {
	s := startServer(b, &fakeLog{})
	c := dial(b, s, ClientConfig{})
	raw := put(7, "bench")
	ctx := context.Background()
	for b.Loop() {
		call, err := c.Submit(ctx, raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := call.Accepted(); err != nil {
			b.Fatal(err)
		}
		call.Abort()
	}
}
