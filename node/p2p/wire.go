package p2p

import (
	"sync"

	"github.com/quic-go/quic-go"
)

// WireBytes is what QUIC connections sent and received on the wire: every
// packet's bytes (QUIC headers, retransmissions, acknowledgements and the
// handshake included; UDP and IP headers not), from quic-go's
// ConnectionStats.
type WireBytes struct {
	Sent, Received uint64
}

// connMeter sums the WireBytes of a class of connections: those that ended,
// and on each read, those still open. Reading costs a lock and a look at
// every open connection; the connections themselves pay nothing.
type connMeter struct {
	mu    sync.Mutex
	open  map[*quic.Conn]struct{}
	ended WireBytes
}

// track counts c until the returned done is called, when its final bytes
// are kept.
func (m *connMeter) track(c *quic.Conn) (done func()) {
	m.mu.Lock()
	if m.open == nil {
		m.open = map[*quic.Conn]struct{}{}
	}
	m.open[c] = struct{}{}
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			st := c.ConnectionStats()
			m.mu.Lock()
			delete(m.open, c)
			m.ended.Sent += st.BytesSent
			m.ended.Received += st.BytesReceived
			m.mu.Unlock()
		})
	}
}

// total is the bytes of every connection tracked so far.
func (m *connMeter) total() WireBytes {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.ended
	for c := range m.open {
		st := c.ConnectionStats()
		t.Sent += st.BytesSent
		t.Received += st.BytesReceived
	}
	return t
}
