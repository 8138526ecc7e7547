package bench

import (
	"strings"
	"testing"

	"github.com/rustorium/rustorium/reports"
)

// componentsScript is perf script output with one sample (of a distinct
// period, so each part's sum tells which samples it got) for each rule of
// cpuComponents' order.
const componentsScript = `    1 
	ffffffff81737272 __x64_sys_fdatasync
	          4f19ea golang.org/x/sys/unix.Fdatasync
	          7c3746 github.com/cockroachdb/pebble/v2/record.(*LogWriter).syncWithLatency
	          7c3746 github.com/rustorium/rustorium/node/storage.(*DB).Commit

    2 
	          8ea0df github.com/rustorium/rustorium/node/merkle/poseidon.permute3asm.abi0
	          8ea0df github.com/rustorium/rustorium/node/merkle.(*emitter).hashAll
	          7c3746 github.com/rustorium/rustorium/node/storage.(*DB).Prepare
	          7c3746 github.com/rustorium/rustorium/node.(*replica).run

    4 
	          4f19ea runtime.mallocgc
	          4f19ea github.com/rustorium/rustorium/node.(*leader).run

    8 
	          4f19ea runtime.scanobject
	          4f19ea runtime.gcDrain
	          4f19ea runtime.gcBgMarkWorker

    16 
	          4f19ea runtime.findRunnable
	          4f19ea runtime.schedule

    32 
	ffffffff81000130 __irq_exit_rcu

    64 
	          4f19ea github.com/twmb/franz-go/pkg/kmsg.(*ProduceRequest).ReadFrom
	          4f19ea github.com/twmb/franz-go/pkg/kfake.(*Cluster).handleProduce

    128 
	          4f19ea github.com/twmb/franz-go/pkg/kgo.(*brokerCxn).writeRequest

    256 
	ffffffff81000130 __sys_sendmsg
	          4f19ea github.com/quic-go/quic-go.(*Conn).sendPackets
	          4f19ea github.com/rustorium/rustorium/loadgen.(*Submitter).deliver

    512 
	          4f19ea github.com/rustorium/rustorium/reports.(*Recorder).Record
	          4f19ea github.com/rustorium/rustorium/loadgen.(*Submitter).deliver

    1024 
	          4f19ea github.com/rustorium/rustorium/loadgen.(*OpenLoop).Run

    2048 
	          4f19ea crypto/internal/fips140/edwards25519/field.feMul
	          4f19ea github.com/rustorium/rustorium/node/consensus.(*Attestation).Sign

    4096 
	               0 [unknown]

`

// TestProfileComponents: each sample counts once, for the first part of
// cpuComponents' order that a function of its stack belongs to (the
// Poseidon a replica runs is Poseidon's, a node's allocation the node's,
// the kernel's fsync under Pebble Pebble's, kmsg under kfake the
// broker's, the load generator's QUIC QUIC's and its recording the
// harness's), Go's runtime and the kernel only what no part claims; the
// parts come in that order with their shares and, given the committed
// count, their µs a transaction.
func TestProfileComponents(t *testing.T) {
	s := summarizeScript(t, componentsScript, nil)
	want := []reports.ProfileComponent{
		{Name: "harness (floors, sampling, recording)", Value: 512},
		{Name: "Poseidon", Value: 2},
		{Name: "ed25519", Value: 2048},
		{Name: "Pebble", Value: 1},
		{Name: "embedded broker (kfake)", Value: 64},
		{Name: "Kafka client (franz-go)", Value: 128},
		{Name: "QUIC (quic-go)", Value: 256},
		{Name: "load generator", Value: 1024},
		{Name: "node (other)", Value: 4},
		{Name: "Go GC (background)", Value: 8},
		{Name: "Go runtime (scheduler, timers, poller)", Value: 16},
		{Name: "other (kernel, libraries)", Value: 32 + 4096},
	}
	got := s.Components
	if len(got) != len(want) {
		t.Fatalf("components %+v, want %d", got, len(want))
	}
	var pct float64
	for i, w := range want {
		if got[i].Name != w.Name || got[i].Value != w.Value {
			t.Errorf("component %d: %s %d, want %s %d", i, got[i].Name, got[i].Value, w.Name, w.Value)
		}
		if p := float64(int64(float64(w.Value)*1000/float64(s.Total))) / 10; got[i].Pct != p {
			t.Errorf("%s: %v%%, want %v", w.Name, got[i].Pct, p)
		}
		pct += got[i].Pct
	}
	if pct < 99 || pct > 100 {
		t.Errorf("shares sum to %v%%", pct)
	}

	// The parts' µs a transaction split the processes' CPU a transaction
	// by their shares: 2 s over 4 transactions is 500000 µs each, the
	// kernel and libraries' 4128 of 8191 ns of it 251983.8.
	profiles := []reports.ProfileSummary{{Kind: "heap"}, s}
	profileCPU(profiles, 2, 0, 0)
	if profiles[1].Components[0].MicrosPerTx != 0 {
		t.Fatal("µs a transaction with none committed")
	}
	profileCPU(profiles, 2, 0, 4)
	if c := profiles[1].Components[len(want)-1]; c.MicrosPerTx != 251983.8 {
		t.Fatalf("%s: %v µs a transaction, want 251983.8", c.Name, c.MicrosPerTx)
	}
}

// TestProfileCoverage: a CPU profile's coverage is its total over the CPU
// time of the processes it samples (perf's the node processes' too); one
// that saw much less or more gets a caveat after any it had, and a perf
// profile short beside Go's profile is told to run alone. Its parts' µs a
// transaction split that CPU time, not the samples'.
func TestProfileCoverage(t *testing.T) {
	const s = int64(1e9) // a second of CPU in a profile's unit
	profiles := []reports.ProfileSummary{
		{Kind: "cpu", Total: 21 * s / 10, Caveat: "paced"},
		{Kind: "perf", Total: 2 * s, Components: []reports.ProfileComponent{{Name: "Poseidon", Value: s / 2}, {Name: "Pebble", Value: 3 * s / 2}}},
		{Kind: "heap", Total: 5 * s},
	}
	profileCPU(profiles, 2, 2, 1000) // the harness 2 s, the nodes 2 s, 1000 transactions
	if c := profiles[0]; c.CoveredPct != 105 || c.Caveat != "paced" {
		t.Fatalf("cpu: covered %v%%, caveat %q: want 105 and only the caveat it had", c.CoveredPct, c.Caveat)
	}
	if p := profiles[1]; p.CoveredPct != 50 || !strings.Contains(p.Caveat, "50% of the CPU time") || !strings.Contains(p.Caveat, "profile with perf alone") {
		t.Fatalf("perf over harness and nodes: covered %v%%, caveat %q", p.CoveredPct, p.Caveat)
	}
	if c := profiles[1].Components; c[0].MicrosPerTx != 1000 || c[1].MicrosPerTx != 3000 {
		t.Fatalf("perf's parts: %+v, want 1000 and 3000 µs a transaction (4 s of CPU over 1000, a quarter and three)", c)
	}
	if h := profiles[2]; h.CoveredPct != 0 || h.Caveat != "" {
		t.Fatalf("heap profile got coverage %v, caveat %q", h.CoveredPct, h.Caveat)
	}

	profiles = []reports.ProfileSummary{{Kind: "cpu", Total: 3 * s, Caveat: "paced"}, {Kind: "perf", Total: 2 * s}}
	profileCPU(profiles, 2, 0, 0)
	if c := profiles[0]; c.CoveredPct != 150 || !strings.HasPrefix(c.Caveat, "paced. Also, its samples add up to 150%") {
		t.Fatalf("cpu profile over its process's CPU: covered %v%%, caveat %q", c.CoveredPct, c.Caveat)
	}
	if p := profiles[1]; p.CoveredPct != 100 || p.Caveat != "" {
		t.Fatalf("perf at 100%%: caveat %q", p.Caveat)
	}
	profiles = []reports.ProfileSummary{{Kind: "perf", Total: s}}
	profileCPU(profiles, 2, 0, 0)
	if p := profiles[0]; !strings.Contains(p.Caveat, "50%") || strings.Contains(p.Caveat, "alone") {
		t.Fatalf("perf alone at 50%%: caveat %q", p.Caveat)
	}
	profiles = []reports.ProfileSummary{{Kind: "perf", Total: s}}
	profileCPU(profiles, 0, 0, 0)
	if p := profiles[0]; p.CoveredPct != 0 || p.Caveat != "" {
		t.Fatalf("no CPU time measured: covered %v, caveat %q", p.CoveredPct, p.Caveat)
	}
}
