package des

import (
	"math"
	"math/rand/v2"

	"github.com/rustorium/rustorium/netem"
)

// Server is a FIFO multi-server queue: Slots identical servers (a
// machine's cores, a broker's request handlers, a disk) taking jobs in
// arrival order, each job on the server that frees first. A job's cost is
// known when it arrives, so its completion time is computed at once and
// only the completion is an event. Busy time is accounted per operation
// kind over a window, for utilisation.
type Server struct {
	s     *Scheduler
	Name  string
	free  []Time // per slot, when it is next free: a min-heap
	busy  []Time // per op: busy time inside the window
	jobs  []int64
	from  Time
	to    Time
	stall Time // nothing starts before this (a paused machine)
	speed float64

	// Shared background work (Share): what the current period holds, and
	// the share of the servers it takes from the jobs, measured over the
	// last complete period.
	shared      Time
	sharedSince Time
	sharedShare float64
	// The jobs' work queued in the current period, Background's work
	// charged in it, the servers' backlog when the period began, and the
	// share of the servers the jobs and all background work together took
	// over the last complete period (Stretch).
	jobsQueued  Time
	loading     Time
	backlogFrom Time
	busyShare   float64
	// meanLoad is the periods' busy share (busyShare's measure), averaged
	// exponentially over about MeanLoadWindow.
	meanLoad float64
	// The time the jobs queued in the current period cede to Share's work
	// (their scaled cost less their cost).
	ceded Time
	// Debt is the background work no idle or ceded server time could take
	// (conserve), added to the servers' queue.
	debt Time
	// Slices of long goroutines waiting for an idle server (Hog), and the
	// generation of the pending look for one (0: none pending).
	hogs    []hogSlice
	hogGen  uint64
	hogLook uint64
}

// hogSlice is a long goroutine's slice waiting for a server (Hog) since
// since.
type hogSlice struct {
	cost  Time
	op    int
	done  func()
	since Time
}

// HogPatience is how long a long goroutine's slice waits for an idle
// server (Hog) before it takes its turn among the jobs: Go's 10 ms time
// slice (its monitor preempts a goroutine that ran that long, and a P
// looks at the global run queue, where the long goroutine waits, when
// its own runs dry and every 61st time it schedules). A runtime trace of
// three nodes' compaction rounds on two cores (session 35) had Pebble's
// goroutines wait runnable 5 µs at the median, 3.2 ms at the p90 and 10
// ms at the p99. Without it a saturated node's Pebble would never run.
const HogPatience = 10 * Millisecond

// SharePeriod is the period over which Share's background work is
// measured: the jobs of one period run at the speed the previous one's
// background work left them.
const SharePeriod = 20 * Millisecond

// maxShare bounds the servers' share Share's background work may take, so
// that the jobs still progress (the rest queues, as it would).
const maxShare = 0.9

// NewServer returns a server with slots servers (at least 1) accounting
// ops operation kinds (0..ops-1).
func NewServer(s *Scheduler, name string, slots, ops int) *Server {
	return &Server{s: s, Name: name, free: make([]Time, max(slots, 1)), busy: make([]Time, max(ops, 1)), jobs: make([]int64, max(ops, 1)), to: math.MaxInt64, speed: 1}
}

// SetSpeed makes every job from now on take its cost divided by speed (a
// share of the machine, 0 < speed <= 1; others are ignored).
func (v *Server) SetSpeed(speed float64) {
	if speed > 0 && speed <= 1 {
		v.speed = speed
	}
}

// scaled is the cost of a job starting at start at the speed it runs at,
// and the share of the servers Share's background work took over the last
// complete period that slowed it: none for a job queued behind the
// servers' backlog into a later period, whose Share work was queued (charge)
// and the share of when it runs is not known yet. (Scaled by the share of
// when it was queued, an overloaded server's backlog ran up to ten times
// its cost long after the burst that set the share had passed: DESIGN's
// overload caveat.)
func (v *Server) scaled(cost, start Time) (Time, float64) {
	v.rollShared()
	share := v.sharedShare
	if start >= v.sharedSince+SharePeriod {
		share = 0
	}
	speed := v.speed * (1 - share)
	if speed == 1 {
		return cost, share
	}
	return Time(math.Round(float64(cost) / speed)), share
}

// capacity is the servers' time in one SharePeriod.
func (v *Server) capacity() float64 { return float64(SharePeriod) * float64(len(v.free)) }

// Stretch returns how long a latency of t measured on an idle machine
// takes on this one now. A loopback round trip is the machine's own work
// — system calls, wake-ups, the peer's handling — each hop of which waits
// for a server as a short job does behind the machine's load: t is
// divided by the speed SetSpeed gives and by 1 − ρ, ρ the share of the
// servers the jobs and the background work took over the last complete
// SharePeriod (at most 90%), an M/M/1 queue's response time.
func (v *Server) Stretch(t Time) Time {
	if t <= 0 {
		return t
	}
	v.rollShared()
	return Time(math.Round(float64(t) / (v.speed * (1 - v.busyShare))))
}

// MeanLoadWindow is the time constant of MeanLoad's exponential mean.
const MeanLoadWindow = Second

// MeanLoad is Load's mean over about the last MeanLoadWindow: each
// complete SharePeriod's share weighted by exp(−age/MeanLoadWindow) (an
// exponential moving average; idle periods count as 0). It is the load
// of latencies measured as a run's distribution against that run's mean
// load, where Load's bursts would count a burst's queueing many times
// over.
func (v *Server) MeanLoad() float64 {
	v.rollShared()
	return v.meanLoad
}

// Load is the share of the servers the jobs and the background work took
// over the last complete SharePeriod (at most 90%): the ρ Stretch divides
// by.
func (v *Server) Load() float64 {
	v.rollShared()
	return v.busyShare
}

// Share charges cost of op as background work that shares the servers
// with the jobs instead of queueing among them, as an operating system's
// scheduler interleaves a process's many small pieces of overhead with
// its critical work: it is busy time of op, and the jobs that start in the
// next SharePeriod run slower by the share of the servers the period's
// background work took (at most 90%). When the servers are booked beyond
// the current period it is queued as a job instead: work that comes with a
// request is done when the servers get to the request, and charged as
// shared when it arrived, a burst queued behind a backlog slowed the jobs
// long after it (DESIGN: the overload caveat). What the period's idle time
// and the time its jobs ceded to it cannot hold is queued when the period
// ends (see Background).
func (v *Server) Share(cost Time, op int) { v.charge(cost, op, true) }

// Background charges cost of op as work beside the jobs that neither
// queues among them nor slows them: busy time of op at once, and part of
// the load that Load reports and Stretch divides by. It is for work whose
// effect on the jobs' latency the caller charges otherwise (the
// simulator's per-block overhead: mostly the Kafka client's and broker's
// work of a leader's round and of the replicas' fetches, whose round
// trips it charges as latencies stretched by this load). It takes the
// servers' idle time; what the idle time of its period (and, for Share's
// work, the time the jobs ceded to it) cannot hold is added to the
// servers' queue when the period ends, so a saturated machine's jobs wait
// for it and the work done never exceeds the servers' capacity by more
// than one period's excess.
func (v *Server) Background(cost Time, op int) { v.charge(cost, op, false) }

// charge is Share (slows the jobs) and Background (does not).
func (v *Server) charge(cost Time, op int, slows bool) {
	if cost <= 0 {
		return
	}
	if slows && max(v.free[0], v.stall) >= v.sharedSince+SharePeriod {
		// Servers booked beyond this period: work that comes with a
		// request is done when the servers get to the request, so it
		// queues with it.
		v.Start(cost, op)
		return
	}
	v.rollShared()
	cost = Time(math.Round(float64(cost) / v.speed))
	if slows {
		v.shared += cost
	} else {
		v.loading += cost
	}
	if op >= 0 && op < len(v.busy) {
		if now := v.s.now; now >= v.from && now < v.to {
			v.busy[op] += cost
		}
		v.jobs[op]++
	}
}

// rollShared closes the periods of shared background work that have
// ended: the share of the last one is what slows the jobs now (an idle
// period in between leaves none).
func (v *Server) rollShared() {
	if v.s.now < v.sharedSince+SharePeriod {
		return
	}
	periods := (v.s.now - v.sharedSince) / SharePeriod
	capacity := v.capacity()
	v.conserve(capacity)
	last := min(float64(v.shared+v.jobsQueued+v.loading)/capacity, maxShare)
	if periods == 1 {
		v.sharedShare = min(float64(v.shared)/capacity, maxShare)
		v.busyShare = last
	} else {
		v.sharedShare, v.busyShare = 0, 0
	}
	a := 1 - math.Exp(-float64(SharePeriod)/float64(MeanLoadWindow))
	v.meanLoad += a * (last - v.meanLoad)
	if periods > 1 {
		v.meanLoad *= math.Pow(1-a, float64(periods-1))
	}
	v.shared, v.jobsQueued, v.loading, v.ceded = 0, 0, 0, 0
	v.sharedSince += periods * SharePeriod
	v.backlogFrom = v.backlogAt(v.sharedSince)
}

// conserve ends the period [sharedSince, +SharePeriod): the background
// work charged to it (Share's and Background's) is done in the servers'
// idle time and in the time the jobs that started in it ceded to Share's
// work (a job runs slower by the share it was scaled by); what does not
// fit is added to every server's queue from the period's end. The jobs'
// time on the servers in the period is what their backlog at its start
// and the work queued in it less their backlog at its end leaves.
func (v *Server) conserve(capacity float64) {
	end := v.sharedSince + SharePeriod
	busy := float64(v.backlogFrom + v.jobsQueued - v.backlogAt(end))
	busy = min(max(busy, 0), capacity)
	background := float64(v.shared + v.loading)
	ceded := min(float64(v.ceded), busy)
	room := capacity - busy + ceded
	excess := Time(background - room)
	if excess <= 0 {
		return
	}
	v.debt += excess
	each := excess / Time(len(v.free))
	for i := range v.free {
		v.free[i] = max(v.free[i], end) + each
	}
}

// backlogAt is the servers' work queued beyond t, summed over them.
func (v *Server) backlogAt(t Time) Time {
	var b Time
	for _, f := range v.free {
		b += max(f-t, 0)
	}
	return b
}

// Slots is the number of servers.
func (v *Server) Slots() int { return len(v.free) }

// Window sets the interval over which busy time is accounted; the default
// is all time.
func (v *Server) Window(from, to Time) { v.from, v.to = from, to }

// Do queues a job of the given cost for operation op and calls done (if
// not nil) when it completes; it returns the completion time.
func (v *Server) Do(cost Time, op int, done func()) Time {
	end := v.Start(cost, op)
	if done != nil {
		v.s.At(end, done)
	}
	return end
}

// Start queues a job like Do without scheduling anything: it returns when
// the job will complete.
func (v *Server) Start(cost Time, op int) Time {
	v.rollShared()
	start := max(v.s.now, v.free[0], v.stall)
	raw := max(cost, 0)
	cost, share := v.scaled(raw, start)
	v.queue(raw, cost)
	end := start + cost
	v.free[0] = end
	v.siftDown()
	v.account(op, start, end, share)
	return end
}

// Hog runs a time slice of a long goroutine's work (cost of op; Pebble's
// flushes and compactions) on a server that is idle, and then calls done
// (if not nil). Unlike a job (Do), it does not take its place in the
// queue at once: it waits while servers are busy, and every job that
// arrives meanwhile runs before it — as Go's scheduler runs a P's local
// run queue (the goroutines the running ones readied, which inherit their
// time slice) before the global queue, where a long goroutine that gave
// up its P waits — for at most HogPatience, after which it queues as a
// job. Once started it holds its server for the whole slice. Slices
// waiting are started in the order they came, at the first instant a
// server is idle after the jobs due at that instant were queued.
//
// (Until session 35 Pebble's slices were jobs: with three nodes' jobs on
// two cores each hand-off of a chain of work waited a slice behind one
// queued before it, and a produce's acknowledgement many slices.)
func (v *Server) Hog(cost Time, op int, done func()) {
	v.hogs = append(v.hogs, hogSlice{cost: cost, op: op, done: done, since: v.s.now})
	if len(v.hogs) == 1 {
		v.startHogs()
	}
}

// startHogs starts the waiting slices on the servers idle now, and those
// out of patience as jobs; if some still wait, it looks again when the
// next server frees or the first runs out of patience.
func (v *Server) startHogs() {
	for len(v.hogs) > 0 {
		at := max(v.free[0], v.stall)
		if out := v.hogs[0].since + HogPatience; at > v.s.now && out > v.s.now {
			v.lookForHogs(min(at, out))
			return
		}
		h := v.hogs[0]
		v.hogs[0] = hogSlice{}
		v.hogs = v.hogs[1:]
		v.Do(h.cost, h.op, h.done)
	}
	v.hogLook = 0
}

// lookForHogs starts waiting slices at t, after the events due at t (the
// jobs they queue go first).
func (v *Server) lookForHogs(t Time) {
	v.hogGen++
	gen := v.hogGen
	v.hogLook = gen
	v.s.At(t, func() {
		v.s.After(0, func() {
			if v.hogLook == gen {
				v.startHogs()
			}
		})
	})
}

// queue counts a job of cost raw, scaled to cost, in the period's work
// and the time it cedes to Share's work (not what SetSpeed's slower
// machine takes from it).
func (v *Server) queue(raw, cost Time) {
	v.jobsQueued += cost
	v.ceded += max(cost-Time(math.Round(float64(raw)/v.speed)), 0)
}

// account adds a job's time on a server between start and end to op's
// busy time inside the window: the share of it the job had (what Share's
// background work took of it, share, is that work's).
func (v *Server) account(op int, start, end Time, share float64) {
	if op < 0 || op >= len(v.busy) {
		return
	}
	if lo, hi := max(start, v.from), min(end, v.to); hi > lo {
		if share == 0 {
			v.busy[op] += hi - lo
		} else {
			v.busy[op] += Time(math.Round(float64(hi-lo) * (1 - share)))
		}
	}
	v.jobs[op]++
}

// Part is one operation's share of a job (StartParts).
type Part struct {
	Cost Time
	Op   int
}

// StartParts queues one job made of parts run one after the other on the
// same server, each accounted to its own operation, and returns when the
// job will complete.
func (v *Server) StartParts(parts ...Part) Time {
	v.rollShared()
	at := max(v.s.now, v.free[0], v.stall)
	for _, p := range parts {
		raw := max(p.Cost, 0)
		c, share := v.scaled(raw, at)
		v.queue(raw, c)
		v.account(p.Op, at, at+c, share)
		at += c
	}
	v.free[0] = at
	v.siftDown()
	return at
}

// Debt is the background work (Share, Background) that the servers' idle
// time could not hold and that was queued among the jobs.
func (v *Server) Debt() Time {
	v.rollShared()
	return v.debt
}

// Backlog is how long a job arriving now would wait for a server.
func (v *Server) Backlog() Time { return max(v.free[0], v.stall, v.s.now) - v.s.now }

// Stall holds every job that has not started until t (a paused machine):
// jobs already running finish on time, queued and new ones start at t at
// the earliest.
func (v *Server) Stall(t Time) {
	v.stall = max(v.stall, t)
	for i := range v.free {
		v.free[i] = max(v.free[i], t)
	}
}

// Busy is op's busy time inside the window, summed over the servers.
func (v *Server) Busy(op int) Time { return v.busy[op] }

// Jobs is the number of op jobs queued so far.
func (v *Server) Jobs(op int) int64 { return v.jobs[op] }

// Utilisation is op's share of the servers' capacity over the window
// [from, to] (to is the window's end, or now when it is open).
func (v *Server) Utilisation(op int) float64 {
	span := min(v.to, v.s.now) - v.from
	if span <= 0 {
		return 0
	}
	return float64(v.busy[op]) / (float64(span) * float64(len(v.free)))
}

func (v *Server) siftDown() {
	h := v.free
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h[r] < h[l] {
			m = r
		}
		if h[m] >= h[i] {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// Impairment is a directed link's behaviour, after netem's fields.
type Impairment struct {
	Delay        Time
	Jitter       Time
	Distribution netem.Distribution
	// Loss is the share of packets lost (corrupted ones count: QUIC and
	// TCP drop them); a lost message is sent again after Retransmit.
	Loss float64
	// BytesPerSecond limits the rate; 0: unlimited.
	BytesPerSecond float64
	// Queue is how many packets may wait behind the rate limit before
	// tail drop (a drop is a loss); 0: unbounded.
	Queue int
}

// MaxRetransmits bounds how often one message is sent again.
const MaxRetransmits = 16

// packetSize is the payload of one packet for the bandwidth model.
const packetSize = 1200

// Link is one directed network path: messages are serialized at the rate
// limit (queueing behind each other), lost and retransmitted, delayed with
// jitter, and held while the link is blocked (a partition), then sent when
// it heals, as a transport that keeps retrying does.
type Link struct {
	s         *Scheduler
	rng       *rand.Rand
	imp       Impairment
	busyUntil Time
	blocked   bool
	held      []heldMsg
	via       *Poller // the receiver's network poller (SetPoller), or nil
	Sent      int64   // messages
	Bytes     int64
	Lost      int64 // packet losses (each retransmitted)
	busy      Time  // serialization time inside the window
	from, to  Time
}

type heldMsg struct {
	size    int
	deliver func()
}

// NewLink returns a link with its own random source seeded from seed.
func NewLink(s *Scheduler, seed uint64, imp Impairment) *Link {
	return &Link{s: s, rng: rand.New(rand.NewPCG(seed, 0x11_4e_11_4e)), imp: imp, to: math.MaxInt64}
}

// Set changes the link's impairment for messages sent from now on.
func (l *Link) Set(imp Impairment) { l.imp = imp }

// Impairment is the link's current impairment.
func (l *Link) Impairment() Impairment { return l.imp }

// Window sets the interval over which the link's busy time is accounted.
func (l *Link) Window(from, to Time) { l.from, l.to = from, to }

// Utilisation is the share of the window the rate limiter was busy (0
// without a rate limit).
func (l *Link) Utilisation() float64 {
	span := min(l.to, l.s.now) - l.from
	if span <= 0 || l.imp.BytesPerSecond == 0 {
		return 0
	}
	return float64(l.busy) / float64(span)
}

// Block holds every message sent from now on until Block(false), which
// sends the held ones in order.
func (l *Link) Block(b bool) {
	l.blocked = b
	if b {
		return
	}
	held := l.held
	l.held = nil
	for _, m := range held {
		l.Send(m.size, m.deliver)
	}
}

// Blocked reports whether the link is partitioned.
func (l *Link) Blocked() bool { return l.blocked }

// Retransmit is how long a lost message takes to be sent again: a probe
// timeout of about three one-way delays plus the peer's 25 ms acknowledgment
// delay (QUIC's max_ack_delay; TCP's minimum RTO is larger still).
func (l *Link) Retransmit() Time { return 3*l.imp.Delay + 25*Millisecond }

// SetPoller makes the link's receiver read its messages through p: a
// message that arrives is delivered when p polls (Poller.Deliver).
func (l *Link) SetPoller(p *Poller) { l.via = p }

// Send sends a message of size bytes and calls deliver when the receiver
// reads it: when it arrives, or through the link's poller (SetPoller).
func (l *Link) Send(size int, deliver func()) {
	if l.blocked {
		l.held = append(l.held, heldMsg{size, deliver})
		return
	}
	at := l.trip(size)
	if p := l.via; p != nil {
		l.s.At(at, func() { p.Deliver(deliver) })
		return
	}
	l.s.At(at, deliver)
}

// Trip sends a message of size bytes as Send does but schedules nothing:
// it returns when the message arrives. ok is false on a blocked link
// (the message is dropped, not held).
func (l *Link) Trip(size int) (at Time, ok bool) {
	if l.blocked {
		return 0, false
	}
	return l.trip(size), true
}

func (l *Link) trip(size int) Time {
	l.Sent++
	l.Bytes += int64(size)
	at := l.s.now
	for try := 0; ; try++ {
		dep, ok := l.serialize(at, size)
		lost := !ok || (l.imp.Loss > 0 && l.lossOf(size))
		if !lost || try == MaxRetransmits {
			at = dep + l.delay()
			break
		}
		l.Lost++
		at = max(dep, at) + l.Retransmit()
	}
	return at
}

// lossOf draws whether any of the message's packets is lost.
func (l *Link) lossOf(size int) bool {
	pkts := max((size+packetSize-1)/packetSize, 1)
	p := 1 - math.Pow(1-l.imp.Loss, float64(pkts))
	return l.rng.Float64() < p
}

func (l *Link) serialize(at Time, size int) (Time, bool) {
	if l.imp.BytesPerSecond <= 0 {
		return at, true
	}
	if l.imp.Queue > 0 {
		backlog := float64(l.busyUntil-at) / float64(Second) * l.imp.BytesPerSecond
		if backlog > float64(l.imp.Queue*packetSize) {
			return at, false
		}
	}
	start := max(at, l.busyUntil)
	d := Time(float64(size) / l.imp.BytesPerSecond * float64(Second))
	l.busyUntil = start + d
	if lo, hi := max(start, l.from), min(start+d, l.to); hi > lo {
		l.busy += hi - lo
	}
	return l.busyUntil, true
}

func (l *Link) delay() Time {
	if l.imp.Jitter == 0 {
		return l.imp.Delay
	}
	t := netem.JitterQuantile(l.imp.Distribution, l.rng.Float64())
	return max(l.imp.Delay+Time(t*float64(l.imp.Jitter)), 0)
}
