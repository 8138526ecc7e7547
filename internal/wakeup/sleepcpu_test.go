package wakeup

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rustorium/rustorium/internal/cpuclock/cpuclocktest"
)

// BenchmarkSleepCPU sleeps a pacer's waits in an otherwise idle process —
// sends every 1 ms, 0.5 ms and 0.2 ms, each wait up to the next send's due
// time — on the timerfd and on the Go timer, and reports the process's CPU
// a sleep (getrusage) and how late the sleeps ended. MinPrecise weighs the
// two.
func BenchmarkSleepCPU(b *testing.B) {
	for _, gap := range []time.Duration{time.Millisecond, 500 * time.Microsecond, 200 * time.Microsecond} {
		for _, name := range []string{"timerfd", "go"} {
			b.Run(fmt.Sprintf("gap=%v/%s", gap, name), func(b *testing.B) {
				tm := New()
				defer tm.Close()
				sl := tm.g
				if name == "timerfd" {
					if tm.fd == nil {
						b.Skip("no timerfd here")
					}
					sl = tm.fd
				}
				late := make([]time.Duration, 0, b.N)
				c0, start, i := cpuclocktest.Process(b), time.Now(), 0
				for b.Loop() {
					i++
					due := start.Add(time.Duration(i) * gap)
					if d := time.Until(due); d > 0 {
						if err := sl.sleep(context.Background(), d); err != nil {
							b.Fatal(err)
						}
					}
					late = append(late, time.Since(due))
				}
				b.ReportMetric(float64((cpuclocktest.Process(b)-c0).Nanoseconds())/1e3/float64(i), "cpu-µs/sleep")
				slices.Sort(late)
				b.ReportMetric(float64(late[len(late)/2].Microseconds()), "late-p50-µs")
				b.ReportMetric(float64(late[len(late)*99/100].Microseconds()), "late-p99-µs")
			})
		}
	}
}
