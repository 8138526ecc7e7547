package bench

import (
	"context"
	"fmt"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/reports"
)

const (
	// loadedFloorEvery is the gap between the loaded floors' round trips,
	// echo and produce→ack alternating: each every 50 ms, 300 of each in
	// a measured phase of 15 s, for some 3 ms of CPU a second.
	loadedFloorEvery = 25 * time.Millisecond
	// loadedFloorTimeout bounds one loaded round trip: a node or broker
	// the timeline killed fails it rather than stalling the probe.
	loadedFloorTimeout = time.Second
)

// floorProbe times the floors' round trips (FloorPaths) while the measured
// phase's load runs: the loaded floors, which say what a bare hop of the
// accepted path costs on the machine as busy as the run made it — the
// floors before the load time it on an idle one.
type floorProbe struct {
	cancel    context.CancelFunc
	done      chan struct{}
	echo, ack *hdr.Histogram // the probe goroutine's until done
	failed    int
	err       error // the first failure
}

// startFloorProbe opens a producer on paths.Log (before the load, so its
// start costs the measured phase nothing) and times the round trips from
// from until stop.
func startFloorProbe(ctx context.Context, paths FloorPaths, payloadSize int, from time.Time) (*floorProbe, error) {
	prod, err := ordering.Open(ctx, paths.Log)
	if err != nil {
		return nil, fmt.Errorf("loaded floors: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &floorProbe{cancel: cancel, done: make(chan struct{}), echo: reports.NewHistogram(), ack: reports.NewHistogram()}
	payload := make([]byte, payloadSize)
	trips := [2]struct {
		h  *hdr.Histogram
		rt func(context.Context) error
	}{
		{p.echo, func(ctx context.Context) error { return paths.Echo(ctx, payload) }},
		{p.ack, func(ctx context.Context) error { _, err := prod.Append(ctx, 0, nil, payload); return err }},
	}
	go func() {
		defer close(p.done)
		defer prod.Close()
		t := time.NewTimer(time.Until(from))
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			t.Reset(loadedFloorEvery)
			trip := trips[i%2]
			rctx, rcancel := context.WithTimeout(ctx, loadedFloorTimeout)
			t0 := time.Now()
			err := trip.rt(rctx)
			d := time.Since(t0)
			rcancel()
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				p.failed++
				if p.err == nil {
					p.err = err
				}
			default:
				_ = trip.h.RecordValue(d.Microseconds())
			}
		}
	}()
	return p, nil
}

// stop ends the probe and puts what it timed into f: each loaded floor
// with at least floorMinSamples round trips. It returns a note when one
// has fewer. Safe on a nil probe.
func (p *floorProbe) stop(f *reports.Floors) (note string) {
	if p == nil {
		return ""
	}
	p.cancel()
	<-p.done
	if p.echo.TotalCount() >= floorMinSamples {
		f.QuicEchoLoaded = ptr(reports.PercentilesOf(p.echo))
	}
	if p.ack.TotalCount() >= floorMinSamples {
		f.ProduceAckLoaded = ptr(reports.PercentilesOf(p.ack))
	}
	if f.QuicEchoLoaded == nil || f.ProduceAckLoaded == nil {
		note = fmt.Sprintf("loaded floors: %d echoes and %d produce→acks timed under the load, fewer than %d of one", p.echo.TotalCount(), p.ack.TotalCount(), floorMinSamples)
		if p.failed > 0 {
			note += fmt.Sprintf("; %d failed (first: %v)", p.failed, p.err)
		}
	}
	return note
}
