// Package deadline is the settable deadline of an in-memory net.Conn: a
// channel closed when the deadline passes, after net.Pipe's. netem's stream
// connections and memnet's pipes use it for SetReadDeadline and
// SetWriteDeadline.
package deadline

import (
	"sync"
	"time"
)

// Deadline is a deadline that can be set, moved and cleared while others
// wait on it. The zero value has no deadline. A Deadline must not be copied
// after first use.
type Deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed once the deadline passed; nil until first used
}

// Set moves the deadline to t; the zero t clears it, and a t in the past
// closes Done's channel at once.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
	}
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer's func is closing it
	}
	d.timer = nil
	closed := Closed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// Done returns a channel closed when the deadline as it is now set passes.
// A later Set does not close a channel returned before it: wait on Done
// again after a wake-up.
func (d *Deadline) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel == nil {
		d.cancel = make(chan struct{})
	}
	return d.cancel
}

// Closed reports whether ch is closed; nil is never closed.
func Closed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
