package p2p

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rustorium/rustorium/internal/cpuclock/cpuclocktest"
)

// BenchmarkSubmitCPU submits from 1 and from 32 goroutines at once up to
// each submit's accepted receipt (or its committed one), against an
// ingress that acknowledges and commits at once, and reports the
// process's CPU a submit (getrusage: client and server, both in this
// process) beside the time. The stream workers
// (serveConn's internal/workers.Pool) show here: a fresh goroutine a
// stream grew its stack for the read and the signature check every time.
//
// The receipt=committed cases read each stream to its end (accepted, then
// committed), as the load generator does: the server's stream credit
// (credits) shows there, a MAX_STREAMS frame in a packet of its own per
// stream before session 48.
func BenchmarkSubmitCPU(b *testing.B) {
	for _, c := range []struct {
		callers   int
		committed bool
	}{{1, false}, {32, false}, {1, true}, {32, true}} {
		name := fmt.Sprintf("callers=%d", c.callers)
		if c.committed {
			name += "/receipt=committed"
		}
		b.Run(name, func(b *testing.B) {
			s := startServer(b, &fakeLog{})
			cl := dial(b, s, ClientConfig{})
			raw := put(7, "bench")
			ctx := context.Background()
			var (
				next atomic.Int64
				wg   sync.WaitGroup
			)
			c0 := cpuclocktest.Process(b)
			b.ResetTimer()
			for range c.callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						call, err := cl.Submit(ctx, raw)
						if err == nil {
							_, err = call.Accepted()
						}
						if err == nil && c.committed {
							_, err = call.Committed()
						}
						if err != nil {
							b.Error(err)
							return
						}
						call.Abort()
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64((cpuclocktest.Process(b)-c0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
		})
	}
}
