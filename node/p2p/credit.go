package p2p

import "sync"

// Stream credit. A client opens one bidirectional stream per request, and
// quic-go, left to itself, grants the client a new stream (a MAX_STREAMS
// frame) the moment one completes: when the client acknowledges the
// stream's last reply. That frame then leaves in a packet of its own,
// which the client acknowledges in turn — one of the three packets the
// server sent a transaction, and half an acknowledgement the client sent
// back (qlog of `make run`'s scenario, session 48: 3.0 packets a
// transaction from the server, 1.05 acknowledgements alone from the
// client). So the server asks to release credit itself
// (quic.Config.RequireStreamCreditRelease), and releases a finished
// stream's credit just before a later reply on the same connection, once
// creditLag replies were written after it finished: by then the client has
// acknowledged it (it acknowledges every second packet, at the latest after
// its max_ack_delay, 25 ms, of quiet — and without replies nothing is
// released), so quic-go deletes the stream at once and its MAX_STREAMS
// frame leaves in the reply's packet. A stream released before its
// acknowledgement is deleted when that arrives, with a packet of its own,
// as before: the deferral never costs a packet more.
const (
	// creditLag is how many replies the connection writes after a stream
	// finished before that stream's credit is released.
	creditLag = 8
	// maxDeferredCredits bounds the finished streams a connection holds
	// unreleased; one more releases the oldest at once. It is also at most
	// a 64th of the connection's stream limit (ServerConfig.MaxStreams),
	// so a deferral never takes more than that from the streams a client
	// may have open: below 64 streams nothing is deferred.
	maxDeferredCredits = 64
)

// credits holds a client connection's finished streams until their credit
// is released. Its methods are safe for the connection's stream workers.
type credits struct {
	max int // at most this many held; 0 releases every stream at once

	mu      sync.Mutex
	replies uint64     // replies written on the connection
	held    []finished // in the order they finished
}

// releaser is what credits needs of a stream (*quic.Stream).
type releaser interface{ ReleaseStreamCredit() }

type finished struct {
	st      releaser
	replies uint64 // credits.replies when it finished
}

// newCredits returns the credits of a connection that may have maxStreams
// streams open.
func newCredits(maxStreams int64) *credits {
	return &credits{max: int(min(maxDeferredCredits, maxStreams/64))}
}

// finish holds st, whose handler is done with it, until its credit is due.
func (c *credits) finish(st releaser) {
	if c.max == 0 {
		st.ReleaseStreamCredit()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = append(c.held, finished{st: st, replies: c.replies})
	if len(c.held) > c.max {
		c.release(1)
	}
}

// reply counts a reply about to be written and releases the credit of the
// streams that finished creditLag replies ago or more, so that quic-go's
// MAX_STREAMS frames for them go out with it.
func (c *credits) reply() {
	if c.max == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replies++
	n := 0
	for n < len(c.held) && c.replies-c.held[n].replies > creditLag {
		n++
	}
	c.release(n)
}

// release gives back the credit of the n oldest held streams and drops
// them (c.mu held; quic-go takes only its own locks under it).
func (c *credits) release(n int) {
	for _, f := range c.held[:n] {
		f.st.ReleaseStreamCredit()
	}
	m := copy(c.held, c.held[n:])
	clear(c.held[m:])
	c.held = c.held[:m]
}
