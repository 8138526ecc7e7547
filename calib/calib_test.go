package calib

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"testing"
	"time"

	"github.com/rustorium/rustorium/node/storage"
)

// quick is one quick calibration shared by the tests of this file.
func quick(t *testing.T) *Calibration {
	t.Helper()
	c, err := Calibrate(context.Background(), Options{Quick: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCalibrateQuickRoundTrips(t *testing.T) {
	c := quick(t)
	if c.Version != Version || !c.Quick || c.Machine.Cores < 1 || c.Machine.GoVersion == "" {
		t.Fatalf("header: %+v", c)
	}
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d := reencode(t, c)
	b2, err := d.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Fatalf("encode(decode(x)) != x:\n%s\n%s", b, b2)
	}
	// Every operation is there and positive (Validate), and the lookups
	// give positive costs growing with size.
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2]float64{
		"hash_bytes":   {d.HashBytesNs(32), d.HashBytesNs(16384)},
		"state_block":  {d.StateBlockNs(1), d.StateBlockNs(5000)},
		"state_tree":   {stateAt(t, d, 1, 0), stateAt(t, d, 5000, 1000000)},
		"merkle_block": {d.MerkleBlockNs(10, 0), d.MerkleBlockNs(1000, 1000000)},
		"verify_batch": {d.VerifyBatchNs(1), d.VerifyBatchNs(256)},
		"state_read":   {d.StateReadNs(0), d.StateReadNs(1000000)},
		"proof_verify": {d.ProofVerifyNs(0), d.ProofVerifyNs(1000000)},
	} {
		if !(pair[0] > 0) || !(pair[1] >= pair[0]) || math.IsInf(pair[1], 0) {
			t.Errorf("%s: %v then %v", name, pair[0], pair[1])
		}
	}
	// Every HTTP API protocol is measured, through the API server: its
	// round trip (a submission, admitted and answered twice over HTTP) is
	// not cheaper than the signature check in it.
	if len(d.Ops.API) != 3 {
		t.Fatalf("api: %+v", d.Ops.API)
	}
	for _, p := range []string{"rest", "ws", "graphql"} {
		if a := d.APIOf(p); a.Estimated || !(a.RoundTripNs > 0) || !(a.AcceptedNs > 0) || a.AcceptedNs > a.RoundTripNs || !(a.RequestNs > 0) {
			t.Errorf("api %s: %+v", p, a)
		}
	}
	for _, a := range d.Ops.API {
		if a.RoundTrip.P50Ns < d.Ops.Ed25519VerifyNs {
			t.Errorf("api %s: round trip %v ns under a signature check's %v", a.Protocol, a.RoundTrip.P50Ns, d.Ops.Ed25519VerifyNs)
		}
	}
	// Both round trips are measured at the slower pace too.
	if p := d.Ops.Paced; p == nil || p.GapNs != float64(PacedGap) || !(p.QUICRoundTrip.P50Ns > 0) || !(p.ProduceAck.P50Ns > 0) {
		t.Errorf("paced: %+v", d.Ops.Paced)
	}
	// Pebble's background is measured with the node's memtable; a quick
	// calibration has no end-to-end run, so no bytes in per transaction.
	var so storage.Options
	so.EnsureDefaults()
	if b := d.Ops.PebbleBackground; b == nil || b.MemtableBytes != int64(so.MemTableBytes) || !(b.NsPerMiB > 0) || !(b.WriteAmp >= 1) || b.InBytesPerTx != 0 ||
		!(b.InBytesPerFlush > 0 && b.InBytesPerFlush <= float64(b.MemtableBytes)) || !(b.FlushedPerIn > 0) || !(b.FlushesPerCompaction >= 1) {
		t.Errorf("pebble_background: %+v", d.Ops.PebbleBackground)
	}
	// Disk figures are noisy (a quick run takes few samples): positive is
	// all that can be asked.
	for _, sync := range []bool{false, true} {
		if v := d.PebbleCommitNs(100, sync) + d.PebbleCommitNs(1<<20, sync); !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("pebble sync=%v: %v", sync, v)
		}
	}
}

// TestBusyRoundTrips: a calibration's busy runs survive encoding, and a
// quiet one's field is left out of the file.
func TestBusyRoundTrips(t *testing.T) {
	c, err := Load("reference.json")
	if err != nil {
		t.Fatal(err)
	}
	c.Busy = nil
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(`"busy"`)) {
		t.Fatal("a quiet calibration writes busy")
	}
	c.Busy = []string{"3000/s: other processes used 80% of a core"}
	if d := reencode(t, c); len(d.Busy) != 1 || d.Busy[0] != c.Busy[0] {
		t.Fatalf("busy %q, want %q", d.Busy, c.Busy)
	}
}

// TestPeerHandoffRoundTrips: a calibration's peer hand-off and its
// three-node record survive Encode and Decode, a measured 0 included (not
// the default, half the QUIC echo, which an absent one is).
func TestPeerHandoffRoundTrips(t *testing.T) {
	c, err := Load("reference.json")
	if err != nil {
		t.Fatal(err)
	}
	c.Ops.PeerHandoffNs, c.Ops.Cluster = nil, nil
	if got, want := c.Ops.PeerHandoff(), c.Ops.QUICRoundTrip.P50Ns/2; got != want {
		t.Fatalf("absent: hand-off %v, want half the echo %v", got, want)
	}
	for _, h := range []float64{0, 252e3} {
		c.Ops.PeerHandoffNs = &h
		c.Ops.Cluster = &ClusterFit{RateTPS: 300, HostBusy: 0.58, SimHostBusy: 0.5, QuorumP50Ns: 536e3, SimQuorumP50Ns: 538e3}
		if d := reencode(t, c); d.Ops.PeerHandoffNs == nil || d.Ops.PeerHandoff() != h || *d.Ops.Cluster != *c.Ops.Cluster {
			t.Fatalf("hand-off %v and %+v came back as %v and %+v", h, *c.Ops.Cluster, d.Ops.PeerHandoffNs, d.Ops.Cluster)
		}
	}
}

// reencode is c encoded and decoded again.
func reencode(t *testing.T, c *Calibration) *Calibration {
	t.Helper()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestReferenceIsValid(t *testing.T) {
	b, err := os.ReadFile("reference.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Quick {
		t.Fatal("reference.json is a quick calibration")
	}
}

func TestDecodeRefuses(t *testing.T) {
	// The reference without its optional API, Pebble and three-node
	// entries, which the cases below add.
	ref, err := Load("reference.json")
	if err != nil {
		t.Fatal(err)
	}
	ref.Ops.API, ref.Ops.PebbleBackground, ref.Ops.PeerHandoffNs, ref.Ops.Cluster, ref.Ops.Paced = nil, nil, nil, nil, nil
	good, err := ref.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(good); err != nil {
		t.Fatalf("the reference re-encoded: %v", err)
	}
	for name, in := range map[string][]byte{
		"empty":           nil,
		"not json":        []byte("calib"),
		"unknown field":   bytes.Replace(good, []byte(`"version"`), []byte(`"extra": 1, "version"`), 1),
		"version":         bytes.Replace(good, []byte(`"version": 1`), []byte(`"version": 2`), 1),
		"negative":        bytes.Replace(good, []byte(`"poseidon2_ns": `), []byte(`"poseidon2_ns": -`), 1),
		"missing op":      bytes.Replace(good, []byte(`"ed25519_sign_ns"`), []byte(`"ed25519_sign_ns_x"`), 1),
		"trailing":        append(append([]byte(nil), good...), []byte("{}")...),
		"api protocol":    bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"api": [{"protocol": "smtp", "round_trip": {"p50_ns": 1, "p99_ns": 1, "mean_ns": 1}, "request_ns": 1}], "quic_stream_ns"`), 1),
		"api repeated":    bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"api": [{"protocol": "ws", "round_trip": {"p50_ns": 1, "p99_ns": 1, "mean_ns": 1}, "request_ns": 1}, {"protocol": "ws", "round_trip": {"p50_ns": 1, "p99_ns": 1, "mean_ns": 1}, "request_ns": 1}], "quic_stream_ns"`), 1),
		"pebble base":     bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"pebble_background": {"memtable_bytes": 4194304, "ns_per_mib": 1, "write_amp": 2, "base_max_bytes": 1024}, "quic_stream_ns"`), 1),
		"pebble amp":      bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"pebble_background": {"memtable_bytes": 4194304, "ns_per_mib": 1, "write_amp": 0.5}, "quic_stream_ns"`), 1),
		"api zero":        bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"api": [{"protocol": "rest", "round_trip": {"p50_ns": 1, "p99_ns": 1, "mean_ns": 1}, "request_ns": 0}], "quic_stream_ns"`), 1),
		"peer handoff":    bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"peer_handoff_ns": -1, "quic_stream_ns"`), 1),
		"cluster":         bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"cluster": {"rate_tps": 300, "host_busy": -0.5, "sim_host_busy": 0.5, "quorum_p50_ns": 1, "sim_quorum_p50_ns": 1}, "quic_stream_ns"`), 1),
		"api accepted":    bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"api": [{"protocol": "rest", "round_trip": {"p50_ns": 1, "p99_ns": 1, "mean_ns": 1}, "accepted": {"p50_ns": 2, "p99_ns": 2, "mean_ns": 2}, "request_ns": 1}], "quic_stream_ns"`), 1),
		"paced gap":       bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"paced": {"gap_ns": 1000000, "produce_ack": {"p50_ns": 1, "p99_ns": 1, "mean_ns": 1}, "quic_round_trip": {"p50_ns": 1, "p99_ns": 1, "mean_ns": 1}}, "quic_stream_ns"`), 1),
		"state tree":      bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"state_block_tree": [{"block_size": 1, "tree_size": 0, "cost_ns": 1}], "quic_stream_ns"`), 1),
		"state tree 2":    bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"state_block_tree": [{"block_size": 1, "tree_size": 1000, "cost_ns": 1}, {"block_size": 1, "tree_size": 1000, "cost_ns": 2}], "quic_stream_ns"`), 1),
		"state tree 0":    bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"state_block_tree": [{"block_size": 1, "tree_size": 1000, "cost_ns": 0}], "quic_stream_ns"`), 1),
		"way order":       bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"client_way": [{"host_busy": 0.5, "p50_ns": 1}, {"host_busy": 0.4, "p50_ns": 1}], "quic_stream_ns"`), 1),
		"way zero":        bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"client_way": [{"host_busy": 0.5, "p50_ns": 0}], "quic_stream_ns"`), 1),
		"produce way":     bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"produce_way": [{"host_busy": 1.5, "p50_ns": 1}], "quic_stream_ns"`), 1),
		"wal sync":        bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"wal_sync": [{"host_busy": 0.5, "mean_ns": -1}], "quic_stream_ns"`), 1),
		"merkle way":      bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"merkle_way": [{"host_busy": 0, "p50_ns": 1}], "quic_stream_ns"`), 1),
		"api loaded busy": bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"api": [{"protocol": "rest", "round_trip": {"p50_ns": 1, "p99_ns": 1, "mean_ns": 1}, "loaded": {"host_busy": 0, "request_way_ns": 1, "receipt_way_ns": 1}, "request_ns": 1}], "quic_stream_ns"`), 1),
		"api loaded way":  bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"api": [{"protocol": "rest", "round_trip": {"p50_ns": 1, "p99_ns": 1, "mean_ns": 1}, "loaded": {"host_busy": 0.5, "request_way_ns": 0, "receipt_way_ns": 1}, "request_ns": 1}], "quic_stream_ns"`), 1),
		"paced zero":      bytes.Replace(good, []byte(`"quic_stream_ns"`), []byte(`"paced": {"gap_ns": 3333333, "produce_ack": {"p50_ns": 0, "p99_ns": 1, "mean_ns": 1}, "quic_round_trip": {"p50_ns": 1, "p99_ns": 1, "mean_ns": 1}}, "quic_stream_ns"`), 1),
	} {
		if _, err := Decode(in); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
}

func TestMerkleFitFollowsThePoints(t *testing.T) {
	c := &Calibration{Ops: Ops{MerkleBlock: []MerkleCost{
		{BlockSize: 100, TreeSize: 0, CostNs: 100 * 40e3},
		{BlockSize: 100, TreeSize: 100000, CostNs: 100 * 140e3},
		{BlockSize: 1000, TreeSize: 0, CostNs: 1000 * 30e3},
		{BlockSize: 1000, TreeSize: 100000, CostNs: 1000 * 100e3},
	}}}
	for _, p := range c.Ops.MerkleBlock {
		got := c.MerkleBlockNs(p.BlockSize, p.TreeSize)
		if math.Abs(got-p.CostNs)/p.CostNs > 0.25 {
			t.Errorf("block %d tree %d: fit %.0f, measured %.0f", p.BlockSize, p.TreeSize, got, p.CostNs)
		}
	}
	if c.MerkleBlockNs(1000, 10000000) <= c.MerkleBlockNs(1000, 100000) {
		t.Error("a bigger tree is not dearer")
	}
}

func FuzzDecode(f *testing.F) {
	if b, err := os.ReadFile("reference.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"ops":{"hash_bytes":[{"size":1,"cost_ns":1e308}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error not ErrFormat: %v", err)
			}
			return
		}
		// A decoded calibration prices everything without panicking.
		st, _ := c.StateModel().Ns(10, 1000)
		_ = c.HashBytesNs(100) + c.StateBlockNs(10) + c.MerkleBlockNs(10, 10) + c.VerifyBatchNs(3) + c.PebbleCommitNs(10, true) + st
		b, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(b); err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
	})
}

// TestLagQuantile: the lag's quantile function passes through the
// measured percentiles, grows with u, is 0 at u = 0 and linear below the
// median, and holds at the p99.9 beyond it.
func TestLagQuantile(t *testing.T) {
	p := LagPoint{HostBusy: 0.6, P50Ns: 70e3, P90Ns: 300e3, P99Ns: 2e6, P999Ns: 15e6}
	if !p.HasTail() || (LagPoint{P50Ns: 1, P99Ns: 2}).HasTail() {
		t.Fatal("HasTail: want true with p90 and p99.9 only")
	}
	for _, tc := range []struct{ u, want float64 }{
		{0, 0}, {0.25, 35e3}, {0.5, 70e3}, {0.9, 300e3}, {0.99, 2e6}, {0.999, 15e6},
		{0.9999, 15e6}, {0.999999, 15e6}, // held beyond the p99.9
	} {
		if got := p.Quantile(tc.u); math.Abs(got-tc.want) > 1e-6*tc.want {
			t.Errorf("Quantile(%v) = %v, want %v", tc.u, got, tc.want)
		}
	}
	// Between two percentiles, log lag is linear in log(1 − u): half way
	// (in log) from 0.9 to 0.99 is the geometric mean.
	if got, want := p.Quantile(1-math.Sqrt(0.1*0.01)), math.Sqrt(300e3*2e6); math.Abs(got-want) > 1e-6*want {
		t.Errorf("Quantile between p90 and p99 = %v, want %v", got, want)
	}
	prev := -1.0
	for i := 0; i <= 100000; i++ {
		u := float64(i) / 100000
		if i == 100000 {
			u = math.Nextafter(1, 0)
		}
		q := p.Quantile(u)
		if q < prev || math.IsNaN(q) {
			t.Fatalf("Quantile(%v) = %v after %v: not non-decreasing", u, q, prev)
		}
		prev = q
	}
}

func TestLagAt(t *testing.T) {
	c, err := Load("reference.json")
	if err != nil {
		t.Fatal(err)
	}
	c.Ops.ScheduleLag = nil
	if p50, p99 := c.LagAt(0.7); p50 != 0 || p99 != 0 {
		t.Fatalf("no points: lag %v/%v, want none", p50, p99)
	}
	// Points at queueing factors busy/(1−busy) of 1 and 4.
	c.Ops.ScheduleLag = []LagPoint{{HostBusy: 0.5, P50Ns: 100, P99Ns: 1000}, {HostBusy: 0.8, P50Ns: 400, P99Ns: 7000}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ busy, p50, p99 float64 }{
		{0, 0, 0},
		{1.0 / 3, 50, 500}, // factor 0.5: half way from an idle host to the first point
		{0.5, 100, 1000},
		{0.7, 100 + 300*(7.0/3-1)/3, 1000 + 6000*(7.0/3-1)/3}, // factor 7/3
		{0.8, 400, 7000},
		{0.9, 400 + 300*5.0/3, 7000 + 6000*5.0/3},  // factor 9: along the last segment
		{0.99, 400 + 300*5.0/3, 7000 + 6000*5.0/3}, // held at 0.9
	} {
		p50, p99 := c.LagAt(tc.busy)
		if math.Abs(p50-tc.p50) > 1e-6 || math.Abs(p99-tc.p99) > 1e-6 {
			t.Errorf("LagAt(%v) = %v, %v; want %v, %v", tc.busy, p50, p99, tc.p50, tc.p99)
		}
	}
	// A p50 that falls from one point to the next is held at the last
	// point's beyond it (the p99 still grows).
	c.Ops.ScheduleLag = []LagPoint{{HostBusy: 0.5, P50Ns: 100, P99Ns: 1000}, {HostBusy: 0.8, P50Ns: 40, P99Ns: 7000}}
	if p50, p99 := c.LagAt(0.9); p50 != 40 || math.Abs(p99-(7000+6000*5.0/3)) > 1e-6 {
		t.Errorf("LagAt(0.9) with a falling p50 = %v, %v; want 40, %v", p50, p99, 7000+6000*5.0/3)
	}
	// The tail's percentiles are interpolated as p50 and p99 are, when
	// every point has them.
	c.Ops.ScheduleLag = []LagPoint{{HostBusy: 0.5, P50Ns: 100, P90Ns: 200, P99Ns: 1000, P999Ns: 3000}, {HostBusy: 0.8, P50Ns: 400, P90Ns: 800, P99Ns: 7000, P999Ns: 30000}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := LagPoint{HostBusy: 0.7, P50Ns: 100 + 300*(7.0/3-1)/3, P90Ns: 200 + 600*(7.0/3-1)/3, P99Ns: 1000 + 6000*(7.0/3-1)/3, P999Ns: 3000 + 27000*(7.0/3-1)/3}
	if got := c.LagPointAt(0.7); math.Abs(got.P90Ns-want.P90Ns) > 1e-6 || math.Abs(got.P999Ns-want.P999Ns) > 1e-6 || math.Abs(got.P50Ns-want.P50Ns) > 1e-6 {
		t.Errorf("LagPointAt(0.7) = %+v, want %+v", got, want)
	}
	if got := c.LagPointAt(1.0 / 3); !got.HasTail() || math.Abs(got.P999Ns-1500) > 1e-6 {
		t.Errorf("LagPointAt(1/3) = %+v, want p99.9 1500 (half way from an idle host)", got)
	}
	c.Ops.ScheduleLag[1].P90Ns, c.Ops.ScheduleLag[1].P999Ns = 0, 0 // a point without them
	if got := c.LagPointAt(0.7); got.HasTail() || got.P99Ns == 0 {
		t.Errorf("LagPointAt with a point without the tail = %+v, want p50 and p99 only", got)
	}
	for name, pts := range map[string][]LagPoint{
		"p90 above p99":     {{HostBusy: 0.5, P50Ns: 1, P90Ns: 5, P99Ns: 2, P999Ns: 9}},
		"p999 below p99":    {{HostBusy: 0.5, P50Ns: 1, P90Ns: 2, P99Ns: 4, P999Ns: 3}},
		"p90 without p99.9": {{HostBusy: 0.5, P50Ns: 1, P90Ns: 2, P99Ns: 4}},
		"unsorted":          {{HostBusy: 0.8, P50Ns: 1, P99Ns: 2}, {HostBusy: 0.5, P50Ns: 1, P99Ns: 2}},
		"busy above":        {{HostBusy: 1.5, P50Ns: 1, P99Ns: 2}},
		"busy zero":         {{HostBusy: 0, P50Ns: 1, P99Ns: 2}},
		"p99 below":         {{HostBusy: 0.5, P50Ns: 3, P99Ns: 2}},
		"no p50":            {{HostBusy: 0.5, P50Ns: 0, P99Ns: 2}},
	} {
		c.Ops.ScheduleLag = pts
		if err := c.Validate(); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: Validate %v, want ErrFormat", name, err)
		}
	}
}

// TestReadCosts: a read's costs come from the calibration's tables,
// interpolated over log2 of the tree's keys (a tree 10 times larger adds
// about as much as the one before); without them they are estimated from
// the Pebble and Poseidon figures, growing with the tree.
// TestAPICosts: a measured protocol's round trip is given less the
// signature check in it; a missing one is estimated from QUIC's figures by
// the ratios measured here.
func TestAPICosts(t *testing.T) {
	c := &Calibration{Ops: Ops{
		Ed25519VerifyNs: 40_000,
		QUICRoundTrip:   Latency{P50Ns: 200_000},
		QUICStreamNs:    20_000,
		API:             []APICost{{Protocol: "ws", RoundTrip: Latency{P50Ns: 300_000}, RequestNs: 50_000}},
	}}
	// Without an accepted round trip (before session 31) it is the full
	// one.
	if got, want := c.APIOf("ws"), (APIPrice{RoundTripNs: 260_000, AcceptedNs: 260_000, RequestNs: 50_000}); got != want {
		t.Errorf("ws: %+v, want %+v", got, want)
	}
	c.Ops.API[0].Accepted = &Latency{P50Ns: 190_000}
	if got, want := c.APIOf("ws"), (APIPrice{RoundTripNs: 260_000, AcceptedNs: 150_000, RequestNs: 50_000}); got != want {
		t.Errorf("ws with its accepted round trip: %+v, want %+v", got, want)
	}
	for p, r := range apiEstimate {
		if got, want := c.APIOf(p), (APIPrice{RoundTripNs: r[0] * 200_000, AcceptedNs: r[0] * 200_000, RequestNs: r[1] * 20_000, Estimated: true}); p != "ws" && got != want {
			t.Errorf("%s: %+v, want %+v", p, got, want)
		}
	}
	// A round trip measured under the signature check (noise) is not
	// priced below half of QUIC's.
	c.Ops.API[0].RoundTrip.P50Ns, c.Ops.API[0].Accepted.P50Ns = 30_000, 20_000
	if got := c.APIOf("ws"); got.RoundTripNs != 100_000 || got.AcceptedNs != 100_000 {
		t.Errorf("ws round trips %+v, want QUIC's half, 100000", got)
	}
}

// TestAtGap: a calibration priced at a pace between its two lies between
// them, linearly in the gap; at BaseGap or faster, or beyond the paced
// gap, it is the nearer figure; the HTTP API round trips grow as QUIC's;
// and the original is left as it was.
func TestAtGap(t *testing.T) {
	c := &Calibration{Ops: Ops{
		ProduceAck:    Latency{P50Ns: 40e3, P99Ns: 100e3, MeanNs: 50e3},
		QUICRoundTrip: Latency{P50Ns: 100e3, P99Ns: 300e3, MeanNs: 120e3},
		API:           []APICost{{Protocol: "rest", RoundTrip: Latency{P50Ns: 200e3, P99Ns: 400e3, MeanNs: 220e3}, Accepted: &Latency{P50Ns: 100e3, P99Ns: 200e3, MeanNs: 110e3}, RequestNs: 50e3}},
	}}
	if got := c.AtGap(10 * time.Millisecond); got != c {
		t.Fatal("without paced figures: a copy")
	}
	c.Ops.Paced = &Paced{GapNs: 3e6,
		ProduceAck:    Latency{P50Ns: 60e3, P99Ns: 140e3, MeanNs: 70e3},
		QUICRoundTrip: Latency{P50Ns: 150e3, P99Ns: 500e3, MeanNs: 180e3}}
	for _, g := range []time.Duration{0, 500 * time.Microsecond, BaseGap} {
		if got := c.AtGap(g); got != c {
			t.Errorf("gap %v: a copy", g)
		}
	}
	for _, tc := range []struct {
		gap             time.Duration
		produce, quic   Latency
		apiP50, apiMean float64
	}{
		{2 * time.Millisecond, Latency{P50Ns: 50e3, P99Ns: 120e3, MeanNs: 60e3}, Latency{P50Ns: 125e3, P99Ns: 400e3, MeanNs: 150e3}, 250e3, 275e3},
		{3 * time.Millisecond, c.Ops.Paced.ProduceAck, c.Ops.Paced.QUICRoundTrip, 300e3, 330e3},
		{10 * time.Millisecond, c.Ops.Paced.ProduceAck, c.Ops.Paced.QUICRoundTrip, 300e3, 330e3},
	} {
		got := c.AtGap(tc.gap)
		if got.Ops.ProduceAck != tc.produce || got.Ops.QUICRoundTrip != tc.quic {
			t.Errorf("gap %v: produce→ack %+v and QUIC %+v, want %+v and %+v", tc.gap, got.Ops.ProduceAck, got.Ops.QUICRoundTrip, tc.produce, tc.quic)
		}
		if a := got.Ops.API[0]; a.RoundTrip.P50Ns != tc.apiP50 || a.RoundTrip.MeanNs != tc.apiMean || a.Accepted.P50Ns != tc.apiP50/2 || a.RequestNs != 50e3 {
			t.Errorf("gap %v: api %+v (accepted %+v), want round trip p50 %v and mean %v, accepted p50 half", tc.gap, a, *a.Accepted, tc.apiP50, tc.apiMean)
		}
	}
	if c.Ops.ProduceAck.P50Ns != 40e3 || c.Ops.QUICRoundTrip.P50Ns != 100e3 || c.Ops.API[0].RoundTrip.P50Ns != 200e3 || c.Ops.API[0].Accepted.P50Ns != 100e3 {
		t.Errorf("the original changed: %+v", c.Ops)
	}
	if d := reencode(t, withRequired(t, c)); d.Ops.Paced == nil || *d.Ops.Paced != *c.Ops.Paced {
		t.Errorf("paced %+v came back as %+v", *c.Ops.Paced, d.Ops.Paced)
	}
}

// withRequired is the reference with c's round trips: a calibration that
// encodes.
func withRequired(t *testing.T, c *Calibration) *Calibration {
	t.Helper()
	ref, err := Load("reference.json")
	if err != nil {
		t.Fatal(err)
	}
	ref.Ops.ProduceAck, ref.Ops.QUICRoundTrip, ref.Ops.API, ref.Ops.Paced = c.Ops.ProduceAck, c.Ops.QUICRoundTrip, c.Ops.API, c.Ops.Paced
	return ref
}

// stateAt is c's StateModel at (n, tree), failing t without
// state_block_tree.
func stateAt(t *testing.T, c *Calibration, n, tree int) float64 {
	t.Helper()
	v, ok := c.StateModel().Ns(n, tree)
	if !ok {
		t.Fatal("no state_block_tree")
	}
	return v
}

// TestStateModel: a block's state commit is the measured point at a
// measured block and tree size (tree 0: state_block), linear between
// block sizes, linear in log2 between trees, straight on beyond the
// largest tree, never cheaper in a larger tree; without state_block_tree
// the model says so.
// TestClientWayAt: a client's way by load, from the idle way at no load
// through the points (which may fall with the load), beyond the last one
// stretched as ρ/(1−ρ), and absent without points.
func TestClientWayAt(t *testing.T) {
	c := &Calibration{}
	if _, ok := c.ClientWayAt(0.5, 30e3); ok {
		t.Fatal("a way without points")
	}
	// ρ/(1−ρ): 0.2 → 0.25, 0.5 → 1, 0.6 → 1.5, 0.75 → 3, 0.9 (the cap) → 9.
	c.Ops.ClientWay = []WayPoint{{HostBusy: 0.2, P50Ns: 400e3}, {HostBusy: 0.5, P50Ns: 250e3}, {HostBusy: 0.6, P50Ns: 300e3}}
	for _, tc := range []struct{ busy, want float64 }{
		{0, 30e3},                               // idle: the idle way
		{0.1, 30e3 + (1.0/9)/0.25*(400e3-30e3)}, // between idle and the first point
		{0.2, 400e3},                            // a point
		{1.0 / 3, 400e3 + (0.5-0.25)/(1-0.25)*(250e3-400e3)}, // falls with the load between points
		{0.5, 250e3},
		{0.75, 300e3 * 3 / 1.5}, // beyond the last point: stretched
		{0.99, 300e3 * 9 / 1.5}, // the cap
	} {
		got, ok := c.ClientWayAt(tc.busy, 30e3)
		if !ok || math.Abs(got-tc.want) > 1 {
			t.Errorf("busy %v: %v %v, want %v", tc.busy, got, ok, tc.want)
		}
	}
}

// TestAPILoadedWay: an HTTP API protocol's way is the one calibrate's API run
// measured, at every load; false without that run, and for GraphQL's
// accepted answer.
func TestAPILoadedWay(t *testing.T) {
	var p APIPrice
	if _, ok := p.LoadedWay(LegRequest); ok {
		t.Fatal("a way without the API run")
	}
	p.Loaded = &APILoaded{HostBusy: 0.5, RequestWayNs: 90e3, AcceptedWayNs: 100e3, ReceiptWayNs: 130e3}
	for leg, want := range map[APILeg]float64{LegRequest: 90e3, LegAccepted: 100e3, LegReceipt: 130e3} {
		if got, ok := p.LoadedWay(leg); !ok || got != want {
			t.Errorf("leg %d: %v %v, want %v", leg, got, ok, want)
		}
	}
	p.Loaded.AcceptedWayNs = 0
	if _, ok := p.LoadedWay(LegAccepted); ok {
		t.Error("an accepted answer's way the run did not measure (GraphQL's)")
	}
	c := &Calibration{Ops: Ops{API: []APICost{{Protocol: "ws", RoundTrip: Latency{P50Ns: 1e5}, RequestNs: 1, Loaded: p.Loaded}}}}
	if got := c.APIOf("ws"); got.Loaded == nil || *got.Loaded != *p.Loaded {
		t.Errorf("APIOf leaves the loaded ways out, or changes a lone protocol's: %+v", got.Loaded)
	}
}

// TestAPIPooledRequest: APIOf prices each protocol's loaded request as its
// own CPU plus the median over the protocols of their requests less their
// CPU, so the one a burst served first in calibrate's API run (session
// 36's third validation's: WebSocket 47 µs against REST's 94) does not
// keep its lead; the other ways stay as measured.
func TestAPIPooledRequest(t *testing.T) {
	api := func(protocol string, cpu, request, accepted, receipt float64) APICost {
		return APICost{Protocol: protocol, RoundTrip: Latency{P50Ns: 1e6}, RequestNs: cpu,
			Loaded: &APILoaded{HostBusy: 0.24, RequestWayNs: request, AcceptedWayNs: accepted, ReceiptWayNs: receipt}}
	}
	c := &Calibration{Ops: Ops{API: []APICost{
		api("rest", 28e3, 94e3, 107e3, 120e3),
		api("ws", 24e3, 47e3, 96e3, 134e3),
		api("graphql", 51e3, 135e3, 0, 139e3),
	}}}
	// Less the CPU: 66, 23 and 84 µs; the median 66.
	for protocol, want := range map[string]APILoaded{
		"rest":    {HostBusy: 0.24, RequestWayNs: 94e3, AcceptedWayNs: 107e3, ReceiptWayNs: 120e3},
		"ws":      {HostBusy: 0.24, RequestWayNs: 90e3, AcceptedWayNs: 96e3, ReceiptWayNs: 134e3},
		"graphql": {HostBusy: 0.24, RequestWayNs: 117e3, ReceiptWayNs: 139e3},
	} {
		if got := c.APIOf(protocol).Loaded; got == nil || *got != want {
			t.Errorf("%s: %+v, want %+v", protocol, got, want)
		}
	}
	if c.Ops.API[1].Loaded.RequestWayNs != 47e3 {
		t.Error("APIOf changed the calibration's measurement")
	}
	if got := c.APIOf("quic"); got.Loaded != nil {
		t.Errorf("a protocol the API run did not measure: %+v", got.Loaded)
	}
}

// TestProduceScaleAt: the produce→ack under load over the idle one, by
// ClientWayAt's interpolation; false without points or an idle latency.
func TestProduceScaleAt(t *testing.T) {
	c := &Calibration{}
	if _, ok := c.ProduceScaleAt(0.4, 28e3); ok {
		t.Fatal("a scale without points")
	}
	c.Ops.ProduceWay = []WayPoint{{HostBusy: 0.2, P50Ns: 73e3}, {HostBusy: 0.5, P50Ns: 70e3}}
	for _, tc := range []struct{ busy, want float64 }{{0, 1}, {0.2, 73e3 / 28e3}, {0.5, 70e3 / 28e3}, {0.75, 70e3 / 28e3 * 3}} {
		if got, ok := c.ProduceScaleAt(tc.busy, 28e3); !ok || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("busy %v: %v %v, want %v", tc.busy, got, ok, tc.want)
		}
	}
	if _, ok := c.ProduceScaleAt(0.4, 0); ok {
		t.Error("a scale over no idle latency")
	}
}

// TestWALSyncExtraAt: the WAL sync under load (and the Merkle update)
// less the idle one, by ClientWayAt's interpolation up to the last point
// and that point's beyond it, never below 0; false without points or an
// idle latency.
func TestWALSyncExtraAt(t *testing.T) {
	c := &Calibration{}
	if _, ok := c.WALSyncExtraAt(0.4, 80e3); ok {
		t.Fatal("an extra without points")
	}
	c.Ops.WALSync = []MeanPoint{{HostBusy: 0.2, MeanNs: 180e3}, {HostBusy: 0.5, MeanNs: 430e3}}
	for _, tc := range []struct{ busy, idle, want float64 }{
		{0, 80e3, 0},
		{0.2, 80e3, 100e3},
		{0.5, 80e3, 350e3},
		{0.75, 80e3, 350e3}, // beyond the last point: the last point's, not stretched
		{0.2, 500e3, 0},     // a sync slower idle than the point: nothing added
	} {
		if got, ok := c.WALSyncExtraAt(tc.busy, tc.idle); !ok || math.Abs(got-tc.want) > 1e-6 {
			t.Errorf("busy %v, idle %v: %v %v, want %v", tc.busy, tc.idle, got, ok, tc.want)
		}
	}
	if _, ok := c.WALSyncExtraAt(0.4, 0); ok {
		t.Error("an extra over no idle latency")
	}
	if _, ok := c.MerkleExtraAt(0.5, 80e3); ok {
		t.Error("a Merkle extra from the WAL's points")
	}
	c.Ops.MerkleWay = []WayPoint{{HostBusy: 0.2, P50Ns: 180e3}, {HostBusy: 0.5, P50Ns: 430e3}}
	if got, ok := c.MerkleExtraAt(0.5, 80e3); !ok || math.Abs(got-350e3) > 1e-6 {
		t.Errorf("Merkle extra at 0.5: %v %v, want 350000", got, ok)
	}
}

func TestStateModel(t *testing.T) {
	c := &Calibration{Ops: Ops{
		StateBlock: []SizeCost{{Size: 1, CostNs: 50e3}, {Size: 10, CostNs: 400e3}},
		StateBlockTree: []MerkleCost{ // unsorted, as a hand-edited file may be
			{BlockSize: 10, TreeSize: 100000, CostNs: 1800e3},
			{BlockSize: 1, TreeSize: 10000, CostNs: 250e3},
			{BlockSize: 1, TreeSize: 100000, CostNs: 350e3},
			{BlockSize: 10, TreeSize: 10000, CostNs: 900e3},
		},
	}}
	m := c.StateModel()
	for _, p := range []struct {
		n, tree int
		want    float64
	}{
		{1, 0, 50e3}, {10, 0, 400e3}, // state_block
		{1, 10000, 250e3}, {10, 10000, 900e3}, {1, 100000, 350e3}, {10, 100000, 1800e3},
		{4, 10000, 250e3 + 3*(900e3-250e3)/9},                 // between block sizes
		{1, 31622, 300e3},                                     // halfway in log2 between 10k and 100k
		{1, 1000000, 450e3},                                   // another 10×: straight on
		{1, 99, 50e3 + 200e3*math.Log2(100)/math.Log2(10001)}, // between tree 0 and 10k, in log2(tree+1)
	} {
		got, ok := m.Ns(p.n, p.tree)
		if !ok || math.Abs(got-p.want) > p.want*0.002 {
			t.Errorf("Ns(%d, %d) = %.0f, %v; want %.0f", p.n, p.tree, got, ok, p.want)
		}
	}
	// It prices each simulated block: no allocation for a few trees.
	if a := testing.AllocsPerRun(100, func() { _, _ = m.Ns(4, 31622) }); a != 0 {
		t.Errorf("Ns allocates %v times a call", a)
	}
	// A dip between trees (noise) does not make the larger tree cheaper.
	c.Ops.StateBlockTree = []MerkleCost{{BlockSize: 1, TreeSize: 10000, CostNs: 30e3}, {BlockSize: 10, TreeSize: 10000, CostNs: 300e3}}
	if got, _ := c.StateModel().Ns(1, 10000); got < 50e3 {
		t.Errorf("Ns(1, 10000) = %.0f, below the smaller tree's 50000", got)
	}
	c.Ops.StateBlockTree = nil
	if _, ok := c.StateModel().Ns(1, 10000); ok {
		t.Error("a model without state_block_tree says it has one")
	}
}

func TestReadCosts(t *testing.T) {
	c := &Calibration{Ops: Ops{
		StateRead:    []SizeCost{{Size: 0, CostNs: 1000}, {Size: 1000, CostNs: 2000}, {Size: 100000, CostNs: 4000}},
		Poseidon2Ns:  10000,
		HashBytes:    []SizeCost{{Size: 32, CostNs: 10000}},
		PebbleCommit: []PebbleCost{{SizeBytes: 1024, CostNs: 2000}},
	}}
	for tree, want := range map[int]float64{0: 1000, 1000: 2000, 100000: 4000} {
		if got := c.StateReadNs(tree); math.Abs(got-want) > 1e-6 {
			t.Errorf("StateReadNs(%d) = %v, want %v (a point of the table)", tree, got, want)
		}
	}
	// 10000 is halfway between 1000 and 100000 in log2: 3000.
	if got := c.StateReadNs(10000); math.Abs(got-3000) > 20 {
		t.Errorf("StateReadNs(10000) = %v, want about 3000", got)
	}
	// Beyond the table, straight on: 10^7 is another 100× → about 6000.
	if got := c.StateReadNs(10000000); math.Abs(got-6000) > 20 {
		t.Errorf("StateReadNs(1e7) = %v, want about 6000", got)
	}
	// ProofVerify is absent: two HashBytes and two Poseidon 2-to-1 a level.
	if got, want := c.ProofVerifyNs(1023), 2*10000+2*(math.Log2(1023)+1)*10000; math.Abs(got-want) > 1e-6 {
		t.Errorf("ProofVerifyNs estimate = %v, want %v", got, want)
	}
	// A measured dip (noise) does not make a larger tree cheaper.
	c.Ops.StateRead = []SizeCost{{Size: 0, CostNs: 2000}, {Size: 1000, CostNs: 1000}}
	for _, tree := range []int{1000, 1000000} {
		if got := c.StateReadNs(tree); got < 2000 {
			t.Errorf("StateReadNs(%d) = %v below the smaller tree's 2000", tree, got)
		}
	}
	c.Ops.StateRead = nil
	if a, b := c.StateReadNs(1000), c.StateReadNs(100000); !(a > 0) || !(b > a) {
		t.Errorf("StateReadNs estimates %v then %v, want positive and growing", a, b)
	}
}
