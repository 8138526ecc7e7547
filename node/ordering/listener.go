package ordering

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rustorium/rustorium/internal/retry"
)

// retryListener keeps the embedded broker's accept loop alive through
// transient accept errors. kfake's loop returns on the first error Accept
// gives, and the broker then never takes another connection; a process
// out of file descriptors (EMFILE, ENFILE) or kernel buffers gets exactly
// such errors, which clear once connections close. Like net/http's
// Server.Serve, Accept here waits (5ms doubling to 1s) and tries again;
// only Close, or an error that is not transient, ends it.
type retryListener struct {
	net.Listener
	log     *slog.Logger // nil: silent
	retries atomic.Uint64

	closeOnce sync.Once
	ctx       context.Context
	cancel    context.CancelFunc
}

// listenRetrying is a kfake.ListenFn: net.Listen wrapped by retryListener.
// Each listener it makes counts its retries into retries.
func listenRetrying(log *slog.Logger, made func(*retryListener)) func(network, address string) (net.Listener, error) {
	return func(network, address string) (net.Listener, error) {
		ln, err := net.Listen(network, address)
		if err != nil {
			return nil, err
		}
		r := newRetryListener(ln, log)
		if made != nil {
			made(r)
		}
		return r, nil
	}
}

func newRetryListener(ln net.Listener, log *slog.Logger) *retryListener {
	ctx, cancel := context.WithCancel(context.Background())
	return &retryListener{Listener: ln, log: log, ctx: ctx, cancel: cancel}
}

// Accept returns the next connection, retrying transient errors until the
// listener is closed.
func (l *retryListener) Accept() (net.Conn, error) {
	b := retry.Backoff{Min: 5 * time.Millisecond, Max: time.Second}
	for {
		c, err := l.Listener.Accept()
		if err == nil || !transientAccept(err) || l.ctx.Err() != nil {
			return c, err
		}
		d := b.Next()
		if n := l.retries.Add(1); l.log != nil && (n == 1 || n%100 == 0) {
			l.log.Warn("embedded broker: accept failed, retrying", "err", err, "retry_in", d, "retries", n)
		}
		if retry.Sleep(l.ctx, d) != nil {
			return nil, net.ErrClosed
		}
	}
}

// Close closes the listener and ends a waiting Accept. Safe to call twice.
func (l *retryListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.cancel()
		err = l.Listener.Close()
	})
	return err
}

// transientAccept reports whether an accept error clears by itself: the
// process or system is out of descriptors or buffers, or a connection was
// aborted before it was accepted.
func transientAccept(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
