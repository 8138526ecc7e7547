package calib

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/rustorium/rustorium/reports"
)

// HopProbe measures how long a network hand-off takes in this process
// while it does other work: a UDP datagram over loopback from one
// goroutine to another that waits for it in Go's netpoller, every
// Interval or so, its delay from the send to the reader's return. That is
// the hop of every QUIC packet a node or a client reads: on an idle
// machine a few microseconds, under load as long as the reader waits for
// a P (a P held in fdatasync, a long stretch between preemption points,
// a GC cycle). calibrate runs one beside each end-to-end run and keeps
// the delays of its measured phase (ops.hop_delay).
type HopProbe struct {
	// Interval is the mean time between datagrams (each drawn uniformly
	// from half to one and a half of it, so the probe does not beat with
	// the load's own period). 0 means 1 ms.
	Interval time.Duration
	// MaxSamples bounds the datagrams kept (later ones are dropped: a probe
	// left running keeps at most this many, 32 bytes each). 0 means
	// DefaultMaxHopSamples.
	MaxSamples int

	mu      sync.Mutex
	samples []HopSample

	cancel context.CancelFunc
	wg     sync.WaitGroup
	conns  [2]*net.UDPConn
	err    error
}

// DefaultMaxHopSamples is HopProbe.MaxSamples' default: about 17 minutes
// at one datagram a millisecond, 32 MiB.
const DefaultMaxHopSamples = 1 << 20

// ErrProbe reports a hop probe that could not start or measured nothing.
var ErrProbe = errors.New("calib: hop probe")

// HopSample is one datagram's delay and when it arrived.
type HopSample struct {
	At    time.Time
	Delay time.Duration
}

// Start opens the probe's two loopback sockets and starts its sender and
// reader; they run until Stop or until ctx ends.
func (h *HopProbe) Start(ctx context.Context, seed uint64) error {
	if h.Interval <= 0 {
		h.Interval = time.Millisecond
	}
	if h.MaxSamples <= 0 {
		h.MaxSamples = DefaultMaxHopSamples
	}
	lo := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
	for i := range h.conns {
		c, err := net.ListenUDP("udp", lo)
		if err != nil {
			for _, c := range h.conns[:i] {
				c.Close()
			}
			return fmt.Errorf("%w: %w", ErrProbe, err)
		}
		h.conns[i] = c
	}
	ctx, h.cancel = context.WithCancel(ctx)
	// The reader blocks in Read: closing the sockets ends it, at Stop or
	// when ctx ends first (a signal, a failed caller that never stops it).
	context.AfterFunc(ctx, func() {
		for _, c := range h.conns {
			c.Close()
		}
	})
	epoch := time.Now()
	h.wg.Add(2)
	go func() { // the reader: its delays
		defer h.wg.Done()
		buf := make([]byte, 64)
		for {
			n, err := h.conns[1].Read(buf)
			if err != nil {
				return // closed by Stop
			}
			if n < 8 {
				continue
			}
			now := time.Now()
			d := now.Sub(epoch) - time.Duration(binary.BigEndian.Uint64(buf))
			h.mu.Lock()
			if len(h.samples) < h.MaxSamples {
				h.samples = append(h.samples, HopSample{now, d})
			}
			h.mu.Unlock()
		}
	}()
	go func() { // the sender
		defer h.wg.Done()
		r := rand.New(rand.NewPCG(seed, 0x686f70)) // "hop"
		to := h.conns[1].LocalAddr().(*net.UDPAddr)
		t := time.NewTimer(0)
		defer t.Stop()
		var msg [8]byte
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			binary.BigEndian.PutUint64(msg[:], uint64(time.Since(epoch)))
			if _, err := h.conns[0].WriteToUDP(msg[:], to); err != nil {
				if ctx.Err() == nil { // not Stop closing the socket
					h.mu.Lock()
					h.err = err
					h.mu.Unlock()
				}
				return
			}
			t.Reset(h.Interval/2 + time.Duration(r.Int64N(int64(h.Interval)+1)))
		}
	}()
	return nil
}

// Stop ends the probe and returns the datagrams that arrived in
// [from, to), in arrival order. Safe to call more than once (later calls
// return nothing).
func (h *HopProbe) Stop(from, to time.Time) ([]HopSample, error) {
	if h.cancel == nil {
		return nil, nil
	}
	h.cancel() // closes the sockets
	h.cancel = nil
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return nil, fmt.Errorf("%w: sending: %w", ErrProbe, h.err)
	}
	var out []HopSample
	for _, s := range h.samples {
		if !s.At.Before(from) && s.At.Before(to) {
			out = append(out, s)
		}
	}
	h.samples = nil
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no datagram arrived between %v and %v", ErrProbe, from.Format(time.StampMicro), to.Format(time.StampMicro))
	}
	return out, nil
}

// DelayWindow is the length of the windows DelayPoint takes percentiles
// over.
const DelayWindow = 10 * time.Second

// DelayPoint is the percentiles of the samples' delays at a host busy
// share: each percentile over every DelayWindow of the samples (from the
// first one's arrival; a last window shorter than half of one joins the
// one before), and their median across the windows (the 1000/s run of
// calibrate has three). A tail is the few longest delays, and one window
// of a run can hold most of them (another tenant's burst on a shared
// host): the hop delay's p99 at 1000/s was 3.0 ms in one calibration and
// 7.1 in the next, 20 minutes later (session 26). The windows' median does
// not follow one bad window, as the median of make validate-sim's three
// real runs does not follow one bad run.
func DelayPoint(busy float64, samples []HopSample) LagPoint {
	if len(samples) == 0 {
		return LagPoint{HostBusy: busy}
	}
	var windows [][]time.Duration
	start := samples[0].At
	for _, s := range samples {
		i := int(s.At.Sub(start) / DelayWindow)
		for len(windows) <= i {
			windows = append(windows, nil)
		}
		windows[i] = append(windows[i], s.Delay)
	}
	if n := len(windows); n > 1 && samples[len(samples)-1].At.Sub(start) < time.Duration(n-1)*DelayWindow+DelayWindow/2 {
		windows[n-2] = append(windows[n-2], windows[n-1]...)
		windows = windows[:n-1]
	}
	windows = slices.DeleteFunc(windows, func(w []time.Duration) bool { return len(w) == 0 })
	qs := [4]float64{0.5, 0.9, 0.99, 0.999}
	per := make([][]float64, len(qs))
	for _, w := range windows {
		slices.Sort(w)
		for j, q := range qs {
			per[j] = append(per[j], float64(w[min(int(q*float64(len(w))), len(w)-1)]))
		}
	}
	med := reports.Median
	return LagPoint{HostBusy: busy, P50Ns: med(per[0]), P90Ns: med(per[1]), P99Ns: med(per[2]), P999Ns: med(per[3])}
}
