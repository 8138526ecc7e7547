package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rustorium/rustorium/reports"
)

// progress prints what a run is doing. On a terminal the live line rewrites
// itself in place; elsewhere (CI logs, pipes) it prints a plain line every
// few seconds.
type progress struct {
	w   io.Writer
	tty bool
	mu  sync.Mutex
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) printf(format string, args ...any) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

// live prints a status line every second (every 5s when not a terminal)
// until the returned stop is called.
func (p *progress) live(ctx context.Context, rec *reports.Recorder, chk *checker, start time.Time, warmup, measure time.Duration) (stop func()) {
	if p.w == nil {
		return func() {}
	}
	every := time.Second
	if !p.tty {
		every = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		var lastSent int64
		lastAt := time.Now()
		for {
			select {
			case <-ctx.Done():
				if p.tty {
					p.mu.Lock()
					fmt.Fprint(p.w, "\r\033[K")
					p.mu.Unlock()
				}
				return
			case now := <-t.C:
				line, sent := status(rec, chk, now.Sub(start), warmup, measure, lastSent, now.Sub(lastAt))
				lastSent, lastAt = sent, now
				p.mu.Lock()
				if p.tty {
					fmt.Fprint(p.w, "\r\033[K"+line)
				} else {
					fmt.Fprintln(p.w, line)
				}
				p.mu.Unlock()
			}
		}
	}()
	return func() { cancel(); <-done }
}

// status formats one progress line.
func status(rec *reports.Recorder, chk *checker, elapsed, warmup, measure time.Duration, lastSent int64, since time.Duration) (string, int64) {
	phase := "measure"
	if elapsed < warmup {
		phase = "warmup"
	}
	snap := rec.Snapshot()
	var sent, errs int64
	var p99 int64
	for _, w := range snap.Workloads {
		sent += w.Sent
		errs += w.Errors
		if h := w.Stages[reports.StageCommitted].Corrected; h != nil {
			p99 = max(p99, h.ValueAtQuantile(99))
		}
	}
	rate := float64(sent-lastSent) / since.Seconds()
	total := warmup + measure
	committed := "-" // nothing committed yet (or a run of reads only)
	if p99 > 0 {
		committed = reports.FormatMicros(p99)
	}
	return fmt.Sprintf("[%s %5.1fs/%v] sent %d (%.0f/s)  committed p99 %s  errors %d  awaiting commit %d",
		phase, min(elapsed, total).Seconds(), total, sent, rate, committed, errs, chk.missing()), sent
}
