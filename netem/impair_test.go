package netem

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/bits"
	"net"
	"runtime"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// The tests in this file run inside synctest bubbles over an in-memory
// network: time is virtual, so a measured delay is the emulated delay
// exactly, and the only error left is sampling error. Tolerances are about
// four standard errors, computed from the model.

// zQ is the standard normal quantile at q, computed by bisection on Erf so
// that it does not reuse the code under test.
func zQ(q float64) float64 {
	lo, hi := -10.0, 10.0
	for range 200 {
		mid := (lo + hi) / 2
		if 0.5*(1+math.Erf(mid/math.Sqrt2)) < q {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// wantT is the standardized jitter at quantile q, from tc's table
// generators (normal.c, pareto.c, paretonormal.c in iproute2).
func wantT(d Distribution, q float64) float64 {
	clip := func(x float64) float64 { return max(-4, min(4, x)) }
	pareto := func(q float64) float64 { return clip((math.Pow(1-q, -1.0/3) - 1.5) * 4 / 3) }
	switch d {
	case Normal:
		return clip(zQ(q))
	case Pareto:
		return pareto(q)
	case ParetoNormal:
		return (clip(zQ(q)) + 3*pareto(q)) / 4
	}
	return 2*q - 1
}

func sortedLatencies(got []arrival) []time.Duration {
	lat := make([]time.Duration, len(got))
	for i, a := range got {
		lat[i] = a.latency
	}
	slices.Sort(lat)
	return lat
}

func TestDelayDistribution(t *testing.T) {
	const (
		n      = 10000
		delay  = 25 * time.Millisecond
		jitter = 5 * time.Millisecond
	)
	for _, dist := range []Distribution{Uniform, Normal, Pareto, ParetoNormal} {
		t.Run(string(dist), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPair(t, 1, Impairment{Delay: delay, Jitter: jitter, Distribution: dist})
				got := p.run(t, n, 100, 0)
				if len(got) != n {
					t.Fatalf("%d of %d arrived", len(got), n)
				}
				lat := sortedLatencies(got)
				for _, q := range []float64{0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99} {
					measured := lat[int(q*n)]
					want := delay + time.Duration(wantT(dist, q)*float64(jitter))
					// 4 standard errors of a sample quantile, mapped through the
					// quantile function.
					dq := 4 * math.Sqrt(q*(1-q)/n)
					tol := time.Duration((wantT(dist, min(q+dq, 0.9999))-wantT(dist, max(q-dq, 0.0001)))/2*float64(jitter)) + 20*time.Microsecond
					t.Logf("p%-4v %8v want %8v ± %v", q*100, measured, want, tol)
					if d := measured - want; d < -tol || d > tol {
						t.Errorf("p%v = %v, want %v ± %v", q*100, measured, want, tol)
					}
				}
				lo, hi := delay+time.Duration(wantT(dist, 0)*float64(jitter)), delay+time.Duration(wantT(dist, 1)*float64(jitter))
				if lat[0] < lo-time.Microsecond || lat[n-1] > hi+time.Microsecond {
					t.Errorf("delays span [%v, %v], want within [%v, %v]", lat[0], lat[n-1], lo, hi)
				}
			})
		})
	}
}

func TestDelayCorrelation(t *testing.T) {
	const (
		n      = 20000
		rho    = 0.5
		delay  = 25 * time.Millisecond
		jitter = 5 * time.Millisecond
	)
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, 2, Impairment{Delay: delay, Jitter: jitter, Correlation: rho})
		got := p.run(t, n, 100, 0)
		if len(got) != n {
			t.Fatalf("%d of %d arrived", len(got), n)
		}
		bySeq := make([]float64, n)
		for _, a := range got {
			bySeq[a.seq] = float64(a.latency)
		}
		// Pearson correlation of uniforms through a Gaussian copula with
		// coefficient ρ is (6/π)·asin(ρ/2).
		want := 6 / math.Pi * math.Asin(rho/2)
		r := lag1(bySeq)
		t.Logf("lag-1 correlation %.3f, want %.3f", r, want)
		if math.Abs(r-want) > 0.04 {
			t.Errorf("lag-1 correlation %.3f, want %.3f ± 0.04", r, want)
		}
		// The spread stays the configured one (tc's correlation narrows it).
		lat := sortedLatencies(got)
		for _, q := range []float64{0.1, 0.5, 0.9} {
			want := delay + time.Duration(wantT(Uniform, q)*float64(jitter))
			if d := lat[int(q*n)] - want; d.Abs() > 250*time.Microsecond {
				t.Errorf("p%v = %v, want %v ± 250µs", q*100, lat[int(q*n)], want)
			}
		}
	})
}

func lag1(x []float64) float64 {
	var mean float64
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	var num, den float64
	for i, v := range x {
		den += (v - mean) * (v - mean)
		if i > 0 {
			num += (v - mean) * (x[i-1] - mean)
		}
	}
	return num / den
}

// lossRuns returns which of n sequence numbers arrived and the lengths of
// the runs of missing ones.
func lossRuns(got []arrival, n int) (lost int, runs []int) {
	seen := make([]bool, n)
	for _, a := range got {
		seen[a.seq] = true
	}
	run := 0
	for _, ok := range seen {
		if !ok {
			lost++
			run++
		} else if run > 0 {
			runs = append(runs, run)
			run = 0
		}
	}
	if run > 0 {
		runs = append(runs, run)
	}
	return lost, runs
}

func mean(xs []int) float64 {
	s := 0
	for _, x := range xs {
		s += x
	}
	return float64(s) / float64(len(xs))
}

func TestLoss(t *testing.T) {
	const n = 100000
	for _, tc := range []struct {
		name string
		imp  Impairment
		// lambda is the lag-1 correlation of the loss indicator; burst the
		// mean run of losses.
		lambda, burst float64
	}{
		{"bernoulli 1%", Impairment{Loss: 0.01}, 0, 1 / 0.99},
		{"bernoulli 20%", Impairment{Loss: 0.2}, 0, 1 / 0.8},
		{"bernoulli 5% correlated 50%", Impairment{Loss: 0.05, Correlation: 0.5}, 0.5, 1 / (0.5 * 0.95)},
		{"gilbert-elliott 2% burst 5", Impairment{Loss: 0.02, LossModel: GilbertElliott, LossBurst: 5}, 1 - 0.2 - 0.02*0.2/0.98, 5},
		{"gilbert-elliott 10% default burst", Impairment{Loss: 0.1, LossModel: GilbertElliott}, 1 - 0.25 - 0.1*0.25/0.9, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := newPair(t, 3, tc.imp)
				got := p.run(t, n, 4, 0)
				lost, runs := lossRuns(got, n)
				pl := tc.imp.Loss
				rate := float64(lost) / n
				se := math.Sqrt(pl * (1 - pl) / n * (1 + tc.lambda) / (1 - tc.lambda))
				// Burst lengths are geometric with mean B: sd = √(B²-B).
				bse := math.Sqrt(tc.burst*tc.burst-tc.burst) / math.Sqrt(float64(len(runs)))
				t.Logf("loss %.4f (want %.4f ± %.4f), %d bursts of mean %.3f (want %.3f ± %.3f)",
					rate, pl, 4*se, len(runs), mean(runs), tc.burst, 4*bse)
				if math.Abs(rate-pl) > 4*se {
					t.Errorf("loss rate %.4f, want %.4f ± %.4f", rate, pl, 4*se)
				}
				if math.Abs(mean(runs)-tc.burst) > 4*bse {
					t.Errorf("mean burst %.3f, want %.3f ± %.3f", mean(runs), tc.burst, 4*bse)
				}
				if s := p.nw.Stats("a", "b"); s.Lost != uint64(lost) || s.Packets != n {
					t.Errorf("stats %+v, want %d packets, %d lost", s, n, lost)
				}
			})
		})
	}
}

func TestDuplicate(t *testing.T) {
	const n, pd = 50000, 0.05
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, 4, Impairment{Duplicate: pd})
		got := p.run(t, n, 8, 0)
		count := make([]int, n)
		for _, a := range got {
			count[a.seq]++
		}
		dups := 0
		for i, c := range count {
			switch c {
			case 1:
			case 2:
				dups++
			default:
				t.Fatalf("seq %d arrived %d times", i, c)
			}
		}
		rate, tol := float64(dups)/n, 4*math.Sqrt(pd*(1-pd)/n)
		if math.Abs(rate-pd) > tol {
			t.Errorf("duplicate rate %.4f, want %.4f ± %.4f", rate, pd, tol)
		}
		if s := p.nw.Stats("a", "b"); s.Duplicated != uint64(dups) {
			t.Errorf("stats count %d duplicates, saw %d", s.Duplicated, dups)
		}
	})
}

func TestCorrupt(t *testing.T) {
	const n, pc, size = 20000, 0.1, 64
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, 5, Impairment{Corrupt: pc})
		got := p.run(t, n, size, 0)
		if len(got) != n {
			t.Fatalf("%d of %d arrived", len(got), n)
		}
		// Without delay the order is kept, so the i-th arrival is packet i
		// even when the flipped bit is in its sequence number.
		corrupted := 0
		for i, a := range got {
			flipped := 0
			for j := range size {
				want := byte(i + j)
				if j < 4 {
					want = byte(i >> (24 - 8*j))
				}
				flipped += bits.OnesCount8(a.payload[j] ^ want)
			}
			if flipped > 1 {
				t.Fatalf("packet %d has %d bits flipped", i, flipped)
			}
			corrupted += flipped
		}
		rate, tol := float64(corrupted)/n, 4*math.Sqrt(pc*(1-pc)/n)
		if math.Abs(rate-pc) > tol {
			t.Errorf("corruption rate %.4f, want %.4f ± %.4f", rate, pc, tol)
		}
		if s := p.nw.Stats("a", "b"); s.Corrupted < uint64(corrupted) {
			t.Errorf("stats count %d corrupted, saw at least %d", s.Corrupted, corrupted)
		}
	})
}

func TestReorder(t *testing.T) {
	const n = 20000
	for _, tc := range []struct {
		p   float64
		gap int
	}{{0.25, 0}, {0.5, 5}} {
		t.Run(fmt.Sprintf("%v gap %d", tc.p, tc.gap), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const delay = 10 * time.Millisecond
				p := newPair(t, 6, Impairment{Delay: delay, Reorder: tc.p, ReorderGap: tc.gap})
				got := p.run(t, n, 8, time.Millisecond)
				if len(got) != n {
					t.Fatalf("%d of %d arrived", len(got), n)
				}
				// A reordered packet skips the delay; it then overtakes the
				// packets sent in the 10ms before it.
				immediate := map[int]bool{}
				for _, a := range got {
					switch a.latency {
					case 0:
						immediate[a.seq] = true
					case delay:
					default:
						t.Fatalf("packet %d took %v", a.seq, a.latency)
					}
				}
				overtook := 0
				pos := make([]int, n)
				for i, a := range got {
					pos[a.seq] = i
				}
				for s := 1; s < n; s++ {
					if pos[s] < pos[s-1] {
						overtook++
					}
				}
				gap := max(tc.gap, 1)
				// tc: after gap-1 delayed packets, each packet is reordered
				// with probability p: one per (gap-1) + 1/p packets.
				want := tc.p / (1 + float64(gap-1)*tc.p)
				rate := float64(len(immediate)) / n
				tol := 4 * math.Sqrt(want*(1-want)/n)
				t.Logf("reordered %.4f (want %.4f ± %.4f); %d packets overtook their predecessor", rate, want, tol, overtook)
				if math.Abs(rate-want) > tol {
					t.Errorf("reorder rate %.4f, want %.4f ± %.4f", rate, want, tol)
				}
				if gap > 1 {
					last := -gap
					for s := range n {
						if immediate[s] {
							if s-last < gap {
								t.Fatalf("reordered %d and %d closer than gap %d", last, s, gap)
							}
							last = s
						}
					}
					if overtook != len(immediate) {
						t.Errorf("%d packets overtook, want all %d reordered ones", overtook, len(immediate))
					}
				}
				if overtook == 0 {
					t.Error("nothing arrived out of order")
				}
			})
		})
	}
}

func TestRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			rate  = 8_000_000 // bits/s: 1000 packets/s of 1000 bytes
			size  = 1000
			delay = 5 * time.Millisecond
		)
		// Offer 2000 packets/s for 1s: twice the rate.
		p := newPair(t, 7, Impairment{Rate: rate, Queue: 50, Delay: delay})
		got := p.run(t, 2000, size, 500*time.Microsecond)
		var inWindow int
		for _, a := range got {
			at := time.Duration(a.seq)*500*time.Microsecond + a.latency
			if at >= 200*time.Millisecond && at < time.Second {
				inWindow++
			}
		}
		tput := float64(inWindow*size*8) / 0.8
		t.Logf("throughput %.0f bit/s over [0.2s, 1s), %d delivered, stats %+v", tput, len(got), p.nw.Stats("a", "b"))
		if math.Abs(tput-rate)/rate > 0.01 {
			t.Errorf("throughput %.0f bit/s, want %d ± 1%%", tput, rate)
		}
		s := p.nw.Stats("a", "b")
		if s.QueueDropped == 0 || int(s.QueueDropped)+len(got) != 2000 {
			t.Errorf("queue dropped %d, delivered %d; want drops that add up to 2000", s.QueueDropped, len(got))
		}
	})
}

func TestQueueTailDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A burst of 500 at once behind a 100-packet queue: the first 100 are
		// kept and leave 1ms apart, the rest are dropped.
		p := newPair(t, 8, Impairment{Rate: 8_000_000, Queue: 100})
		got := p.run(t, 500, 1000, 0)
		if len(got) != 100 {
			t.Fatalf("%d delivered, want 100", len(got))
		}
		for i, a := range got {
			if a.seq != i || a.latency != time.Duration(i+1)*time.Millisecond {
				t.Fatalf("arrival %d: packet %d after %v, want packet %d after %v", i, a.seq, a.latency, i, time.Duration(i+1)*time.Millisecond)
			}
		}
		if s := p.nw.Stats("a", "b"); s.QueueDropped != 400 {
			t.Errorf("queue dropped %d, want 400", s.QueueDropped)
		}
	})
}

func TestMTU(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, 9, Impairment{MTU: 1280})
		buf := make([]byte, 2000)
		for _, size := range []int{100, 1252, 1253, 1400} {
			if _, err := p.src.WriteTo(buf[:size], p.dst.LocalAddr()); err != nil {
				t.Fatal(err)
			}
		}
		var sizes []int
		for len(p.dstRaw.in) > 0 {
			sizes = append(sizes, len((<-p.dstRaw.in).b))
		}
		// IPv4: 28 bytes of headers, so 1252 bytes of payload fit in 1280.
		if !slices.Equal(sizes, []int{100, 1252}) {
			t.Errorf("delivered sizes %v, want [100 1252]", sizes)
		}
		if s := p.nw.Stats("a", "b"); s.MTUDropped != 2 {
			t.Errorf("MTU dropped %d, want 2", s.MTUDropped)
		}
	})
}

// endpoints wraps memNet conns as the named endpoints.
func endpoints(t *testing.T, nw *Network, names ...string) map[string]net2 {
	m := newMemNet()
	out := map[string]net2{}
	for _, name := range names {
		raw := m.listen()
		w, err := nw.PacketConn(name, raw)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		out[name] = net2{w, raw}
	}
	return out
}

type net2 struct {
	w   net.PacketConn
	raw *memConn
}

func TestPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := New(Options{Seed: 10})
		defer nw.Close()
		eps := endpoints(t, nw, "a", "b", "c", "d")
		// reach reports which directed pairs deliver one datagram.
		reach := func() map[string]bool {
			r := map[string]bool{}
			for from, f := range eps {
				for to, d := range eps {
					if from == to {
						continue
					}
					f.w.WriteTo([]byte(from), d.raw.addr)
					time.Sleep(time.Second)
					select {
					case <-d.raw.in:
						r[from+to] = true
					default:
					}
				}
			}
			return r
		}
		all := reach()
		if len(all) != 12 {
			t.Fatalf("before any partition %d of 12 pairs reach", len(all))
		}
		heal1 := nw.Partition([]string{"a"}, []string{"b", "c"})
		r := reach()
		for _, pair := range []string{"ab", "ba", "ac", "ca"} {
			if r[pair] {
				t.Errorf("%s reaches across the partition", pair)
			}
		}
		for _, pair := range []string{"bc", "cb", "ad", "da", "bd", "db", "cd", "dc"} {
			if !r[pair] {
				t.Errorf("%s does not reach but is not partitioned", pair)
			}
		}
		// Overlapping partitions: ending the first keeps the second.
		heal2 := nw.Partition([]string{"a", "d"}, []string{"b"})
		heal1()
		heal1()
		r = reach()
		if r["ab"] || r["db"] || !r["ac"] || !r["bc"] {
			t.Errorf("after healing the first of two partitions: %v", r)
		}
		heal2()
		if r := reach(); len(r) != 12 {
			t.Errorf("after heal %d of 12 pairs reach", len(r))
		}
		// Heal ends them all; packets in flight when a partition starts are
		// dropped.
		nw.Partition([]string{"a"}, []string{"b"})
		nw.Partition([]string{"c"}, []string{"d"})
		nw.Heal()
		if r := reach(); len(r) != 12 {
			t.Errorf("after Heal %d of 12 pairs reach", len(r))
		}
		if err := nw.SetLink("a", "b", Impairment{Delay: 10 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		eps["a"].w.WriteTo([]byte("in flight"), eps["b"].raw.addr)
		time.Sleep(5 * time.Millisecond)
		heal := nw.Partition([]string{"a"}, []string{"b"})
		time.Sleep(20 * time.Millisecond)
		heal()
		time.Sleep(time.Second)
		if len(eps["b"].raw.in) != 0 {
			t.Error("a datagram in flight crossed a partition")
		}
		if s := nw.Stats("a", "b"); s.PartitionDropped == 0 {
			t.Errorf("stats %+v count no partition drops", s)
		}
	})
}

// trace is what one link did to a sequence of datagrams, comparable across
// runs: arrival order, latency and payload hash.
func trace(got []arrival) []string {
	out := make([]string, len(got))
	for i, a := range got {
		h := fnv.New64a()
		h.Write(a.payload)
		out[i] = fmt.Sprintf("%d %v %x", a.seq, a.latency, h.Sum64())
	}
	return out
}

var everything = Impairment{
	Delay: 10 * time.Millisecond, Jitter: 3 * time.Millisecond, Distribution: Normal, Correlation: 0.2,
	Loss: 0.05, LossModel: GilbertElliott, LossBurst: 3,
	Duplicate: 0.02, Corrupt: 0.02, Reorder: 0.05, ReorderGap: 2,
	Rate: 20_000_000, Queue: 20,
}

func TestSameSeedSameDecisions(t *testing.T) {
	run := func(seed int64, noise bool) []string {
		var out []string
		synctest.Test(t, func(t *testing.T) {
			p := newPair(t, seed, everything)
			if noise {
				// Traffic on other links, interleaved, must not change a→b.
				m := p.srcRaw.net
				craw := m.listen()
				c, _ := p.nw.PacketConn("c", craw)
				p.nw.SetLink("c", "b", everything)
				p.nw.SetLink("a", "c", everything)
				go func() {
					for i := range 3000 {
						c.WriteTo([]byte{0xff, 0xff, 0xff, 0xff, byte(i)}, p.dst.LocalAddr())
						p.src.WriteTo([]byte{0xff, 0xff, 0xff, 0xff, byte(i)}, craw.addr)
						time.Sleep(150 * time.Microsecond)
					}
				}()
			}
			got := p.run(t, 3000, 1200, 200*time.Microsecond)
			var fromA []arrival
			for _, a := range got {
				if a.seq < 3000 {
					fromA = append(fromA, a)
				}
			}
			out = trace(fromA)
		})
		return out
	}
	a, b := run(42, false), run(42, false)
	if !slices.Equal(a, b) {
		t.Fatal("the same seed gave different decisions")
	}
	if c := run(42, true); !slices.Equal(a, c) {
		t.Fatal("traffic on other links changed the decisions on a→b")
	}
	if d := run(43, false); slices.Equal(a, d) {
		t.Fatal("another seed gave the same decisions")
	}
	// 48 Mbit/s offered to a 20 Mbit/s link: well over half is dropped.
	if len(a) < 1000 || len(a) > 1500 {
		t.Errorf("%d of 3000 arrived", len(a))
	}
}

func TestZeroImpairmentPassesThrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, 11, Impairment{})
		msg := []byte("unchanged")
		if _, err := p.src.WriteTo(msg, p.dst.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		// Synchronous: the datagram is at the receiver when WriteTo returns,
		// written by the caller's goroutine, and no scheduler was started.
		if len(p.dstRaw.in) != 1 {
			t.Fatal("datagram not delivered synchronously")
		}
		if pk := <-p.dstRaw.in; string(pk.b) != "unchanged" {
			t.Fatalf("payload %q", pk.b)
		}
		l := p.nw.link("a", "b")
		l.mu.Lock()
		running := l.running
		l.mu.Unlock()
		if running {
			t.Error("a zero link started its scheduler")
		}
		// A loss-only link still needs no hop for what it lets through.
		p.nw.SetLink("a", "b", Impairment{Loss: 0.5})
		for range 20 {
			p.src.WriteTo(msg, p.dst.LocalAddr())
		}
		if n := len(p.dstRaw.in); n == 0 || n == 20 {
			t.Errorf("%d of 20 delivered at once with 50%% loss", n)
		}
		// Unknown destinations pass unchanged.
		other := p.srcRaw.net.listen()
		p.nw.SetLink("a", "b", Impairment{Loss: 1})
		p.src.WriteTo(msg, other.addr)
		if len(other.in) != 1 {
			t.Error("datagram to an unregistered address not passed through")
		}
		if s := p.nw.Stats("a", "b"); s.Packets != 21 || s.Bytes != 21*uint64(len(msg)) {
			t.Errorf("stats %+v, want 21 packets", s)
		}
	})
}

func TestSetLinkWhileTrafficFlows(t *testing.T) {
	// Real time, for the race detector: senders on several links while the
	// impairments and partitions change under them.
	m := newMemNet()
	nw := New(Options{Seed: 12})
	names := []string{"clients", "node-1", "node-2"}
	conns := map[string]net2{}
	for _, name := range names {
		raw := m.listen()
		w, _ := nw.PacketConn(name, raw)
		conns[name] = net2{w, raw}
		go func() {
			for {
				if _, err := raw.read(); err != nil {
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	for _, from := range names {
		for _, to := range names {
			if from == to {
				continue
			}
			go func() {
				defer func() { done <- struct{}{} }()
				b := make([]byte, 200)
				for range 3000 {
					if _, err := conns[from].w.WriteTo(b, conns[to].raw.addr); err != nil {
						t.Error(err)
						return
					}
					runtime.Gosched()
				}
			}()
		}
	}
	imps := []Impairment{{}, everything, {Delay: time.Millisecond, Loss: 0.1}, {Rate: 1_000_000}}
	for i := range 300 {
		nw.SetLink(names[i%3], names[(i+1)%3], imps[i%len(imps)])
		switch i % 7 {
		case 0:
			nw.Partition([]string{names[i%3]}, []string{names[(i+2)%3]})
		case 3:
			nw.Heal()
		}
		runtime.Gosched()
	}
	for range 6 {
		<-done
	}
	nw.Close()
	nw.Close()
	for _, c := range conns {
		c.raw.Close()
	}
}

func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newPair(t, 13, Impairment{Delay: time.Second})
		for range 10 {
			p.src.WriteTo([]byte("pending"), p.dst.LocalAddr())
		}
		if err := p.nw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := p.nw.Close(); err != nil {
			t.Fatal(err)
		}
		// Pending datagrams are dropped; new ones that need the scheduler
		// fail; unimpaired traffic still passes.
		time.Sleep(2 * time.Second)
		if n := len(p.dstRaw.in); n != 0 {
			t.Errorf("%d datagrams delivered after Close", n)
		}
		if _, err := p.src.WriteTo([]byte("x"), p.dst.LocalAddr()); !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
			t.Errorf("WriteTo after Close: %v, want ErrClosed", err)
		}
		p.nw.SetLink("a", "b", Impairment{})
		if _, err := p.src.WriteTo([]byte("x"), p.dst.LocalAddr()); err != nil || len(p.dstRaw.in) != 1 {
			t.Errorf("unimpaired WriteTo after Close: %v", err)
		}
	})
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		imp   Impairment
		field string
	}{
		{Impairment{Delay: -1}, "Delay"},
		{Impairment{Jitter: -1}, "Jitter"},
		{Impairment{Jitter: 1, Distribution: "gamma"}, "Distribution"},
		{Impairment{Loss: 1.5}, "Loss"},
		{Impairment{Loss: math.NaN()}, "Loss"},
		{Impairment{Correlation: -0.1}, "Correlation"},
		{Impairment{Duplicate: 2}, "Duplicate"},
		{Impairment{Corrupt: -1}, "Corrupt"},
		{Impairment{Reorder: 0.1}, "Reorder"},
		{Impairment{Delay: 1, Reorder: 0.1, ReorderGap: -1}, "ReorderGap"},
		{Impairment{LossModel: "markov"}, "LossModel"},
		{Impairment{Loss: 0.5, LossModel: GilbertElliott, LossBurst: 0.5}, "LossBurst"},
		{Impairment{Loss: 0.6, LossModel: GilbertElliott, LossBurst: 1}, "Loss"},
		{Impairment{Rate: 1, Queue: -1}, "Queue"},
		{Impairment{MTU: 10}, "MTU"},
	} {
		err := tc.imp.Validate()
		var ie *ImpairmentError
		if !errors.As(err, &ie) || ie.Field != tc.field || !errors.Is(err, ErrInvalidImpairment) {
			t.Errorf("%+v: %v, want an error on %s", tc.imp, err, tc.field)
		}
	}
	nw := New(Options{})
	defer nw.Close()
	err := nw.SetLink("a", "b", Impairment{Loss: 2})
	if err == nil || err.Error() != "netem: link a→b: Loss: 2 is not a probability in [0, 1]" {
		t.Errorf("SetLink error %v", err)
	}
	if err := nw.SetLink("", "b", Impairment{}); !errors.Is(err, ErrEndpoint) {
		t.Errorf("empty endpoint: %v", err)
	}
	// SetLinks checks every link before it changes any.
	ok := Impairment{Delay: time.Millisecond}
	err = nw.SetLinks([]LinkImpairment{{From: "a", To: "b", Impairment: ok}, {From: "b", To: "a", Impairment: Impairment{Loss: 0.9, LossModel: GilbertElliott}}})
	var ie *ImpairmentError
	if !errors.As(err, &ie) || ie.Link != "b→a" || ie.Field != "Loss" {
		t.Errorf("SetLinks with a bad link: %v", err)
	}
	if got := nw.Link("a", "b"); !got.IsZero() {
		t.Errorf("a failed SetLinks set a→b to %+v", got)
	}
	if err := nw.SetLinks([]LinkImpairment{{From: "a", To: "b", Impairment: ok}, {From: "b", To: "", Impairment: ok}}); !errors.Is(err, ErrEndpoint) {
		t.Errorf("SetLinks with an empty endpoint: %v", err)
	}
	if err := nw.SetLinks([]LinkImpairment{{From: "a", To: "b", Impairment: ok}, {From: "b", To: "a", Impairment: ok}}); err != nil {
		t.Fatal(err)
	}
	if nw.Link("a", "b") != ok || nw.Link("b", "a") != ok {
		t.Errorf("SetLinks set %+v and %+v", nw.Link("a", "b"), nw.Link("b", "a"))
	}
	if err := everything.Validate(); err != nil {
		t.Error(err)
	}
}

// FuzzDecide checks that any impairment is either refused by Validate or
// yields sane decisions: at most two copies, never before now, a flipped bit
// inside the packet.
func FuzzDecide(f *testing.F) {
	f.Add(int64(10e6), int64(3e6), uint8(1), 0.2, 0.05, uint8(1), 3.0, 0.02, 0.02, 0.05, 2, uint64(20e6), 20, 1280, 1200)
	f.Add(int64(0), int64(0), uint8(0), 0.0, 0.0, uint8(0), 0.0, 0.0, 0.0, 0.0, 0, uint64(0), 0, 0, 0)
	f.Add(int64(1), int64(1e9), uint8(3), 1.0, 1.0, uint8(0), 0.0, 1.0, 1.0, 1.0, 1, uint64(1), 1, 68, 65535)
	f.Add(int64(-5), int64(7), uint8(9), -1.0, 2.0, uint8(7), -3.0, 0.5, 0.5, 0.5, -1, uint64(5), -1, 5, 10)
	f.Fuzz(func(t *testing.T, delay, jitter int64, dist uint8, corr, loss float64, model uint8, burst, dup, corrupt, reorder float64, gap int, rate uint64, queue, mtu, size int) {
		dists := []Distribution{"", Uniform, Normal, Pareto, ParetoNormal, "other"}
		models := []LossModel{"", Bernoulli, GilbertElliott, "other"}
		imp := Impairment{
			Delay: time.Duration(delay), Jitter: time.Duration(jitter), Distribution: dists[int(dist)%len(dists)],
			Correlation: corr, Loss: loss, LossModel: models[int(model)%len(models)], LossBurst: burst,
			Duplicate: dup, Corrupt: corrupt, Reorder: reorder, ReorderGap: gap, Rate: rate, Queue: queue, MTU: mtu,
		}
		nw := New(Options{Seed: delay})
		defer nw.Close()
		if err := nw.SetLink("a", "b", imp); err != nil {
			if !errors.Is(err, ErrInvalidImpairment) {
				t.Fatalf("SetLink: %v is not an ImpairmentError", err)
			}
			return
		}
		size = min(max(size, 0), 1<<16)
		l := nw.link("a", "b")
		now := time.Unix(1e9, 0)
		addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
		for i := range 100 {
			var plans [2]copyPlan
			k := l.decidePacket(now, size, addr, &plans)
			if k < 0 || k > 2 {
				t.Fatalf("%d copies", k)
			}
			for _, p := range plans[:k] {
				if p.at.Before(now) || p.bit >= size*8 || (p.bit >= 0 && size == 0) {
					t.Fatalf("packet %d: plan %+v for %d bytes", i, p, size)
				}
			}
			if at, _ := l.decideSegment(now, size); at.Before(now) {
				t.Fatalf("segment before now")
			}
			now = now.Add(time.Duration(i) * time.Microsecond)
		}
	})
}

// TestLossModelLongRun checks the loss models' decisions on their own over
// millions of packets, where the tolerances can be tight.
func TestLossModelLongRun(t *testing.T) {
	const n = 2_000_000
	for _, tc := range []struct {
		imp           Impairment
		lambda, burst float64
	}{
		{Impairment{Loss: 0.02, LossModel: GilbertElliott, LossBurst: 5}, 1 - 0.2 - 0.02*0.2/0.98, 5},
		{Impairment{Loss: 0.3, LossModel: GilbertElliott, LossBurst: 2.5}, 1 - 0.4 - 0.3*0.4/0.7, 2.5},
		{Impairment{Loss: 0.01, Correlation: 0.8}, 0.8, 1 / (0.2 * 0.99)},
	} {
		nw := New(Options{Seed: 14})
		if err := nw.SetLink("a", "b", tc.imp); err != nil {
			t.Fatal(err)
		}
		l := nw.link("a", "b")
		c := l.cfg.Load()
		lost, run := 0, 0
		var runs []int
		for range n {
			if l.lossEvent(c) {
				lost++
				run++
			} else if run > 0 {
				runs = append(runs, run)
				run = 0
			}
		}
		p := tc.imp.Loss
		rate := float64(lost) / n
		se := math.Sqrt(p * (1 - p) / n * (1 + tc.lambda) / (1 - tc.lambda))
		bse := math.Sqrt(tc.burst*tc.burst-tc.burst) / math.Sqrt(float64(len(runs)))
		t.Logf("%+v: loss %.5f (want %.5f ± %.5f), mean burst %.3f (want %.3f ± %.3f)", tc.imp, rate, p, 4*se, mean(runs), tc.burst, 4*bse)
		if math.Abs(rate-p) > 4*se || math.Abs(mean(runs)-tc.burst) > 4*bse {
			t.Errorf("%+v: loss %.5f, mean burst %.3f; want %.5f ± %.5f, %.3f ± %.3f", tc.imp, rate, mean(runs), p, 4*se, tc.burst, 4*bse)
		}
		nw.Close()
	}
}
