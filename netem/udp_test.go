package netem

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// These tests use real sockets, on 127.0.0.1 only, and real time: they
// assert lower bounds on delays (what netem adds), never upper bounds.

func listenUDP(t testing.TB, nw *Network, endpoint string) (net.PacketConn, *net.UDPConn) {
	t.Helper()
	raw, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	w, err := nw.PacketConn(endpoint, raw)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, raw
}

func TestUDPWrapperInterfaces(t *testing.T) {
	nw := New(Options{})
	defer nw.Close()
	w, _ := listenUDP(t, nw, "a")
	// What quic-go looks for to size buffers and set DF…
	if _, ok := w.(interface {
		SyscallConn() (syscall.RawConn, error)
		SetReadBuffer(int) error
		SetWriteBuffer(int) error
	}); !ok {
		t.Error("wrapped UDP conn lost SyscallConn/SetReadBuffer/SetWriteBuffer")
	}
	// …but not the OOB path, which would bypass WriteTo.
	if _, ok := w.(quic.OOBCapablePacketConn); ok {
		t.Error("wrapped UDP conn is OOB-capable: writes would bypass netem")
	}
	// A conn without them does not get them (quic-go fails on a
	// SyscallConn that errors).
	m, err := nw.PacketConn("b", newMemNet().listen())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.(interface {
		SyscallConn() (syscall.RawConn, error)
	}); ok {
		t.Error("wrapped in-memory conn has SyscallConn")
	}
}

func TestUDPLoopback(t *testing.T) {
	nw := New(Options{Seed: 1})
	defer nw.Close()
	a, _ := listenUDP(t, nw, "a")
	b, _ := listenUDP(t, nw, "b")
	const delay = 50 * time.Millisecond
	if err := nw.SetLink("a", "b", Impairment{Delay: delay}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := a.WriteTo([]byte("hello"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	// The reader's deadline is the socket's own: it expires before the
	// delayed datagram arrives, and a later read gets it.
	buf := make([]byte, 100)
	b.SetReadDeadline(time.Now().Add(time.Millisecond))
	if _, _, err := b.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrom before the delay: %v, want a timeout", err)
	}
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, from, err := b.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < delay || string(buf[:n]) != "hello" || from.String() != a.LocalAddr().String() {
		t.Fatalf("got %q from %v after %v, want hello from %v after ≥ %v", buf[:n], from, el, a.LocalAddr(), delay)
	}
	// The other direction is not impaired.
	start = time.Now()
	b.WriteTo([]byte("back"), a.LocalAddr())
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := a.ReadFrom(buf); err != nil {
		t.Fatal(err)
	}
	// Close unblocks a blocked reader.
	b.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := b.ReadFrom(buf)
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	b.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadFrom after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock ReadFrom")
	}
}

func selfSigned(t testing.TB) tls.Certificate {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"netem"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// quicEcho runs a quic-go server and client on wrapped loopback sockets
// ("server", "client"), echoes payload over a stream and returns the
// client's connection stats and the echo time. With until, it echoes again
// on new streams of the same connection until until() (at most 200 times).
func quicEcho(t *testing.T, nw *Network, payload []byte, until func() bool) (quic.ConnectionStats, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	spc, _ := listenUDP(t, nw, "server")
	cpc, _ := listenUDP(t, nw, "client")
	str := &quic.Transport{Conn: spc}
	defer str.Close()
	ctr := &quic.Transport{Conn: cpc}
	defer ctr.Close()
	ln, err := str.Listen(&tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, NextProtos: []string{"netem-test"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		for {
			s, err := conn.AcceptStream(ctx)
			if err != nil {
				return
			}
			go func() {
				io.Copy(s, s)
				s.Close()
			}()
		}
	}()
	conn, err := ctr.Dial(ctx, spc.LocalAddr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"netem-test"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	var first time.Duration
	for round := 0; round < 200; round++ {
		s, err := conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		go func() {
			s.Write(payload)
			s.Close()
		}()
		got, err := io.ReadAll(s)
		if round == 0 {
			first = time.Since(start)
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("echo returned %d bytes, differing from the %d sent", len(got), len(payload))
		}
		if until == nil || until() {
			break
		}
	}
	return conn.ConnectionStats(), first
}

func TestQUICOverNetem(t *testing.T) {
	t.Run("delay", func(t *testing.T) {
		nw := New(Options{Seed: 2})
		defer nw.Close()
		const delay = 10 * time.Millisecond
		nw.SetLink("client", "server", Impairment{Delay: delay})
		nw.SetLink("server", "client", Impairment{Delay: delay})
		stats, el := quicEcho(t, nw, []byte("ping"), nil)
		t.Logf("echo %v, min RTT %v, smoothed RTT %v", el, stats.MinRTT, stats.SmoothedRTT)
		if stats.MinRTT < 2*delay || el < 2*delay {
			t.Errorf("min RTT %v, echo %v; want both ≥ %v", stats.MinRTT, el, 2*delay)
		}
	})
	t.Run("lossy", func(t *testing.T) {
		// quic-go must get every byte through loss, reordering,
		// duplication and corruption.
		nw := New(Options{Seed: 3})
		defer nw.Close()
		imp := Impairment{Delay: 2 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.05, Duplicate: 0.02, Corrupt: 0.02, Reorder: 0.05}
		nw.SetLink("client", "server", imp)
		nw.SetLink("server", "client", imp)
		payload := make([]byte, 256<<10)
		rand.Read(payload)
		_, el := quicEcho(t, nw, payload, nil)
		s := nw.Stats("client", "server")
		t.Logf("echo of 256 KiB in %v; client→server %+v", el, s)
		if s.Lost == 0 || s.Corrupted == 0 || s.Reordered == 0 || s.Duplicated == 0 {
			t.Errorf("impairments did not all happen: %+v", s)
		}
	})
	t.Run("mtu", func(t *testing.T) {
		// quic-go's path MTU discovery probes above the MTU; the probes are
		// dropped and the transfer goes on in packets that fit.
		nw := New(Options{Seed: 4})
		defer nw.Close()
		nw.SetLink("client", "server", Impairment{MTU: 1400, Delay: time.Millisecond})
		nw.SetLink("server", "client", Impairment{MTU: 1400, Delay: time.Millisecond})
		payload := make([]byte, 16<<10)
		rand.Read(payload)
		quicEcho(t, nw, payload, func() bool {
			return nw.Stats("client", "server").MTUDropped > 0 && nw.Stats("server", "client").MTUDropped > 0
		})
		cs, sc := nw.Stats("client", "server"), nw.Stats("server", "client")
		t.Logf("client→server %+v; server→client %+v", cs, sc)
		if cs.MTUDropped == 0 || sc.MTUDropped == 0 {
			t.Error("no datagram above the MTU: path MTU discovery did not probe")
		}
	})
	t.Run("zero", func(t *testing.T) {
		nw := New(Options{})
		defer nw.Close()
		quicEcho(t, nw, []byte("ping"), nil)
		if s := nw.Stats("client", "server"); s.Packets == 0 || s.Lost+s.QueueDropped+s.PartitionDropped != 0 {
			t.Errorf("stats %+v", s)
		}
	})
}
