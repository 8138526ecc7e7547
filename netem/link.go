package netem

import (
	"container/heap"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// LinkStats counts what a link did to the traffic offered to it. For wrapped
// net.Conns the unit is a segment, not a datagram.
type LinkStats struct {
	Packets          uint64 // datagrams or segments offered (duplicates not counted)
	Bytes            uint64 // payload bytes offered
	Lost             uint64 // dropped by the loss model (streams: retransmitted)
	Duplicated       uint64 // extra copies sent
	Corrupted        uint64 // copies with a bit flipped (streams: retransmitted)
	Reordered        uint64 // copies sent without the delay
	MTUDropped       uint64 // datagrams larger than the MTU
	QueueDropped     uint64 // tail-dropped behind the rate limit
	PartitionDropped uint64 // dropped by a partition (streams: held until heal)
}

type linkStats struct {
	packets, bytes, lost, duplicated, corrupted, reordered,
	mtuDropped, queueDropped, partitionDropped atomic.Uint64
}

func (s *linkStats) snapshot() LinkStats {
	return LinkStats{
		Packets: s.packets.Load(), Bytes: s.bytes.Load(), Lost: s.lost.Load(),
		Duplicated: s.duplicated.Load(), Corrupted: s.corrupted.Load(), Reordered: s.reordered.Load(),
		MTUDropped: s.mtuDropped.Load(), QueueDropped: s.queueDropped.Load(), PartitionDropped: s.partitionDropped.Load(),
	}
}

// config is an Impairment with its derived constants.
type config struct {
	Impairment
	zero     bool
	gap      int
	queue    int
	pGoodBad float64 // Gilbert-Elliott transitions
	pBadGood float64
	corrNew  float64 // √(1-ρ²) of the delay AR(1)
	nsPerB   float64 // serialization time per payload byte
}

func newConfig(imp Impairment) *config {
	c := &config{Impairment: imp, zero: imp.IsZero(), gap: max(imp.ReorderGap, 1), queue: imp.Queue}
	if c.queue == 0 {
		c.queue = DefaultQueue
	}
	if imp.LossModel == GilbertElliott && imp.Loss > 0 {
		c.pBadGood = 1 / imp.lossBurst()
		c.pGoodBad = imp.Loss * c.pBadGood / (1 - imp.Loss)
	}
	c.corrNew = math.Sqrt(1 - imp.Correlation*imp.Correlation)
	if imp.Rate > 0 {
		c.nsPerB = 8e9 / float64(imp.Rate)
	}
	return c
}

// link is one direction between two endpoints: its impairment, its random
// streams and state, and the scheduler that delivers its delayed datagrams.
type link struct {
	n        *Network
	from, to string

	cfg     atomic.Pointer[config]
	blocked atomic.Bool // a partition separates from and to
	fast    atomic.Bool // zero impairment and not blocked: pass through
	stats   linkStats

	mu sync.Mutex // guards everything below

	// One random stream per kind of decision.
	rLoss, rDelay, rDup, rCorrupt, rReorder *rand.Rand

	lossState bool        // Gilbert-Elliott: in the bad state; Bernoulli: last lost
	delayZ    float64     // AR(1) state of the delay copula
	haveZ     bool        // delayZ is set
	reorderN  int         // packets delayed since the last reordered one
	busyUntil time.Time   // when the rate limiter finishes what it holds
	backlog   []time.Time // departures of the packets behind the rate limit
	backHead  int         // backlog[backHead:] are still ahead
	q         pktHeap     // datagrams waiting for delivery
	seq       uint64      // tie-breaker of q: FIFO at equal times
	running   bool        // the scheduler goroutine is started
	wake      chan struct{}
}

func newLink(n *Network, from, to string) *link {
	l := &link{n: n, from: from, to: to, wake: make(chan struct{}, 1)}
	stream := func(kind string) *rand.Rand {
		h := fnv.New64a()
		h.Write([]byte(from))
		h.Write([]byte{0})
		h.Write([]byte(to))
		h.Write([]byte{0})
		h.Write([]byte(kind))
		s1 := splitmix(uint64(n.opts.Seed) ^ h.Sum64())
		return rand.New(rand.NewPCG(s1, splitmix(s1)))
	}
	l.rLoss, l.rDelay, l.rDup = stream("loss"), stream("delay"), stream("duplicate")
	l.rCorrupt, l.rReorder = stream("corrupt"), stream("reorder")
	l.cfg.Store(newConfig(Impairment{}))
	l.fast.Store(true)
	return l
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (l *link) name() string { return l.from + "→" + l.to }

func (l *link) set(imp Impairment) {
	c := newConfig(imp)
	l.mu.Lock()
	if old := l.cfg.Load(); old.LossModel != imp.LossModel || old.Correlation != imp.Correlation {
		l.lossState = false
	}
	l.cfg.Store(c)
	l.mu.Unlock()
	l.updateFast()
}

func (l *link) setBlocked(b bool) {
	l.blocked.Store(b)
	l.updateFast()
}

func (l *link) updateFast() {
	// Called with n.mu held (SetLink, partitions), so the two loads and the
	// store do not interleave with another update.
	l.fast.Store(l.cfg.Load().zero && !l.blocked.Load())
}

// lossEvent draws one loss decision. l.mu is held.
func (l *link) lossEvent(c *config) bool {
	if c.Loss == 0 {
		return false
	}
	if c.LossModel == GilbertElliott {
		if l.lossState {
			if l.rLoss.Float64() < c.pBadGood {
				l.lossState = false
			}
		} else if l.rLoss.Float64() < c.pGoodBad {
			l.lossState = true
		}
		return l.lossState
	}
	p := c.Loss
	if c.Correlation > 0 {
		p *= 1 - c.Correlation
		if l.lossState {
			p += c.Correlation
		}
	}
	lost := l.rLoss.Float64() < p
	l.lossState = lost
	return lost
}

// sampleDelay draws one delay. l.mu is held.
func (l *link) sampleDelay(c *config) time.Duration {
	if c.Jitter == 0 {
		return c.Delay
	}
	var u float64
	if c.Correlation > 0 {
		e := l.rDelay.NormFloat64()
		if l.haveZ {
			l.delayZ = c.Correlation*l.delayZ + c.corrNew*e
		} else {
			l.delayZ, l.haveZ = e, true
		}
		u = 0.5 * math.Erfc(-l.delayZ/math.Sqrt2)
	} else {
		u = l.rDelay.Float64()
	}
	d := c.Delay + time.Duration(quantile(c.Distribution, u)*float64(c.Jitter))
	return max(d, 0)
}

// serialize returns when a payload of size bytes offered at now leaves the
// rate limiter, or ok=false when the queue is full (limit ≤ 0: no limit).
// l.mu is held.
func (l *link) serialize(c *config, now time.Time, size, limit int) (time.Time, bool) {
	if c.Rate == 0 {
		return now, true
	}
	// backlog[backHead:] are the departures still ahead: the queue.
	for l.backHead < len(l.backlog) && !l.backlog[l.backHead].After(now) {
		l.backHead++
	}
	if l.backHead == len(l.backlog) {
		l.backlog, l.backHead = l.backlog[:0], 0
	} else if l.backHead > 64 && l.backHead > len(l.backlog)/2 {
		l.backlog = append(l.backlog[:0], l.backlog[l.backHead:]...)
		l.backHead = 0
	}
	if limit > 0 && len(l.backlog)-l.backHead >= limit {
		return time.Time{}, false
	}
	start := now
	if l.busyUntil.After(now) {
		start = l.busyUntil
	}
	dep := start.Add(time.Duration(float64(size) * c.nsPerB))
	l.busyUntil = dep
	if limit > 0 {
		l.backlog = append(l.backlog, dep)
	}
	return dep, true
}

// copyPlan is what happens to one copy of a datagram.
type copyPlan struct {
	at  time.Time // delivery time; ≤ now means at once
	bit int       // bit to flip, or -1
}

// decidePacket applies the impairment to a datagram of size bytes sent at
// now to addr, filling plans with the copies to deliver (0, 1 or 2).
func (l *link) decidePacket(now time.Time, size int, addr net.Addr, plans *[2]copyPlan) int {
	c := l.cfg.Load()
	l.stats.packets.Add(1)
	l.stats.bytes.Add(uint64(size))
	if l.blocked.Load() {
		l.stats.partitionDropped.Add(1)
		return 0
	}
	if c.MTU > 0 && size+udpOverhead(addr) > c.MTU {
		l.stats.mtuDropped.Add(1)
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// As tc netem: one duplication and one loss decision; a duplicated
	// packet is sent once if lost, and its copy goes through the link again.
	dup := c.Duplicate > 0 && l.rDup.Float64() < c.Duplicate
	lost := l.lossEvent(c)
	copies := 1
	switch {
	case dup && !lost:
		copies = 2
		l.stats.duplicated.Add(1)
	case lost && !dup:
		l.stats.lost.Add(1)
		return 0
	}
	n := 0
	if l.planCopy(c, now, size, &plans[n]) {
		n++
	}
	if copies == 2 {
		if l.lossEvent(c) {
			l.stats.lost.Add(1)
		} else if l.planCopy(c, now, size, &plans[n]) {
			n++
		}
	}
	return n
}

// planCopy decides corruption, delay, reordering and rate for one copy.
// l.mu is held.
func (l *link) planCopy(c *config, now time.Time, size int, p *copyPlan) bool {
	p.bit = -1
	if c.Corrupt > 0 && size > 0 && l.rCorrupt.Float64() < c.Corrupt {
		p.bit = l.rCorrupt.IntN(size * 8)
		l.stats.corrupted.Add(1)
	}
	delay := l.sampleDelay(c)
	if c.Reorder > 0 {
		if l.reorderN >= c.gap-1 && l.rReorder.Float64() < c.Reorder {
			l.reorderN = 0
			delay = 0
			l.stats.reordered.Add(1)
		} else {
			l.reorderN++
		}
	}
	dep, ok := l.serialize(c, now, size, c.queue)
	if !ok {
		l.stats.queueDropped.Add(1)
		return false
	}
	p.at = dep.Add(delay)
	return true
}

// decideSegment applies the impairment to a stream segment of size bytes
// written at now. It returns its arrival time, or stalled=true when a
// partition holds it.
func (l *link) decideSegment(now time.Time, size int) (at time.Time, stalled bool) {
	c := l.cfg.Load()
	l.stats.packets.Add(1)
	l.stats.bytes.Add(uint64(size))
	if l.blocked.Load() {
		l.stats.partitionDropped.Add(1)
		return now, true
	}
	if c.zero {
		return now, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var extra time.Duration
	if l.lossEvent(c) {
		l.stats.lost.Add(1)
		extra = l.n.opts.retransmit()
	} else if c.Corrupt > 0 && l.rCorrupt.Float64() < c.Corrupt {
		l.stats.corrupted.Add(1)
		extra = l.n.opts.retransmit()
	}
	delay := l.sampleDelay(c)
	dep, _ := l.serialize(c, now, size, 0)
	return dep.Add(delay + extra), false
}

func udpOverhead(addr net.Addr) int {
	if ua, ok := addr.(*net.UDPAddr); ok && ua.IP.To4() == nil && len(ua.IP) > 0 {
		return 48
	}
	return 28
}

// segmentSize is the stream segment size under c.
func segmentSize(c *config) int {
	if c.MTU > 0 {
		return max(c.MTU-40, 1)
	}
	return 1460
}

// A pkt is a datagram copy waiting in a link's scheduler.
type pkt struct {
	at   time.Time
	seq  uint64
	conn *packetConn
	addr net.Addr
	buf  *[]byte
}

type pktHeap []*pkt

func (h pktHeap) Len() int { return len(h) }
func (h pktHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h pktHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pktHeap) Push(x any)   { *h = append(*h, x.(*pkt)) }
func (h *pktHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

var pktPool = sync.Pool{New: func() any { return new(pkt) }}

// Buffers for delayed datagrams: one pool for the usual sizes, exact
// allocations above.
const smallBuf = 2048

var bufPool = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}

func getBuf(n int) *[]byte {
	if n > smallBuf {
		b := make([]byte, n)
		return &b
	}
	b := bufPool.Get().(*[]byte)
	*b = (*b)[:n]
	return b
}

func putBuf(b *[]byte) {
	if cap(*b) == smallBuf {
		bufPool.Put(b)
	}
}

// schedule queues a datagram copy for delivery at at. It reports false when
// the Network is closed.
func (l *link) schedule(at time.Time, conn *packetConn, addr net.Addr, buf *[]byte) bool {
	select {
	case <-l.n.done:
		return false
	default:
	}
	p := pktPool.Get().(*pkt)
	*p = pkt{at: at, conn: conn, addr: addr, buf: buf}
	l.mu.Lock()
	if !l.running {
		if !l.n.startLink(l) {
			l.mu.Unlock()
			pktPool.Put(p)
			return false
		}
		l.running = true
	}
	l.seq++
	p.seq = l.seq
	heap.Push(&l.q, p)
	first := l.q[0] == p
	l.mu.Unlock()
	if first {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return true
}

// run delivers the link's delayed datagrams at their times until done.
func (l *link) run(done <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	var due []*pkt
	for {
		l.mu.Lock()
		now := time.Now()
		for len(l.q) > 0 && !l.q[0].at.After(now) {
			due = append(due, heap.Pop(&l.q).(*pkt))
		}
		wait := time.Duration(-1)
		if len(due) == 0 && len(l.q) > 0 {
			wait = l.q[0].at.Sub(now)
		}
		l.mu.Unlock()
		if len(due) > 0 {
			for i, p := range due {
				l.deliver(p)
				due[i] = nil
			}
			due = due[:0]
			continue
		}
		if wait >= 0 {
			t.Reset(wait)
		}
		select {
		case <-done:
			t.Stop()
			l.mu.Lock()
			for _, p := range l.q {
				putBuf(p.buf)
			}
			l.q = nil
			l.mu.Unlock()
			return
		case <-l.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

func (l *link) deliver(p *pkt) {
	if l.blocked.Load() {
		l.stats.partitionDropped.Add(1)
	} else {
		// A closed conn fails the write; the datagram is gone, as on a wire
		// whose sender went away.
		_, _ = p.conn.PacketConn.WriteTo(*p.buf, p.addr)
	}
	putBuf(p.buf)
	*p = pkt{}
	pktPool.Put(p)
}
