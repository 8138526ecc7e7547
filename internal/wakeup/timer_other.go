//go:build !linux

package wakeup

import "errors"

// newFD has no timerfd to offer outside Linux: New uses a Go timer.
func newFD() (sleeper, error) { return nil, errors.New("wakeup: no timerfd") }
