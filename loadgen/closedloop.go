package loadgen

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rustorium/rustorium/internal/retry"
)

// ClosedLoop runs Clients workers, each sending its next transaction when the
// previous one completed (plus Think). Every send's intended time is its
// actual time: a closed loop has no schedule, and slows down with the system
// under test, so its latencies hide stalls (coordinated omission). To show
// what they hide, the loop measures the workers' median cycle time during
// the first Calibrate of the run (the median, not the mean: a cold start's
// first slow sends — leader election, topic creation — must not set the
// pace); Expected returns it, and a recorder can then
// apply HdrHistogram's expected-interval correction (a send that took k
// cycles too long stands for the k sends a steady client would have made
// meanwhile).
type ClosedLoop struct {
	Clients int
	// Think is the pause between a completion and the worker's next send.
	Think time.Duration
	// Calibrate is how long the loop measures the mean cycle. Zero means
	// never: Expected stays 0.
	Calibrate time.Duration
	// Limit stops after this many sends in all. Zero means no limit.
	Limit uint64
	// First is the index of the first send.
	First uint64

	expected atomic.Int64 // nanoseconds; 0 until calibrated
}

// Calibration keeps at most maxCalibrationCycles cycles, and goes on past
// Calibrate until it has minCalibrationCycles: a cold start can make the
// first cycles outlast Calibrate, and a median of those is no pace.
const (
	maxCalibrationCycles = 1 << 16
	minCalibrationCycles = 20
)

// Expected is the median time between two sends of one worker measured
// during calibration (at least Calibrate and minCalibrationCycles cycles),
// or 0 before calibration ended.
func (c *ClosedLoop) Expected() time.Duration { return time.Duration(c.expected.Load()) }

// Run sends from start until start+duration (no send starts later), Limit is
// reached or ctx is done, and returns when every worker has finished.
func (c *ClosedLoop) Run(ctx context.Context, start time.Time, duration time.Duration, send SendFunc) Stats {
	end := start.Add(duration)
	var (
		next, started atomic.Uint64
		wg            sync.WaitGroup
		mu            sync.Mutex
		cycles        []time.Duration // during calibration, at most maxCalibrationCycles
	)
	if retry.Sleep(ctx, time.Until(start)) != nil {
		return Stats{}
	}
	for range c.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t := time.Now()
				if !t.Before(end) {
					return
				}
				i := next.Add(1) - 1
				if c.Limit > 0 && i >= c.Limit {
					return
				}
				started.Add(1)
				send(ctx, c.First+i, t)
				if c.Think > 0 && retry.Sleep(ctx, c.Think) != nil {
					return
				}
				if c.Calibrate > 0 && c.expected.Load() == 0 {
					done := time.Now()
					mu.Lock()
					if c.expected.Load() == 0 {
						if len(cycles) < maxCalibrationCycles {
							cycles = append(cycles, done.Sub(t))
						}
						if done.Sub(start) >= c.Calibrate && len(cycles) >= minCalibrationCycles {
							slices.Sort(cycles)
							c.expected.Store(max(1, int64(cycles[len(cycles)/2])))
							cycles = nil
						}
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return Stats{Started: started.Load()}
}
