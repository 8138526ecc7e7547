package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/internal/wakeup"
	"github.com/rustorium/rustorium/internal/workers"
)

// SendFunc performs send i, whose intended time was intended. It runs on a
// goroutine of its own while it lasts (an open loop's worker, which may run
// a later send after it returns) and must return when ctx is done.
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
	// Sleep waits d, or until ctx is done (returning its error), between
	// sends. Nil uses a precise timer (internal/wakeup: a timerfd on
	// Linux), not a time.Timer: an idle Go process wakes for one only on
	// the millisecond, which would put up to 1 ms of the generator's own
	// lateness into every latency at low rates. Tests in a testing/synctest
	// bubble pass a Go timer's sleep (retry.Sleep): a timerfd keeps real
	// time, not the bubble's.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Stats summarises an open-loop run.
type Stats struct {
	Started uint64 // sends handed to SendFunc
	Dropped uint64 // sends that could not go out (MaxInFlight reached)
}

// Run sends from start until duration has elapsed (sends intended before
// start+duration), Limit is reached or ctx is done, then waits for the
// outstanding sends to finish. The returned Stats are final.
func (o *OpenLoop) Run(ctx context.Context, start time.Time, duration time.Duration, sendFn SendFunc) Stats {
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
	sends := workers.New(idleSenders, &wg, func(s sendTask) {
		sendFn(ctx, s.i, s.intended)
		inflight.Add(-1)
	})
	sleep := o.Sleep
	if sleep == nil {
		timer := wakeup.New()
		defer timer.Close()
		sleep = timer.Sleep
	}
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
			if err := sleep(ctx, wait); err != nil {
				if ctx.Err() != nil {
					break
				}
				// The sleep itself failed (a timerfd's system call):
				// the rest of the run keeps its schedule on a Go timer.
				sleep = retry.Sleep
				continue
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
			st.Started++
			sends.Go(sendTask{i, intended})
		}
	}
	sends.Close()
	wg.Wait()
	return st
}

// sendTask is one send's index and intended time, as a worker takes it.
type sendTask struct {
	i        uint64
	intended time.Time
}

// idleSenders is how many goroutines an open loop keeps waiting for the
// next send (internal/workers). A send runs on a goroutine that outlives
// it rather than a fresh one, which grew its stack in quic-go's read every
// time (runtime.newstack: 2.9% of BenchmarkOpenLoopCPU's CPU in perf
// before, 0.02% since). 128 covers make run's sends in flight (about
// three at 1000/s) many times over and costs at most a few MiB of stacks.
const idleSenders = 128
