package des

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/rustorium/rustorium/netem"
)

func TestEqualTimesRunInSchedulingOrder(t *testing.T) {
	s := New(1)
	var got []int
	for i := range 100 {
		at := Time(i%3) * Millisecond
		s.At(at, func() { got = append(got, i) })
	}
	s.RunUntil(Second, nil)
	var want []int
	for r := range 3 {
		for i := range 100 {
			if i%3 == r {
				want = append(want, i)
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("order %v", got)
	}
	if s.Now() != Second || s.Events() != 100 {
		t.Fatalf("now %v events %d", s.Now(), s.Events())
	}
}

func TestPastEventsRunNowAndLater(t *testing.T) {
	s := New(1)
	var at []Time
	s.At(5, func() {
		s.At(1, func() { at = append(at, s.Now()) }) // in the past: now
		s.After(10, func() { at = append(at, s.Now()) })
	})
	s.RunUntil(100, nil)
	if !slices.Equal(at, []Time{5, 15}) {
		t.Fatalf("%v", at)
	}
}

func TestServerIsFIFOOverItsSlots(t *testing.T) {
	s := New(1)
	v := NewServer(s, "cpu", 2, 2)
	var done []Time
	for i := range 4 {
		v.Do(10, i%2, func() { done = append(done, s.Now()) })
	}
	s.RunUntil(100, nil)
	// two at a time: 10, 10, 20, 20
	if !slices.Equal(done, []Time{10, 10, 20, 20}) {
		t.Fatalf("%v", done)
	}
	if v.Busy(0) != 20 || v.Busy(1) != 20 {
		t.Fatalf("busy %v %v", v.Busy(0), v.Busy(1))
	}
	v.Window(0, 40)
	if u := v.Utilisation(0); u != 0.25 {
		t.Fatalf("utilisation %v", u)
	}
}

func TestServerStall(t *testing.T) {
	s := New(1)
	v := NewServer(s, "cpu", 1, 1)
	v.Stall(50)
	if end := v.Start(10, 0); end != 60 {
		t.Fatalf("end %v", end)
	}
}

func TestLinkDelayJitterLossAndPartition(t *testing.T) {
	s := New(7)
	l := NewLink(s, 1, Impairment{Delay: 10 * Millisecond, Jitter: 2 * Millisecond, Distribution: netem.Uniform})
	var lat []Time
	for range 1000 {
		t0 := s.Now()
		l.Send(200, func() { lat = append(lat, s.Now()-t0) })
	}
	s.RunUntil(Second, nil)
	for _, d := range lat {
		if d < 8*Millisecond || d > 12*Millisecond {
			t.Fatalf("delay %v outside 10ms±2ms", d)
		}
	}
	// Loss: about half the messages take a retransmission.
	l.Set(Impairment{Delay: Millisecond, Loss: 0.5})
	n0 := l.Lost
	var late int
	for range 1000 {
		t0 := s.Now()
		l.Send(100, func() {
			if s.Now()-t0 > Millisecond {
				late++
			}
		})
	}
	s.RunUntil(2*Second, nil)
	if lost := l.Lost - n0; lost < 800 || lost > 1200 || late < 400 || late > 600 {
		t.Fatalf("lost %d, late %d of 1000 at 50%% loss", lost, late)
	}
	// A partition holds messages until it heals.
	l.Set(Impairment{Delay: Millisecond})
	l.Block(true)
	var arrived Time
	l.Send(100, func() { arrived = s.Now() })
	s.RunUntil(3*Second, nil)
	if arrived != 0 {
		t.Fatal("delivered through a partition")
	}
	l.Block(false)
	s.RunUntil(4*Second, nil)
	if arrived != 3*Second+Millisecond {
		t.Fatalf("arrived %v", arrived)
	}
}

func TestLinkBandwidthQueues(t *testing.T) {
	s := New(1)
	l := NewLink(s, 1, Impairment{BytesPerSecond: 1e6}) // 1 MB/s: 1 ms per 1000 bytes
	var last Time
	for range 10 {
		l.Send(1000, func() { last = s.Now() })
	}
	s.RunUntil(Second, nil)
	if last != 10*Millisecond {
		t.Fatalf("last %v", last)
	}
}

func TestSameSeedSameDraws(t *testing.T) {
	run := func() []Time {
		s := New(3)
		l := NewLink(s, s.Rand().Uint64(), Impairment{Delay: Millisecond, Jitter: Millisecond, Distribution: netem.ParetoNormal, Loss: 0.1})
		var out []Time
		for range 100 {
			l.Send(100, func() { out = append(out, s.Now()) })
		}
		s.RunUntil(Second, nil)
		return out
	}
	if a, b := run(), run(); !slices.Equal(a, b) {
		t.Fatal("same seed, different times")
	}
}

// TestTripIsSendWithoutAnEvent: Trip draws the same arrival as Send on a
// link with the same seed and impairment, schedules nothing, and drops the
// message on a blocked link.
func TestTripIsSendWithoutAnEvent(t *testing.T) {
	imp := Impairment{Delay: 10 * Millisecond, Jitter: 2 * Millisecond, Distribution: netem.Normal, Loss: 0.2}
	s := New(1)
	a, b := NewLink(s, 7, imp), NewLink(s, 7, imp)
	for range 50 {
		var sent Time
		a.Send(1500, func() { sent = s.Now() })
		at, ok := b.Trip(1500)
		if !ok || s.Pending() != 1 {
			t.Fatalf("trip ok %v, pending %d", ok, s.Pending())
		}
		s.Step()
		if sent != at {
			t.Fatalf("send delivered at %v, trip says %v", sent, at)
		}
	}
	b.Block(true)
	if _, ok := b.Trip(10); ok {
		t.Fatal("a blocked link's trip arrived")
	}
}

// TestStartPartsAndSpeed: a job of parts runs them back to back on one
// slot, each accounted to its operation; a server at half speed takes
// twice as long.
func TestStartPartsAndSpeed(t *testing.T) {
	s := New(1)
	v := NewServer(s, "cpu", 2, 3)
	end := v.StartParts(Part{Cost: 3 * Millisecond, Op: 1}, Part{Cost: Millisecond, Op: 2})
	if end != 4*Millisecond || v.Busy(1) != 3*Millisecond || v.Busy(2) != Millisecond {
		t.Fatalf("end %v, busy %v %v", end, v.Busy(1), v.Busy(2))
	}
	if other := v.Start(Millisecond, 0); other != Millisecond {
		t.Fatalf("the other slot's job ends at %v", other)
	}
	v.SetSpeed(0.5)
	if end := v.Start(Millisecond, 0); end != 3*Millisecond {
		t.Fatalf("half speed: ends at %v, want 3ms (free at 1ms, 2ms long)", end)
	}
}

// TestShareSlowsTheNextPeriod: background work charged with Share is busy
// time of its op at once and does not queue; the jobs that start in the
// next SharePeriod run slower by the share of the servers it took (a job
// accounted only its own cost), a period without background work restores
// full speed, and the share is capped so jobs still progress.
func TestShareSlowsTheNextPeriod(t *testing.T) {
	s := New(1)
	v := NewServer(s, "cpu", 2, 2)
	// Half of two servers over the first period.
	v.Share(SharePeriod, 1)
	if end := v.Start(Millisecond, 0); end != Millisecond {
		t.Fatalf("in the same period: ends at %v, want 1ms (nothing queued, full speed)", end)
	}
	if v.Busy(1) != SharePeriod || v.Busy(0) != Millisecond {
		t.Fatalf("busy %v (background) and %v (job)", v.Busy(1), v.Busy(0))
	}
	s.RunUntil(SharePeriod, nil)
	if end := v.Start(10*Millisecond, 0); end != SharePeriod+20*Millisecond {
		t.Fatalf("next period: ends at %v, want %v (half speed)", end, SharePeriod+20*Millisecond)
	}
	if v.Busy(0) != 11*Millisecond {
		t.Fatalf("the jobs' busy time %v, want their own 11ms", v.Busy(0))
	}
	// No background work in the second period: the third runs at full
	// speed; so does any after an idle gap.
	s.RunUntil(2*SharePeriod, nil)
	if end := v.Start(Millisecond, 0); end != 2*SharePeriod+Millisecond {
		t.Fatalf("after a period without background work: ends at %v", end)
	}
	// All of both servers (with the job above's 1ms): the share is capped
	// at 90%, and the period's background work its idle servers could not
	// hold (1ms) is queued, half on each server, from the period's end.
	v.Share(2*SharePeriod, 1)
	s.RunUntil(3*SharePeriod, nil)
	if end := v.Start(Millisecond, 0); end != 3*SharePeriod+Millisecond/2+10*Millisecond {
		t.Fatalf("capped share: ends at %v, want 10.5ms later (0.5ms of debt, then 90%% taken)", end)
	}
	if v.Debt() != Millisecond {
		t.Fatalf("debt %v, want 1ms", v.Debt())
	}
}

// TestShareQueuesBehindABacklog: Share's work arriving while the servers
// are booked beyond the current period queues as a job (work that comes
// with a request is done when the servers get to it), and a job starting
// in a later period is not slowed by this period's share.
func TestShareQueuesBehindABacklog(t *testing.T) {
	s := New(1)
	v := NewServer(s, "cpu", 1, 2)
	if end := v.Start(2*SharePeriod, 0); end != 2*SharePeriod {
		t.Fatalf("backlog ends at %v", end)
	}
	s.RunUntil(SharePeriod, nil)
	v.Share(SharePeriod/2, 1)
	if v.Busy(1) != SharePeriod/2 || v.Backlog() != SharePeriod*3/2 {
		t.Fatalf("busy %v, backlog %v: want the second share queued", v.Busy(1), v.Backlog())
	}
	if end := v.Start(SharePeriod/2, 0); end != 3*SharePeriod {
		t.Fatalf("starting in a later period: ends at %v, want %v (full speed)", end, 3*SharePeriod)
	}
	s.RunUntil(5*SharePeriod, nil)
	if v.Debt() != 0 {
		t.Fatalf("debt %v", v.Debt())
	}
}

// TestBackgroundPastCapacityQueues: Background work on servers the jobs
// keep busy has no idle time to take, so it is queued among the jobs when
// its period ends; on idle servers it takes their idle time.
func TestBackgroundPastCapacityQueues(t *testing.T) {
	s := New(1)
	v := NewServer(s, "cpu", 2, 2)
	v.Background(SharePeriod, 1) // half of the first period, which is idle
	s.RunUntil(SharePeriod, nil)
	if v.Debt() != 0 || v.Backlog() != 0 {
		t.Fatalf("idle servers: debt %v, backlog %v", v.Debt(), v.Backlog())
	}
	v.Start(SharePeriod, 0)
	v.Start(SharePeriod, 0) // both servers busy for the second period
	v.Background(SharePeriod/2, 1)
	s.RunUntil(2*SharePeriod, nil)
	if v.Debt() != SharePeriod/2 {
		t.Fatalf("debt %v, want %v", v.Debt(), SharePeriod/2)
	}
	if end := v.Start(Millisecond, 0); end != 2*SharePeriod+SharePeriod/4+Millisecond {
		t.Fatalf("after a saturated period: ends at %v, want a quarter period later", end)
	}
}

// TestOverloadCarriesCapacity: offered twice what it can do, one server
// whose jobs each bring as much Share work as their own cost completes
// half a job's worth a cost, not less: the shared work of requests still
// queued is not charged before they are served (the overload caveat of
// DESIGN's simulation section).
func TestOverloadCarriesCapacity(t *testing.T) {
	s := New(1)
	v := NewServer(s, "cpu", 1, 2)
	const cost = 100 * Microsecond
	var done int
	var arrive func()
	arrive = func() {
		v.Share(cost, 1)
		v.Do(cost, 0, func() { done++ })
		if s.Now() < 10*Second {
			s.After(cost, arrive) // one a cost: twice the capacity with the overhead
		}
	}
	s.At(0, arrive)
	s.RunUntil(10*Second, nil)
	want := int(10 * Second / (2 * cost))
	if done < want*95/100 || done > want*105/100 {
		t.Fatalf("completed %d jobs in 10s, want about %d (the server's capacity)", done, want)
	}
}

// TestBackgroundLoadsButDoesNotSlow: Background work is busy time at
// once and load in the next period (Load, Stretch), as Share's is, but
// the next period's jobs run at full speed.
func TestBackgroundLoadsButDoesNotSlow(t *testing.T) {
	s := New(1)
	v := NewServer(s, "cpu", 2, 2)
	v.Background(SharePeriod, 1) // half of two servers over the first period
	if v.Busy(1) != SharePeriod {
		t.Fatalf("busy %v, want the background's %v", v.Busy(1), SharePeriod)
	}
	s.RunUntil(SharePeriod, nil)
	if end := v.Start(10*Millisecond, 0); end != SharePeriod+10*Millisecond {
		t.Fatalf("next period: ends at %v, want %v (full speed)", end, SharePeriod+10*Millisecond)
	}
	if l := v.Load(); l != 0.5 {
		t.Fatalf("load %v, want 0.5", l)
	}
	if got := v.Stretch(Millisecond); got != 2*Millisecond {
		t.Fatalf("stretch %v, want 2ms (1/(1−0.5))", got)
	}
}

// TestStretchFollowsTheLoad: a latency measured idle stretches by 1/(1−ρ),
// ρ the share of the servers the jobs and the background work took over
// the last complete period (at most 90%); an idle machine leaves it as is,
// and stretching queues nothing.
func TestStretchFollowsTheLoad(t *testing.T) {
	s := New(1)
	v := NewServer(s, "cpu", 2, 2)
	if got := v.Stretch(Millisecond); got != Millisecond {
		t.Fatalf("idle: %v, want 1ms", got)
	}
	// A quarter of two servers in jobs and a quarter in background work.
	v.Start(SharePeriod/2, 0)
	v.Share(SharePeriod/2, 1)
	if got := v.Stretch(Millisecond); got != Millisecond {
		t.Fatalf("in the same period: %v, want 1ms (measured over complete periods)", got)
	}
	s.RunUntil(SharePeriod, nil)
	if got := v.Stretch(Millisecond); got != 2*Millisecond {
		t.Fatalf("after a half-busy period: %v, want 2ms", got)
	}
	if v.Backlog() > 0 || v.Busy(0) != SharePeriod/2 {
		t.Fatalf("stretching queued work: backlog %v, busy %v", v.Backlog(), v.Busy(0))
	}
	v.Share(100*SharePeriod, 1)
	s.RunUntil(2*SharePeriod, nil)
	if got := v.Stretch(Millisecond); got != 10*Millisecond {
		t.Fatalf("saturated: %v, want 10ms (90%% cap)", got)
	}
	s.RunUntil(4*SharePeriod, nil)
	if got := v.Stretch(Millisecond); got != Millisecond {
		t.Fatalf("after an idle period: %v, want 1ms", got)
	}
}

// A long goroutine's slice (Hog) starts at once on an idle server, waits
// while both are busy, and lets every job that arrives meanwhile go first
// — a job queued at the instant a server frees too — and, once started,
// holds its server for the whole slice; waiting slices start in order.
func TestHogWaitsForAnIdleServerBehindTheJobs(t *testing.T) {
	s := New(1)
	v := NewServer(s, "cpu", 2, 2)
	var got []string
	at := func(name string) func() {
		return func() { got = append(got, fmt.Sprintf("%s@%d", name, s.Now())) }
	}
	v.Hog(10, 1, at("h1")) // idle: 0..10
	v.Do(5, 0, func() {
		at("j1")()
		v.Do(5, 0, at("j2")) // queued at 5, as j1's work readies it: before h2
	})
	v.Hog(10, 1, at("h2")) // both busy: waits
	v.Hog(10, 1, at("h3"))
	s.At(7, func() { v.Do(6, 0, at("j3")) }) // arrives while h2 waits: first
	s.RunUntil(100, nil)
	// j1 0..5, j2 5..10; h1 0..10; j3 10..16 (the first server to free);
	// h2 10..20 on the other; h3 16..26.
	want := []string{"j1@5", "h1@10", "j2@10", "j3@16", "h2@20", "h3@26"}
	if !slices.Equal(got, want) {
		t.Fatalf("completed %v, want %v", got, want)
	}
	if v.Busy(1) != 30 || v.Busy(0) != 16 {
		t.Fatalf("busy: hogs %v, jobs %v", v.Busy(1), v.Busy(0))
	}
	// A job arriving while a slice runs on every server waits for its end.
	s2 := New(1)
	w := NewServer(s2, "cpu", 1, 1)
	w.Hog(10, 0, nil)
	var end Time
	s2.At(1, func() { end = w.Start(1, 0) })
	s2.RunUntil(100, nil)
	if end != 11 {
		t.Fatalf("a job behind a running slice ends at %v, want 11", end)
	}
}

// MeanLoad follows the complete periods' busy share exponentially over
// MeanLoadWindow: a burst of one period at 90% moves it by that period's
// weight, a steady load reaches its level, and idle periods fade it.
func TestMeanLoadAveragesThePeriods(t *testing.T) {
	s := New(1)
	v := NewServer(s, "cpu", 1, 1)
	a := 1 - math.Exp(-float64(SharePeriod)/float64(MeanLoadWindow))
	v.Start(SharePeriod, 0) // one full period
	s.RunUntil(SharePeriod, nil)
	if got, want := v.MeanLoad(), 0.9*a; math.Abs(got-want) > 1e-12 {
		t.Fatalf("after a full period: %v, want %v (the 90%% cap times its weight)", got, want)
	}
	if v.Load() != 0.9 {
		t.Fatalf("Load %v, want 0.9", v.Load())
	}
	s.RunUntil(SharePeriod+MeanLoadWindow, nil) // idle for a window
	if got, want := v.MeanLoad(), 0.9*a*math.Pow(1-a, float64(MeanLoadWindow/SharePeriod)); math.Abs(got-want) > 1e-12 {
		t.Fatalf("after an idle window: %v, want %v", got, want)
	}
	// Half busy for ten windows: the mean reaches a half.
	for i := range 10 * int(MeanLoadWindow/SharePeriod) {
		at := SharePeriod + MeanLoadWindow + Time(i)*SharePeriod
		s.At(at, func() { v.Start(SharePeriod/2, 0) })
	}
	s.RunUntil(SharePeriod+11*MeanLoadWindow, nil)
	if got := v.MeanLoad(); math.Abs(got-0.5) > 1e-3 {
		t.Fatalf("after ten windows half busy: %v, want 0.5", got)
	}
}

// A slice waits for an idle server at most HogPatience: behind a server
// that jobs keep busy it then queues as a job, so that a saturated
// machine's long goroutines still run.
func TestHogQueuesAfterItsPatience(t *testing.T) {
	s := New(1)
	v := NewServer(s, "cpu", 1, 2)
	// Jobs of 1 ms arrive every millisecond: the server is never idle.
	for i := range 100 {
		s.At(Time(i)*Millisecond, func() { v.Do(Millisecond, 0, nil) })
	}
	var started Time
	s.At(Millisecond/2, func() { v.Hog(Millisecond, 1, func() { started = s.Now() - Millisecond }) })
	s.RunUntil(Second, nil)
	// Out of patience at 10.5 ms, behind the job that arrived at 10 ms
	// (running 10..11): it runs 11..12, and the jobs after it wait.
	if want := 11 * Millisecond; started != want {
		t.Fatalf("the slice started at %v, want %v", started, want)
	}
	if v.Busy(1) != Millisecond || v.Busy(0) != 100*Millisecond {
		t.Fatalf("busy: slice %v, jobs %v", v.Busy(1), v.Busy(0))
	}
}
