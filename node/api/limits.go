package api

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// The Limits' defaults (WriteTimeout's is ReceiptTimeout + 15s).
const (
	DefaultReadHeaderTimeout    = 10 * time.Second
	DefaultReadTimeout          = 30 * time.Second
	DefaultIdleTimeout          = 60 * time.Second
	DefaultMaxHeaderBytes       = 64 << 10
	DefaultMaxConns             = 4096
	DefaultMaxConnsPerIP        = 1024
	DefaultMaxBody              = 1 << 20
	DefaultGraphQLMaxSelections = 256
	DefaultGraphQLMaxDepth      = 8
	DefaultGraphQLMaxResponse   = 4 << 20
	DefaultGraphQLTimeout       = 10 * time.Second
	DefaultGraphQLConcurrency   = 64
)

// Limits bound what the API takes from its clients. Every field's zero
// value means the default its comment states; a negative value is an
// ErrConfig. Every refusal is an Error with a code of its own.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers. Zero means
	// 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, its body included. Zero
	// means 30s.
	ReadTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its
	// next request before it is closed. Zero means 60s.
	IdleTimeout time.Duration
	// WriteTimeout bounds a response, from the end of its request's
	// headers. Zero means ReceiptTimeout + 15s (a ?wait=committed answer
	// streams until its receipt). WebSocket connections are exempt from
	// the read, write and idle timeouts (net/http clears a hijacked
	// connection's deadlines): they live as long as their client reads,
	// each message's write bounded on its own.
	WriteTimeout time.Duration
	// MaxHeaderBytes bounds a request's header. Zero means 64 KiB.
	MaxHeaderBytes int
	// MaxConns bounds the open connections (WebSocket ones included); one
	// more is answered 503 with code CodeTooManyConns and closed at once.
	// Zero means 4096.
	MaxConns int
	// MaxConnsPerIP bounds one remote IP's open connections, refused as
	// MaxConns's are (a load generator on one host holds a connection per
	// request under way). Zero means 1024.
	MaxConnsPerIP int
	// MaxBody bounds a GraphQL request's body (a transaction's body is
	// bounded by tx.MaxSize); a longer one is refused 413 with code
	// "too large". Zero means 1 MiB.
	MaxBody int64
	// Introspection serves GraphQL introspection (__schema, __type). Off
	// by default: a query naming them is refused with code
	// CodeIntrospection.
	Introspection bool
	// GraphQLMaxSelections bounds a GraphQL query's cost: its field
	// selections, every alias counted, fragments expanded. Over it the
	// query is refused with code CodeTooComplex before it runs. Zero means
	// 256.
	GraphQLMaxSelections int
	// GraphQLMaxDepth bounds a GraphQL query's field nesting, refused with
	// code CodeTooComplex. Zero means 8.
	GraphQLMaxDepth int
	// GraphQLMaxResponse bounds a GraphQL answer's size in bytes; a larger
	// one is refused with code CodeResponseTooLarge. Zero means 4 MiB.
	GraphQLMaxResponse int
	// GraphQLTimeout bounds one GraphQL request; over it the request is
	// refused 504 with code "timeout". A document with a mutation gets
	// ReceiptTimeout + 5s instead (a submission waits for its receipt).
	// Zero means 10s.
	GraphQLTimeout time.Duration
	// GraphQLConcurrency bounds the GraphQL queries (documents without a
	// mutation) under way at once; one more is refused 503 with code
	// "overloaded". Submissions, which mostly wait for their receipt, are
	// bounded by the connection caps only. Zero means 64.
	GraphQLConcurrency int
}

// ensureDefaults fills zero fields; receipt is the Config's ReceiptTimeout.
func (l *Limits) ensureDefaults(receipt time.Duration) error {
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
	}{
		{&l.ReadHeaderTimeout, DefaultReadHeaderTimeout}, {&l.ReadTimeout, DefaultReadTimeout},
		{&l.IdleTimeout, DefaultIdleTimeout}, {&l.WriteTimeout, receipt + 15*time.Second},
		{&l.GraphQLTimeout, DefaultGraphQLTimeout},
	} {
		if *d.p < 0 {
			return fmt.Errorf("%w: negative limit %v", ErrConfig, *d.p)
		}
		if *d.p == 0 {
			*d.p = d.def
		}
	}
	for _, i := range []struct {
		p   *int
		def int
	}{
		{&l.MaxHeaderBytes, DefaultMaxHeaderBytes}, {&l.MaxConns, DefaultMaxConns}, {&l.MaxConnsPerIP, DefaultMaxConnsPerIP},
		{&l.GraphQLMaxSelections, DefaultGraphQLMaxSelections}, {&l.GraphQLMaxDepth, DefaultGraphQLMaxDepth},
		{&l.GraphQLMaxResponse, DefaultGraphQLMaxResponse}, {&l.GraphQLConcurrency, DefaultGraphQLConcurrency},
	} {
		if *i.p < 0 {
			return fmt.Errorf("%w: negative limit %d", ErrConfig, *i.p)
		}
		if *i.p == 0 {
			*i.p = i.def
		}
	}
	switch {
	case l.MaxBody < 0:
		return fmt.Errorf("%w: negative MaxBody %d", ErrConfig, l.MaxBody)
	case l.MaxBody == 0:
		l.MaxBody = DefaultMaxBody
	}
	return nil
}

// limitListener caps the connections open from its listener, in all and
// per remote IP. A connection over a cap is answered 503 with a JSON
// refusal once its client has begun its request (or after refuseWait),
// and closed: an answer written before the request reaches a
// client that has not sent it yet as a response to nothing (Go's
// Transport drops it: "Unsolicited response received on idle HTTP
// channel", and the request fails without the refusal's code). At most
// maxRefusing refusals wait for their requests at once; past that a
// connection over a cap is closed without an answer.
type limitListener struct {
	net.Listener
	max, perIP int

	mu   sync.Mutex
	open int
	byIP map[string]int

	refusing chan struct{}         // a slot per refusal under way
	refusals sync.WaitGroup        // the refusals under way; Close ends and waits for them
	refused  map[net.Conn]struct{} // their connections (guarded by mu)
	closed   bool                  // guarded by mu
}

// Refusals of connections over a cap.
const (
	maxRefusing = 64          // refusals waiting for their requests at once
	refuseWait  = time.Second // how long a refusal waits for its request
)

func newLimitListener(ln net.Listener, max, perIP int) *limitListener {
	return &limitListener{Listener: ln, max: max, perIP: perIP, byIP: make(map[string]int),
		refusing: make(chan struct{}, maxRefusing), refused: make(map[net.Conn]struct{})}
}

// Close closes the listener, ends the refusals under way (closing their
// connections) and waits for them.
func (l *limitListener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	for c := range l.refused {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.refusals.Wait()
	return err
}

// refuse answers c, over a cap, in a goroutine of its own (refuseConn).
func (l *limitListener) refuse(c net.Conn) {
	select {
	case l.refusing <- struct{}{}:
	default: // too many refusals under way: no answer
		_ = c.Close()
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = c.Close()
		<-l.refusing
		return
	}
	l.refused[c] = struct{}{}
	l.refusals.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.refusals.Done()
		refuseConn(c)
		l.mu.Lock()
		delete(l.refused, c)
		l.mu.Unlock()
		<-l.refusing
	}()
}

// Accept returns the next connection within the caps, refusing those over
// them.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		l.mu.Lock()
		over := l.open >= l.max || l.byIP[ip] >= l.perIP
		if !over {
			l.open++
			l.byIP[ip]++
		}
		l.mu.Unlock()
		if over {
			l.refuse(c)
			continue
		}
		return &limitedConn{Conn: c, l: l, ip: ip}, nil
	}
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

func remoteIP(c net.Conn) string {
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// tooManyConns is the answer of a connection over a cap.
var tooManyConns = func() []byte {
	body := `{"code":"` + CodeTooManyConns + `","error":"too many open connections (from this address or in all)"}` + "\n"
	return []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}()

// refuseConn waits (at most refuseWait) until c's client has begun its
// request — a client then expects an answer, even before the request is
// whole — writes the 503 answer and closes c.
func refuseConn(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(refuseWait))
	var buf [4 << 10]byte
	_, _ = c.Read(buf[:])
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = c.Write(tooManyConns)
	_ = c.Close()
}

// limitedConn gives its slot back when closed (once).
type limitedConn struct {
	net.Conn
	l    *limitListener
	ip   string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}
