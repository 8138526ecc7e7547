package memnet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/nettest"
)

// TestConnConformance runs x/net's net.Conn conformance suite (I/O, racy
// reads and writes, deadlines past, present and future, Close unblocking
// everything, concurrent methods) on a Pipe, with a small buffer so that
// writers wait for readers too.
func TestConnConformance(t *testing.T) {
	for _, buf := range []int{7, 4096, 0} {
		nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
			a, b := Pipe(Addr("a"), Addr("b"), buf)
			return a, b, func() { a.Close(); b.Close() }, nil
		})
	}
}

// TestPipeCarriesBytesInOrder: random-sized writes from one end arrive in
// order, whole, through a buffer much smaller than the stream, read with
// random-sized reads; then the writer's Close is io.EOF.
func TestPipeCarriesBytesInOrder(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	want := make([]byte, 1<<20)
	for i := range want {
		want[i] = byte(r.Uint32())
	}
	a, b := Pipe(Addr("a"), Addr("b"), 1000)
	defer b.Close()
	go func() {
		defer a.Close()
		w := rand.New(rand.NewPCG(seed, 2))
		for rest := want; len(rest) > 0; {
			n := min(len(rest), 1+w.IntN(5000))
			if _, err := a.Write(rest[:n]); err != nil {
				t.Error(err)
				return
			}
			rest = rest[n:]
		}
	}()
	var got []byte
	buf := make([]byte, 3000)
	for {
		n, err := b.Read(buf[:1+r.IntN(len(buf))])
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, want %d, equal prefix %d", len(got), len(want), commonPrefix(got, want))
	}
}

func commonPrefix(a, b []byte) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// TestWriteWaitsForTheReader: a Write larger than the buffer buffers what
// fits and waits; a write deadline ends the wait with a timeout, reporting
// the bytes it did buffer, which the reader then gets.
func TestWriteWaitsForTheReader(t *testing.T) {
	a, b := Pipe(Addr("a"), Addr("b"), 10)
	defer a.Close()
	defer b.Close()
	_ = a.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	n, err := a.Write([]byte("0123456789abcdef"))
	if n != 10 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write = %d, %v; want 10 and a deadline error", n, err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("error %v is not a net.Error timeout", err)
	}
	got := make([]byte, 20)
	if n, err := b.Read(got); n != 10 || err != nil || string(got[:n]) != "0123456789" {
		t.Fatalf("Read = %q, %v", got[:n], err)
	}
}

// TestEmptyCallsReturnAtOnce: a Read or Write of no bytes returns 0 and no
// error at once, as on TCP, even with nothing buffered to read or no room
// to write (the deadline only bounds a wrong wait).
func TestEmptyCallsReturnAtOnce(t *testing.T) {
	a, b := Pipe(Addr("a"), Addr("b"), 1)
	defer a.Close()
	defer b.Close()
	_ = b.SetDeadline(time.Now().Add(time.Second))
	if n, err := b.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty Read of an empty pipe = %d, %v", n, err)
	}
	if _, err := b.Write([]byte("x")); err != nil { // fills a's one-byte buffer
		t.Fatal(err)
	}
	if n, err := b.Write(nil); n != 0 || err != nil {
		t.Fatalf("empty Write to a full pipe = %d, %v", n, err)
	}
}

// TestCloseEnds: after one end closes, the other reads what was written
// before and then io.EOF, and its Writes fail with ErrPeerClosed (EPIPE);
// the closed end's own calls fail with net.ErrClosed; Close twice is fine.
func TestCloseEnds(t *testing.T) {
	a, b := Pipe(Addr("a"), Addr("b"), 0)
	if _, err := a.Write([]byte("last words")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	got, err := io.ReadAll(b)
	if string(got) != "last words" || err != nil {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, ErrPeerClosed) || !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Write to a closed peer: %v", err)
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

// TestListenerTakesBoth: a Listener wrapping a TCP listener accepts both a
// TCP client and an in-memory one, at the TCP listener's address; the
// in-memory connection's ends name each other; once closed, Dial is refused
// as a closed TCP port is (ECONNREFUSED), Accept fails with net.ErrClosed, and
// the TCP port no longer accepts.
func TestListenerTakesBoth(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Listen(tcp, nil, 0)
	defer l.Close()
	if l.Addr().String() != tcp.Addr().String() {
		t.Fatalf("Addr %v, want %v", l.Addr(), tcp.Addr())
	}
	echo := make(chan error, 2)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				echo <- err
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	ctx := context.Background()
	mem, err := l.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close() // ends its echo goroutine on a failing path too
	if mem.RemoteAddr().String() != tcp.Addr().String() || mem.LocalAddr().Network() != "memnet" {
		t.Fatalf("in-memory conn %v -> %v", mem.LocalAddr(), mem.RemoteAddr())
	}
	viaTCP, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer viaTCP.Close()
	for _, c := range []net.Conn{mem, viaTCP} {
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 4)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != "ping" {
			t.Fatalf("%v: echo %q, %v", c.LocalAddr().Network(), got, err)
		}
		c.Close()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-echo; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if _, err := l.Dial(ctx); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial after Close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", tcp.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("the TCP port still accepts after Close")
	}
}

// TestDialWaitsForAccept: Dial hands its connection to Accept and waits for
// it; with no one accepting it ends with its context.
func TestDialWaitsForAccept(t *testing.T) {
	l := Listen(nil, Addr("broker"), 0)
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.Dial(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial with nobody accepting: %v", err)
	}
	type result struct {
		c   net.Conn
		err error
	}
	accepted := make(chan result, 1) // the goroutine ends with l.Close whatever the test does
	go func() {
		c, err := l.Accept()
		accepted <- result{c, err}
	}()
	c, err := l.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := <-accepted
	if r.err != nil {
		t.Fatal(r.err)
	}
	s := r.c
	defer s.Close()
	if s.LocalAddr().String() != "broker" || s.RemoteAddr() != c.LocalAddr() {
		t.Fatalf("server end %v <- %v, client end %v", s.LocalAddr(), s.RemoteAddr(), c.LocalAddr())
	}
}

// BenchmarkPipeRoundTrip: one small request and response, as a Kafka client
// and broker exchange them, between two goroutines; the peer for comparison
// is the same over loopback TCP.
func BenchmarkPipeRoundTrip(b *testing.B) {
	b.Run("memnet", func(b *testing.B) {
		c, s := Pipe(Addr("c"), Addr("s"), 0)
		benchRoundTrip(b, c, s)
	})
	b.Run("tcp", func(b *testing.B) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := l.Accept()
		if err != nil {
			b.Fatal(err)
		}
		benchRoundTrip(b, c, s)
	})
}

func benchRoundTrip(b *testing.B, c, s net.Conn) {
	defer c.Close()
	defer s.Close()
	go func() {
		buf := make([]byte, 256)
		for {
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			if _, err := s.Write(buf); err != nil {
				return
			}
		}
	}()
	req, resp := make([]byte, 256), make([]byte, 256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			b.Fatal(err)
		}
	}
}
