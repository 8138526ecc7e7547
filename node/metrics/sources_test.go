package metrics

import (
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRegisterSources: each source's value under its name and labels, the
// write amplification their ratio, and nil sources left out.
func TestRegisterSources(t *testing.T) {
	reg := prometheus.NewRegistry()
	err := RegisterSources(reg, Sources{
		PoseidonPermutations: func() uint64 { return 42 },
		KeysHashed:           func() uint64 { return 5 },
		Wire: func() Wire {
			return Wire{ClientSent: 1, ClientReceived: 2, PeerSent: 3, FetchReceived: 9, OtherSent: 10}
		},
		Pebble: func() Pebble {
			return Pebble{BytesIn: 100, BytesWritten: 250, BytesFlushed: 90, MemtablesFlushed: 2.5, L0Rounds: 3, WALSyncs: 6, WALSyncSeconds: 0.003}
		},
		Prepares: func() (uint64, uint64) { return 4, 7 },
	})
	if err != nil {
		t.Fatal(err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			got[name] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"rustorium_poseidon_permutations_total":           42,
		"rustorium_state_keys_hashed_total":               5,
		"rustorium_wire_bytes_total/sent/client_quic":     1,
		"rustorium_wire_bytes_total/received/client_quic": 2,
		"rustorium_wire_bytes_total/sent/peer":            3,
		"rustorium_wire_bytes_total/received/peer":        0,
		"rustorium_wire_bytes_total/received/kafka_fetch": 9,
		"rustorium_wire_bytes_total/sent/kafka_other":     10,
		"rustorium_pebble_bytes_in_total":                 100,
		"rustorium_pebble_bytes_written_total":            250,
		"rustorium_pebble_write_amplification":            2.5,
		"rustorium_pebble_bytes_flushed_total":            90,
		"rustorium_pebble_memtables_flushed_total":        2.5,
		"rustorium_pebble_l0_rounds_total":                3,
		"rustorium_pebble_wal_syncs_total":                6,
		"rustorium_pebble_wal_sync_seconds_total":         0.003,
		"rustorium_prepare_batches_total":                 4,
		"rustorium_prepare_blocks_total":                  7,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if got["rustorium_memory_heap_inuse_bytes"] <= 0 {
		t.Errorf("heap in use %v", got["rustorium_memory_heap_inuse_bytes"])
	}
	if _, ok := got["rustorium_memory_rss_bytes"]; ok != (runtime.GOOS == "linux") {
		t.Errorf("RSS present %v on %s", ok, runtime.GOOS)
	}

	// Without sources: only the memory gauges.
	reg = prometheus.NewRegistry()
	if err := RegisterSources(reg, Sources{}); err != nil {
		t.Fatal(err)
	}
	fams, _ = reg.Gather()
	for _, f := range fams {
		if n := f.GetName(); n != "rustorium_memory_heap_inuse_bytes" && n != "rustorium_memory_rss_bytes" {
			t.Errorf("no sources, yet %s", n)
		}
	}
}
