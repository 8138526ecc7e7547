package deadline

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestDeadline walks one Deadline through every transition in a synctest
// bubble, so each check is at an exact virtual time: moved before firing
// (the reused timer fires at the new time, not the old), cleared (never
// fires), passed (closed), set again after passing (a new open channel that
// the new time closes), and set in the past (closed at once).
func TestDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var d Deadline
		open := func(what string, want bool) {
			t.Helper()
			time.Sleep(0)
			synctest.Wait()
			if got := !Closed(d.Done()); got != want {
				t.Fatalf("%s: open = %v, want %v", what, got, want)
			}
		}
		open("zero value", true)

		d.Set(time.Now().Add(10 * time.Millisecond))
		time.Sleep(5 * time.Millisecond)
		d.Set(time.Now().Add(10 * time.Millisecond)) // moved to t=15ms
		time.Sleep(6 * time.Millisecond)
		open("t=11ms, deadline moved to 15ms", true)
		time.Sleep(5 * time.Millisecond)
		open("t=16ms", false)

		first := d.Done()
		d.Set(time.Now().Add(10 * time.Millisecond))
		if Closed(d.Done()) || !Closed(first) {
			t.Fatal("a new deadline after one passed must give a new open channel and leave the old closed")
		}
		d.Set(time.Time{})
		time.Sleep(time.Second)
		open("cleared", true)

		d.Set(time.Now().Add(-time.Millisecond))
		open("set in the past", false)
		d.Set(time.Now().Add(-time.Millisecond))
		open("set in the past twice", false)
		d.Set(time.Time{})
		open("cleared after passing", true)
		d.Set(time.Now().Add(time.Millisecond))
		time.Sleep(2 * time.Millisecond)
		open("passed again", false)
	})
}
