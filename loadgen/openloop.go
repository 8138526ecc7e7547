package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// SendFunc performs send i, whose intended time was intended. It runs on its
// own goroutine and must return when ctx is done.
type SendFunc func(ctx context.Context, i uint64, intended time.Time)

// OpenLoop runs sends on a Pacer's schedule. A send never waits for an
// earlier one: when MaxInFlight sends are outstanding, a due send is counted
// as dropped instead of delaying the schedule.
type OpenLoop struct {
	Pacer Pacer
	// Limit stops after this many sends (sent or dropped). Zero means no
	// limit.
	Limit uint64
	// First is the index of the first send; indexes run First, First+1, …
	// The schedule is still the Pacer's from 0: send First+k is due at
	// Pacer.At(k).
	First uint64
	// MaxInFlight bounds outstanding sends. Zero means 20000.
	MaxInFlight int
	// OnDrop is called for each send that could not go out. Nil ignores.
	OnDrop func(i uint64, intended time.Time)
}

// Stats summarises an open-loop run.
type Stats struct {
	Started uint64 // sends handed to SendFunc
	Dropped uint64 // sends that could not go out (MaxInFlight reached)
}

// Run sends from start until duration has elapsed (sends intended before
// start+duration), Limit is reached or ctx is done, then waits for the
// outstanding sends to finish. The returned Stats are final.
func (o *OpenLoop) Run(ctx context.Context, start time.Time, duration time.Duration, send SendFunc) Stats {
	maxIn := o.MaxInFlight
	if maxIn <= 0 {
		maxIn = 20000
	}
	var (
		st       Stats
		inflight atomic.Int64
		wg       sync.WaitGroup
		next     uint64 // sends scheduled so far (relative)
	)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if o.Limit > 0 && next >= o.Limit {
			break
		}
		at := o.Pacer.At(next)
		if at >= duration {
			break
		}
		intended := start.Add(at)
		if wait := time.Until(intended); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				wg.Wait()
				return st
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			break
		}
		// Send everything that is due now, in order.
		due := o.Pacer.Due(time.Since(start))
		for ; next < due; next++ {
			if o.Limit > 0 && next >= o.Limit {
				break
			}
			at := o.Pacer.At(next)
			if at >= duration {
				break
			}
			i, intended := o.First+next, start.Add(at)
			if inflight.Load() >= int64(maxIn) {
				st.Dropped++
				if o.OnDrop != nil {
					o.OnDrop(i, intended)
				}
				continue
			}
			inflight.Add(1)
			wg.Add(1)
			st.Started++
			go func() {
				defer wg.Done()
				defer inflight.Add(-1)
				send(ctx, i, intended)
			}()
		}
	}
	wg.Wait()
	return st
}
