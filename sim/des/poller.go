package des

// Poller is a Go process's network poller as its scheduler runs it: a P
// looks for network events only when it finds no goroutine to run (its
// own run queue and the global one empty), and otherwise the runtime's
// monitor (sysmon) polls when nothing polled for PollPeriod. While long
// runnable goroutines — Pebble's flushes and compactions, preempted every
// time slice and put back on the global queue — are at least as many as
// the process's Ps, no P ever runs out of work: a message that arrived
// waits for the monitor's next poll, and then queues behind them (the
// caller's Server does that part). Fewer, and an idle P sits in the poller
// and takes it at once.
//
// More long goroutines than Ps, and one waits in the global run queue
// when the monitor puts what it polled behind it: the next P to look there
// takes both (the runtime moves a batch to its own queue) and runs the
// long goroutine first, until it gives the P up (Slice).
//
// Hold and Release count the long goroutines; Deliver hands a message's
// arrival over. Without long goroutines it costs one comparison.
type Poller struct {
	// Slice is how long a long goroutine holds a P before it gives it up:
	// at most the time slice the runtime preempts it after (Go's 10 ms)
	// when it only computes, less when it waits on locks (Pebble's jobs,
	// 2.6 ms on average: the simulator's pebbleStreak); 0: what the
	// monitor polled runs next.
	Slice Time

	s     *Scheduler
	procs int
	long  int
	// since is when the Ps last polled: when they last had a P to spare,
	// or the monitor's last poll.
	since   Time
	waiting []func()
	tick    uint64 // the scheduled poll's generation; 0: none
	gen     uint64
}

// PollPeriod is how long the Go runtime's monitor lets the network go
// unpolled (runtime.sysmon: "poll network if not polled for more than
// 10ms").
const PollPeriod = 10 * Millisecond

// NewPoller returns the poller of a process with procs Ps (GOMAXPROCS, at
// least 1).
func NewPoller(s *Scheduler, procs int) *Poller {
	return &Poller{s: s, procs: max(procs, 1)}
}

// Held reports whether the long goroutines hold every P.
func (p *Poller) Held() bool { return p.long >= p.procs }

// Hold counts a long goroutine that became runnable.
func (p *Poller) Hold() {
	if p.long++; p.long == p.procs {
		p.since = p.s.now // the Ps had one to spare until now
	}
}

// Release counts a long goroutine that ended: when the rest no longer
// hold every P, a P runs out of work and polls, and what waited arrives.
func (p *Poller) Release() {
	if p.long == 0 {
		return
	}
	if p.long--; p.long == p.procs-1 {
		p.poll()
	}
}

// Deliver calls arrive when the process reads the message that arrived
// now: at once unless the long goroutines hold every P, else at the next
// poll.
func (p *Poller) Deliver(arrive func()) {
	if !p.Held() {
		arrive()
		return
	}
	p.waiting = append(p.waiting, arrive)
	if p.tick != 0 {
		return
	}
	next := p.since + PollPeriod
	for next <= p.s.now {
		next += PollPeriod
	}
	p.gen++
	gen := p.gen
	p.tick = gen
	p.s.At(next, func() {
		if p.tick != gen {
			return
		}
		p.since = p.s.now
		if p.long > p.procs && p.Slice > 0 {
			// behind a long goroutine's slice: deliver then
			p.s.After(p.Slice, func() {
				if p.tick == gen {
					p.poll()
				}
			})
			return
		}
		p.poll()
	})
}

// poll delivers what waited, in arrival order.
func (p *Poller) poll() {
	p.tick = 0
	waiting := p.waiting
	p.waiting = nil
	for _, f := range waiting {
		f()
	}
}
