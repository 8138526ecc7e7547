package bench

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// A flood holds idle connections to a node's HTTP API, each with a request
// whose header never ends: what a client that wants to exhaust the API's
// connections (and the node's file descriptors) does. A node must refuse
// what is over its limits (--api-max-conns, --api-max-conns-per-ip) and
// keep serving everyone else.
type flood struct {
	conns   []net.Conn // the ones the node holds
	Held    int        // connections the node kept open
	Refused int        // connections it closed or refused, and dials that failed
}

// floodConcurrency bounds the dials in flight; floodSettle is how long a
// flood waits before it counts what the node kept.
const (
	floodConcurrency = 128
	floodSettle      = 300 * time.Millisecond
	floodDialTimeout = 2 * time.Second
)

// floodRequest is the unfinished request each connection sends.
var floodRequest = []byte("GET /v1/status HTTP/1.1\r\nHost: rustorium-flood\r\nX-Flood: ")

// floodAPI opens n connections to addr (host:port), sends each the start of
// a request, and counts after floodSettle which ones the node kept.
func floodAPI(ctx context.Context, addr string, n int) *flood {
	f := &flood{}
	var (
		mu  sync.Mutex
		all []net.Conn
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, floodConcurrency)
	d := net.Dialer{Timeout: floodDialTimeout}
	for range n {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := d.DialContext(ctx, "tcp", addr)
			if err == nil {
				if _, err = c.Write(floodRequest); err != nil {
					c.Close()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				f.Refused++
				return
			}
			all = append(all, c)
		})
	}
	wg.Wait()
	select {
	case <-ctx.Done():
	case <-time.After(floodSettle):
	}
	// A connection the node closed (or answered with a refusal) reads at
	// once; one it holds times out.
	var one [1]byte
	for _, c := range all {
		c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(one[:]); errors.Is(err, os.ErrDeadlineExceeded) {
			c.SetReadDeadline(time.Time{})
			f.conns = append(f.conns, c)
			continue
		}
		c.Close()
		f.Refused++
	}
	f.Held = len(f.conns)
	return f
}

// stop closes the flood's connections. Safe to call twice.
func (f *flood) stop() {
	for _, c := range f.conns {
		c.Close()
	}
	f.conns = nil
}
