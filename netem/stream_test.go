package netem

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// streamPair returns a wrapped conn from "node" to "broker" over net.Pipe
// (usable in a synctest bubble) and the raw far end.
func streamPair(t *testing.T, out, in Impairment) (*Network, net.Conn, net.Conn) {
	t.Helper()
	nw := New(Options{Seed: 1})
	if err := nw.SetLink("node", "broker", out); err != nil {
		t.Fatal(err)
	}
	if err := nw.SetLink("broker", "node", in); err != nil {
		t.Fatal(err)
	}
	near, far := net.Pipe()
	c, err := nw.Conn("node", "broker", near)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		far.Close()
		nw.Close()
	})
	return nw, c, far
}

// echo copies everything c reads back to it until an error.
func echo(c net.Conn) { io.Copy(c, c) }

func TestStreamDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c, far := streamPair(t, Impairment{Delay: 5 * time.Millisecond}, Impairment{Delay: 7 * time.Millisecond})
		go echo(far)
		buf := make([]byte, 4)
		for range 3 {
			start := time.Now()
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				t.Fatal(err)
			}
			if rtt := time.Since(start); rtt != 12*time.Millisecond || string(buf) != "ping" {
				t.Fatalf("echo %q after %v, want ping after 12ms", buf, rtt)
			}
		}
	})
}

func TestStreamKeepsOrderUnderJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		imp := Impairment{Delay: 10 * time.Millisecond, Jitter: 8 * time.Millisecond, Distribution: Pareto, Loss: 0.05}
		_, c, far := streamPair(t, imp, imp)
		go echo(far)
		data := make([]byte, 200<<10)
		rand.Read(data)
		go func() {
			for i := 0; i < len(data); i += 3000 {
				c.Write(data[i:min(i+3000, len(data))])
				time.Sleep(100 * time.Microsecond)
			}
		}()
		got := make([]byte, len(data))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatal("stream bytes reordered or changed")
		}
	})
}

func TestStreamRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 8 Mbit/s is 1 MB/s: a megabyte takes one second.
		_, c, far := streamPair(t, Impairment{Rate: 8_000_000}, Impairment{})
		data := make([]byte, 1_000_000)
		start := time.Now()
		go c.Write(data)
		if _, err := io.ReadFull(far, make([]byte, len(data))); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el != time.Second {
			t.Errorf("1 MB at 8 Mbit/s took %v, want 1s", el)
		}
	})
}

func TestStreamLossRetransmits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Every segment is "lost" once: it arrives one retransmission
		// timeout (200ms by default) after its delay.
		nw, c, far := streamPair(t, Impairment{Delay: time.Millisecond, Loss: 1}, Impairment{})
		start := time.Now()
		go c.Write([]byte("x"))
		if _, err := io.ReadFull(far, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el != 201*time.Millisecond {
			t.Errorf("lost segment arrived after %v, want 201ms", el)
		}
		if s := nw.Stats("node", "broker"); s.Lost != 1 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestStreamPartitionHoldsUntilHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 3 * time.Millisecond
		nw, c, far := streamPair(t, Impairment{Delay: delay}, Impairment{Delay: delay})
		go echo(far)
		heal := nw.Partition([]string{"node"}, []string{"broker"})
		start := time.Now()
		if _, err := c.Write([]byte("held")); err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(time.Second)
			heal()
		}()
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		// Out one delay after the heal, back one delay later.
		if el := time.Since(start); el != time.Second+2*delay || string(buf) != "held" {
			t.Errorf("got %q after %v, want held after %v", buf, el, time.Second+2*delay)
		}
	})
}

func TestStreamDeadlinesAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c, far := streamPair(t, Impairment{}, Impairment{Delay: 10 * time.Millisecond})
		go far.Write([]byte("late"))
		buf := make([]byte, 4)
		// The data is in flight for 10ms; a 3ms deadline expires first.
		c.SetReadDeadline(time.Now().Add(3 * time.Millisecond))
		_, err := c.Read(buf)
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Read past deadline: %v, want a timeout", err)
		}
		c.SetReadDeadline(time.Time{})
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != "late" {
			t.Fatalf("Read %q, %v", buf[:n], err)
		}
		// A deadline set while Read is blocked wakes it (franz-go cancels
		// requests this way).
		go func() {
			time.Sleep(5 * time.Millisecond)
			c.SetDeadline(time.Now())
		}()
		if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read after SetDeadline(now): %v", err)
		}
		c.SetDeadline(time.Time{})
		// Close unblocks Read, and is safe twice.
		go func() {
			time.Sleep(5 * time.Millisecond)
			c.Close()
		}()
		if _, err := c.Read(buf); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after Close: %v", err)
		}
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Fatal(err)
		}
		if _, err := c.Write(buf); err == nil {
			t.Fatal("Write after Close succeeded")
		}
	})
}

func TestStreamWriteBlocksWhenFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nw := New(Options{StreamBuffer: 1000})
		defer nw.Close()
		nw.SetLink("node", "broker", Impairment{Delay: time.Second})
		near, far := net.Pipe()
		defer far.Close()
		c, _ := nw.Conn("node", "broker", near)
		defer c.Close()
		if _, err := c.Write(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		// The buffer is full until the first write is delivered: a write
		// deadline fires.
		c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
		if _, err := c.Write([]byte("more")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write into a full buffer: %v, want a timeout", err)
		}
	})
}

func TestStreamPassthrough(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, c, far := streamPair(t, Impairment{}, Impairment{})
		go echo(far)
		c.Write([]byte("ping"))
		buf := make([]byte, 4)
		io.ReadFull(c, buf)
		sc := c.(*streamConn)
		sc.mu.Lock()
		pumped := sc.rPumped || sc.wPumped
		sc.mu.Unlock()
		if pumped || string(buf) != "ping" {
			t.Errorf("zero impairment: got %q, goroutines started: %v", buf, pumped)
		}
	})
}

// TestDialerTCP dials a real TCP echo server on 127.0.0.1 through the
// dialer, with 5ms each way.
func TestDialerTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				echo(c)
				c.Close()
			}()
		}
	}()
	nw := New(Options{})
	defer nw.Close()
	const delay = 5 * time.Millisecond
	nw.SetLink("node-1", "broker", Impairment{Delay: delay})
	nw.SetLink("broker", "node-1", Impairment{Delay: delay})
	dial := nw.Dialer("node-1", "broker", nil)
	start := time.Now()
	c, err := dial(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if el := time.Since(start); el < 2*delay {
		t.Errorf("dial took %v, want ≥ %v (one round trip)", el, 2*delay)
	}
	start = time.Now()
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 2*delay {
		t.Errorf("echo took %v, want ≥ %v", el, 2*delay)
	}
	// A partition makes the dial wait until its context ends.
	heal := nw.Partition([]string{"node-1"}, []string{"broker"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := dial(ctx, "tcp", ln.Addr().String()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial across a partition: %v", err)
	}
	heal()
}

// TestFranzGoThroughDialer produces to an in-process kfake broker through
// the dialer with 5ms each way: a produce takes at least one round trip.
func TestFranzGoThroughDialer(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	nw := New(Options{Seed: 5})
	defer nw.Close()
	const delay = 5 * time.Millisecond
	imp := Impairment{Delay: delay, Jitter: time.Millisecond, Loss: 0.01}
	nw.SetLink("node-1", "broker", imp)
	nw.SetLink("broker", "node-1", imp)
	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.Dialer(nw.Dialer("node-1", "broker", nil)), kgo.DefaultProduceTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("warm")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		start := time.Now()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < 2*(delay-time.Millisecond) {
			t.Errorf("produce %d acked after %v, want ≥ %v", i, el, 2*(delay-time.Millisecond))
		}
	}
	if s := nw.Stats("node-1", "broker"); s.Packets == 0 {
		t.Errorf("no traffic went through netem: %+v", s)
	}
}
