package netem

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkUDPLoopback sends 1200-byte datagrams over 127.0.0.1 from one
// socket to another (drained by a reader goroutine): raw sockets, then
// through the wrapper with a zero impairment (the passthrough overhead),
// loss only (decisions, no hop), and a delay (copy + scheduler). pkts/s is
// datagrams handed to the kernel per second (for delay1ms, until the
// scheduler has written the last one); recv% is the share the reader got
// (the rest overflowed its socket buffer).
//
//	go test ./netem -run '^$' -bench UDPLoopback -benchtime 200000x
func BenchmarkUDPLoopback(b *testing.B) {
	for _, bc := range []struct {
		name string
		wrap bool
		imp  Impairment
	}{
		{"raw", false, Impairment{}},
		{"zero", true, Impairment{}},
		{"loss1%", true, Impairment{Loss: 0.01}},
		{"delay1ms", true, Impairment{Delay: time.Millisecond}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			nw := New(Options{})
			defer nw.Close()
			recv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer recv.Close()
			recv.SetReadBuffer(8 << 20)
			rawSend, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			var send net.PacketConn = rawSend
			if bc.wrap {
				if send, err = nw.PacketConn("a", rawSend); err != nil {
					b.Fatal(err)
				}
				if err := nw.Register("b", recv.LocalAddr()); err != nil {
					b.Fatal(err)
				}
				nw.SetLink("a", "b", bc.imp)
			}
			defer send.Close()
			var got atomic.Int64
			go func() {
				buf := make([]byte, 2048)
				for {
					if _, _, err := recv.ReadFrom(buf); err != nil {
						return
					}
					got.Add(1)
				}
			}()
			msg := make([]byte, 1200)
			to := recv.LocalAddr()
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				if _, err := send.WriteTo(msg, to); err != nil {
					b.Fatal(err)
				}
			}
			// Delayed datagrams count once the scheduler has written them.
			if bc.wrap {
				l := nw.link("a", "b")
				for {
					l.mu.Lock()
					n := len(l.q)
					l.mu.Unlock()
					if n == 0 {
						break
					}
					time.Sleep(100 * time.Microsecond)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			time.Sleep(20 * time.Millisecond)
			b.ReportMetric(float64(b.N)/el.Seconds(), "pkts/s")
			b.ReportMetric(100*float64(got.Load())/float64(b.N), "recv%")
		})
	}
}

// BenchmarkDecide is the cost of the decisions for one datagram with every
// impairment on.
func BenchmarkDecide(b *testing.B) {
	nw := New(Options{})
	defer nw.Close()
	imp := everything
	imp.Rate = 0
	nw.SetLink("a", "b", imp)
	l := nw.link("a", "b")
	addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	now := time.Now()
	var plans [2]copyPlan
	for b.Loop() {
		l.decidePacket(now, 1200, addr, &plans)
	}
}

// discardConn is a PacketConn whose WriteTo does nothing, to isolate the
// wrapper's own cost from the kernel's.
type discardConn struct{ addr *net.UDPAddr }

func (discardConn) ReadFrom([]byte) (int, net.Addr, error)    { return 0, nil, net.ErrClosed }
func (discardConn) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }
func (discardConn) Close() error                              { return nil }
func (d discardConn) LocalAddr() net.Addr                     { return d.addr }
func (discardConn) SetDeadline(time.Time) error               { return nil }
func (discardConn) SetReadDeadline(time.Time) error           { return nil }
func (discardConn) SetWriteDeadline(time.Time) error          { return nil }

// BenchmarkWrapperOverhead is WriteTo on a conn that discards: bare, and
// wrapped with a zero impairment to a registered address.
func BenchmarkWrapperOverhead(b *testing.B) {
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2}
	msg := make([]byte, 1200)
	b.Run("bare", func(b *testing.B) {
		var c net.PacketConn = discardConn{&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}
		for b.Loop() {
			c.WriteTo(msg, to)
		}
	})
	// zero wraps a discarding conn as a's, on a network whose links are all
	// unimpaired and where to is b.
	zero := func(b *testing.B) net.PacketConn {
		nw := New(Options{})
		b.Cleanup(func() { nw.Close() })
		c, _ := nw.PacketConn("a", discardConn{&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}})
		nw.Register("b", to)
		return c
	}
	b.Run("zero", func(b *testing.B) {
		c := zero(b)
		b.ReportAllocs()
		for b.Loop() {
			c.WriteTo(msg, to)
		}
	})
	b.Run("zero-parallel", func(b *testing.B) {
		c := zero(b)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				c.WriteTo(msg, to)
			}
		})
	})
}
