package wakeup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fdTimer is a timerfd read through the netpoller, with the sleep's end as
// the read's deadline.
type fdTimer struct {
	f  *os.File
	rc syscall.RawConn // the descriptor, held open while in use
}

func newFD() (*fdTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("wakeup: timerfd_create: %w", err)
	}
	// A non-blocking descriptor makes a pollable File; one that is not
	// (no netpoller) refuses deadlines, and a read would block a thread.
	f := os.NewFile(uintptr(fd), "timerfd")
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("wakeup: timerfd not pollable: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("wakeup: timerfd: %w", err)
	}
	return &fdTimer{f: f, rc: rc}, nil
}

func (t *fdTimer) sleep(ctx context.Context, d time.Duration) error {
	// Arming resets the expiration count, so an expiry left over from an
	// earlier sleep that ended on its deadline or its context cannot end
	// this one: the read finds nothing and waits.
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	var serr error
	if err := t.rc.Control(func(fd uintptr) { serr = unix.TimerfdSettime(int(fd), 0, &spec, nil) }); err != nil {
		return ErrClosed
	}
	if serr != nil {
		return fmt.Errorf("wakeup: timerfd_settime: %w", serr)
	}
	if err := t.f.SetReadDeadline(time.Now().Add(d)); err != nil {
		return ErrClosed
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { t.f.SetReadDeadline(time.Now()) })
		defer stop()
	}
	var b [8]byte
	_, err := t.f.Read(b[:])
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	switch {
	case err == nil, errors.Is(err, os.ErrDeadlineExceeded):
		return nil
	case errors.Is(err, os.ErrClosed):
		return ErrClosed
	}
	return fmt.Errorf("wakeup: timerfd read: %w", err)
}

func (t *fdTimer) close() error { return t.f.Close() }
