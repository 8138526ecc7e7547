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

	mu      sync.Mutex
	samples []hopSample

	cancel context.CancelFunc
	wg     sync.WaitGroup
	conns  [2]*net.UDPConn
	err    error
}

// ErrProbe reports a hop probe that could not start or measured nothing.
var ErrProbe = errors.New("calib: hop probe")

// hopSample is one datagram's delay and when it arrived.
type hopSample struct {
	at time.Time
	d  time.Duration
}

// Start opens the probe's two loopback sockets and starts its sender and
// reader; they run until Stop.
func (h *HopProbe) Start(ctx context.Context, seed uint64) error {
	if h.Interval <= 0 {
		h.Interval = time.Millisecond
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
			h.samples = append(h.samples, hopSample{now, d})
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
				h.mu.Lock()
				h.err = err
				h.mu.Unlock()
				return
			}
			t.Reset(h.Interval/2 + time.Duration(r.Int64N(int64(h.Interval)+1)))
		}
	}()
	return nil
}

// Stop ends the probe and returns the delays of the datagrams that
// arrived in [from, to), sorted. Safe to call more than once (later
// calls return nothing).
func (h *HopProbe) Stop(from, to time.Time) ([]time.Duration, error) {
	if h.cancel == nil {
		return nil, nil
	}
	h.cancel()
	h.cancel = nil
	for _, c := range h.conns {
		c.Close()
	}
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return nil, fmt.Errorf("%w: sending: %w", ErrProbe, h.err)
	}
	var d []time.Duration
	for _, s := range h.samples {
		if !s.at.Before(from) && s.at.Before(to) {
			d = append(d, s.d)
		}
	}
	h.samples = nil
	if len(d) == 0 {
		return nil, fmt.Errorf("%w: no datagram arrived between %v and %v", ErrProbe, from.Format(time.StampMicro), to.Format(time.StampMicro))
	}
	slices.Sort(d)
	return d, nil
}

// DelayPoint is the percentiles of sorted delays at a host busy share.
func DelayPoint(busy float64, sorted []time.Duration) LagPoint {
	at := func(q float64) float64 {
		if len(sorted) == 0 {
			return 0
		}
		i := min(int(q*float64(len(sorted))), len(sorted)-1)
		return float64(sorted[i])
	}
	return LagPoint{HostBusy: busy, P50Ns: at(0.5), P90Ns: at(0.9), P99Ns: at(0.99), P999Ns: at(0.999)}
}
