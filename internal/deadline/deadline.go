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
	cancel chan struct{} // closed once the deadline passed; nil until first used
	// timer closes cancel when it fires. It is reused while cancel stays
	// open (a Kafka client sets a deadline on every request: a timer made
	// anew each time cost a profile 1% of the process's CPU), and dropped
	// with the channel it closes.
	timer *time.Timer
	armed bool // timer is running
}

// Set moves the deadline to t; the zero t clears it, and a t in the past
// closes Done's channel at once.
func (d *Deadline) Set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.armed {
		d.armed = false
		if !d.timer.Stop() {
			<-d.cancel // the timer's func is closing it
		}
	}
	if d.cancel == nil || Closed(d.cancel) {
		// Passed (or first use): the new deadline needs an open channel,
		// and a timer that closes that one.
		d.cancel, d.timer = make(chan struct{}), nil
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.cancel)
		d.timer = nil
		return
	}
	if d.timer == nil {
		ch := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(ch) })
	} else {
		d.timer.Reset(dur)
	}
	d.armed = true
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
