package node_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCostMetrics: after a node committed some puts, its cost metrics hold
// at least what those puts must have cost: their bytes on the client QUIC
// path and to and from the broker, a Poseidon permutation per value, and
// Pebble writes; a node without peers sent none.
func TestCostMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg := prometheus.NewRegistry()
	n := startNodeReg(t, ctx, nil, "", t.TempDir(), newBlockLog(), reg) // its embedded broker
	defer n.Close()
	const count = 40
	submitPuts(t, ctx, n, count, "cost")
	var txBytes float64
	for i := range count {
		_, raw := signedPut(i, "cost")
		txBytes += float64(len(raw))
	}
	wire := func(path, dir string) float64 {
		return metricValue(t, reg, "rustorium_wire_bytes_total", map[string]string{"path": path, "direction": dir})
	}
	for _, c := range []struct {
		what      string
		got, want float64
	}{
		{"client QUIC bytes received", wire("client_quic", "received"), txBytes},
		{"client QUIC bytes sent", wire("client_quic", "sent"), 1},
		{"Kafka produce bytes sent", wire("kafka_produce", "sent"), txBytes},
		{"Kafka fetch bytes received", wire("kafka_fetch", "received"), txBytes},
		{"Kafka other bytes sent", wire("kafka_other", "sent"), 1},
		{"Poseidon permutations", metricValue(t, reg, "rustorium_poseidon_permutations_total", nil), count},
		{"Pebble bytes in", metricValue(t, reg, "rustorium_pebble_bytes_in_total", nil), txBytes},
		{"Pebble write amplification", metricValue(t, reg, "rustorium_pebble_write_amplification", nil), 1},
		{"heap in use", metricValue(t, reg, "rustorium_memory_heap_inuse_bytes", nil), 1},
	} {
		if c.got < c.want {
			t.Errorf("%s: %.0f, want at least %.0f", c.what, c.got, c.want)
		}
	}
	if runtime.GOOS == "linux" {
		if got := metricValue(t, reg, "rustorium_memory_rss_bytes", nil); got < 1<<20 {
			t.Errorf("RSS %.0f bytes", got)
		}
	}
	if in, out := metricValue(t, reg, "rustorium_pebble_bytes_in_total", nil), metricValue(t, reg, "rustorium_pebble_bytes_written_total", nil); out < in {
		t.Errorf("Pebble wrote %.0f bytes for %.0f in", out, in)
	}
	// The puts write 37 keys (signedPut): each hashed once it is first
	// written, again only when a block writes it twice before it is cached.
	if got := metricValue(t, reg, "rustorium_state_keys_hashed_total", nil); got < 37 || got > count {
		t.Errorf("state keys hashed: %.0f, want 37 to %d", got, count)
	}
	if got := wire("peer", "sent") + wire("peer", "received"); got != 0 {
		t.Errorf("a node alone sent or received %.0f peer bytes", got)
	}
}
