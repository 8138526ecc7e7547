package netem

import (
	"errors"
	"net"
	"net/netip"
	"sync"
)

// MaxRelaySenders bounds the senders one Relay forwards for (each has a
// socket of its own); datagrams from further senders are dropped.
const MaxRelaySenders = 1024

// A Relay puts an emulated endpoint in front of a UDP socket that another
// process owns, so that the traffic of a process the Network cannot wrap
// (a `rustorium node` process) is impaired as an endpoint's is: a datagram
// that reaches the relay's public socket from a sender goes on to the
// process from a socket of the sender's own, wrapped as the sender's
// endpoint, so the link sender→endpoint impairs it; what the process
// answers on that socket goes back to the sender from the public socket,
// wrapped as endpoint, so the link endpoint→sender impairs it. The
// sender's endpoint is the one its address is registered to (another
// relay's process, a wrapped socket); a sender nobody registered is
// registered as the relay's fallback endpoint (the clients) when first
// seen. Partitions hold as for wrapped sockets.
type Relay struct {
	n        *Network
	public   net.PacketConn // wrapped as the relay's endpoint
	target   net.Addr
	fallback string

	mu      sync.Mutex
	senders map[netip.AddrPort]net.PacketConn // wrapped as each sender's endpoint
	closed  bool
	wg      sync.WaitGroup
}

// Relay starts relaying datagrams that reach public (a socket bound to the
// address the process's peers dial) to target (the address the process
// listens on) as endpoint's traffic. It registers both addresses as
// endpoint's. Close stops it and closes public.
func (n *Network) Relay(endpoint string, public net.PacketConn, target net.Addr, fallback string) (*Relay, error) {
	if endpoint == "" || fallback == "" {
		return nil, ErrEndpoint
	}
	if err := n.Register(endpoint, target); err != nil {
		return nil, err
	}
	pub, err := n.PacketConn(endpoint, public)
	if err != nil {
		return nil, err
	}
	r := &Relay{n: n, public: pub, target: target, fallback: fallback, senders: map[netip.AddrPort]net.PacketConn{}}
	r.wg.Go(r.forward)
	return r, nil
}

// forward relays what reaches the public socket to the target, until Close.
func (r *Relay) forward() {
	buf := make([]byte, 64<<10)
	for {
		n, src, err := r.public.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		conn := r.sender(src)
		if conn == nil {
			continue
		}
		_, _ = conn.WriteTo(buf[:n], r.target)
	}
}

// sender returns the socket that relays src's datagrams, opening it (and
// the goroutine that relays the answers back) on src's first datagram; nil
// when the relay is closed or full.
func (r *Relay) sender(src net.Addr) net.PacketConn {
	ap, ok := addrPort(src)
	if !ok {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if conn := r.senders[ap]; conn != nil || r.closed {
		return conn
	}
	if len(r.senders) >= MaxRelaySenders {
		return nil
	}
	endpoint := r.n.endpointOf(ap)
	if endpoint == "" {
		endpoint = r.fallback
		if r.n.Register(endpoint, src) != nil {
			return nil
		}
	}
	conn, err := r.n.ListenPacket(endpoint, "udp", "127.0.0.1:0")
	if err != nil {
		return nil
	}
	r.senders[ap] = conn
	r.wg.Go(func() { r.back(conn, src) })
	return conn
}

// back relays the target's answers on conn to src, until Close.
func (r *Relay) back(conn net.PacketConn, src net.Addr) {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		_, _ = r.public.WriteTo(buf[:n], src)
	}
}

// Close stops the relay: it closes the public socket and every sender's,
// and waits for its goroutines. It is safe to call twice.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	conns := make([]net.PacketConn, 0, len(r.senders))
	for _, c := range r.senders {
		conns = append(conns, c)
	}
	r.mu.Unlock()
	err := r.public.Close()
	for _, c := range conns {
		c.Close()
	}
	r.wg.Wait()
	return err
}
