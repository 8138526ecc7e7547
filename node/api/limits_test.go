package api_test

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/rustorium/rustorium/node/api"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/tx"
)

// rawConn dials the API's socket.
func (a *testAPI) rawConn() net.Conn {
	a.t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(a.base, "http://"))
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(func() { c.Close() })
	return c
}

// readRefusal reads an HTTP answer from c and its Error body.
func readRefusal(t *testing.T, c net.Conn) (int, api.Error) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, decode[api.Error](t, b)
}

// TestConnectionLimits: a flood of idle connections from one address is
// refused over the per-IP cap with a typed 503, and an idle keep-alive
// connection is closed after IdleTimeout, giving its slot back.
func TestConnectionLimits(t *testing.T) {
	a := startAPI(t, func(c *api.Config) {
		c.Limits.MaxConnsPerIP = 2
		c.Limits.IdleTimeout = 300 * time.Millisecond
		c.Limits.ReadHeaderTimeout = 300 * time.Millisecond
	})
	// A keep-alive connection that made a request, then idles.
	idle := a.rawConn()
	fmt.Fprintf(idle, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(idle)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("status: %v %v", res, err)
	}
	io.Copy(io.Discard, res.Body)
	a.rawConn() // the second slot: a connection that never sends
	over := a.rawConn()
	if code, e := readRefusal(t, over); code != http.StatusServiceUnavailable || e.Code != api.CodeTooManyConns {
		t.Fatalf("third connection: %d %+v, want 503 %q", code, e, api.CodeTooManyConns)
	}
	// Both idle connections are closed by the server, and their slots
	// come back.
	_ = idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle keep-alive connection: %v, want EOF (closed)", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := a.do(http.MethodGet, "/v1/status", "", nil)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot back after the idle connections closed: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gqlRaw posts a GraphQL query and returns the status and body.
func (a *testAPI) gqlRaw(query string) (int, []byte) {
	body, _ := json.Marshal(api.GraphQLRequest{Query: query})
	return a.do(http.MethodPost, "/graphql", "application/json", body)
}

// amplification is the query: 1000 aliases of an introspection.
func amplification() string {
	var sb strings.Builder
	sb.WriteString("{")
	for i := range 1000 {
		fmt.Fprintf(&sb, " a%d: __schema { types { name kind fields { name args { name } type { name kind ofType { name } } } } }", i)
	}
	sb.WriteString(" }")
	return sb.String()
}

// TestGraphQLLimits: introspection is off by default; the amplification
// query is refused small with or without it; a query over the cost or
// depth bound, an answer over its size, a request over its time and one
// over the concurrency bound are each refused with a code of their own.
func TestGraphQLLimits(t *testing.T) {
	a := startAPI(t, func(c *api.Config) { c.Limits.GraphQLConcurrency = 1 })
	q := amplification()
	if len(q) < 100_000 {
		t.Fatalf("the query has %d bytes", len(q))
	}
	refused := func(a *testAPI, query string, status int, code string) {
		t.Helper()
		got, b := a.gqlRaw(query)
		e := decode[api.Error](t, b)
		if got != status || e.Code != code || len(b) > 1024 {
			t.Fatalf("%.60s…: %d %s, want %d %q", query, got, b, status, code)
		}
	}
	refused(a, q, 400, api.CodeIntrospection)
	refused(a, `{ __type(name: "Query") { name } }`, 400, api.CodeIntrospection)
	var sb strings.Builder
	for i := range 300 {
		fmt.Fprintf(&sb, " s%d: status { cache { entries } }", i)
	}
	refused(a, "{"+sb.String()+" }", 400, api.CodeTooComplex)
	// Fragments multiply: caught after their expansion.
	frag := `fragment F on Query { a: status { cache { entries hits } } b: status { cache { entries hits } } }`
	refused(a, "{"+strings.Repeat(" ...F", 100)+" }"+frag, 400, api.CodeTooComplex)

	// The concurrency bound: a read that waits for the paused node holds
	// the only query slot; a mutation does not need one.
	a.n.Pause()
	held := make(chan int, 1)
	go func() {
		for { // until it has the slot (a probe below may have it a moment)
			code, _ := a.gqlRaw(`{ value(key: "6b") { found } }`)
			if code != http.StatusServiceUnavailable {
				held <- code
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, b := a.gqlRaw(`{ status { cache { entries } } }`)
		if code == http.StatusServiceUnavailable && decode[api.Error](t, b).Code == tx.CodeOverloaded.String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not refused while the slot is held: %d %s", code, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, b := a.gqlRaw(`mutation { submit(tx: "00", wait: ACCEPTED) { accepted { id } } }`); code != http.StatusOK || !strings.Contains(string(b), tx.CodeEncoding.String()) {
		t.Fatalf("a mutation while the query slot is held: %d %s", code, b)
	}
	a.n.Resume()
	if code := <-held; code != http.StatusOK {
		t.Fatalf("the held read: %d", code)
	}

	on := startAPI(t, func(c *api.Config) { c.Limits.Introspection = true })
	refused(on, q, 400, api.CodeTooComplex)
	if code, b := on.gqlRaw(`{ __schema { queryType { name } } }`); code != 200 || !strings.Contains(string(b), `"Query"`) {
		t.Fatalf("introspection on: %d %s", code, b)
	}

	shallow := startAPI(t, func(c *api.Config) { c.Limits.GraphQLMaxDepth = 2 })
	refused(shallow, `{ status { shards { shard } } }`, 400, api.CodeTooComplex)
	small := startAPI(t, func(c *api.Config) { c.Limits.GraphQLMaxResponse = 64 })
	refused(small, `{ status { cache { entries hits misses capacity } } }`, 400, api.CodeResponseTooLarge)

	slow := startAPI(t, func(c *api.Config) { c.Limits.GraphQLTimeout = time.Nanosecond })
	refused(slow, `{ status { cache { entries } } }`, 504, api.CodeTimeout)
}

// TestHealth: /healthz answers while the process serves; /readyz is 200
// with every check passing on a running node and 503 naming the paused
// check while the node is paused; /v1/status carries the same checks.
func TestHealth(t *testing.T) {
	a := startAPI(t)
	if code, b := a.do(http.MethodGet, "/healthz", "", nil); code != http.StatusOK {
		t.Fatalf("healthz: %d %s", code, b)
	}
	// Ready once the node leads its shards (it is their only validator).
	var code int
	var b []byte
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if code, b = a.do(http.MethodGet, "/readyz", "", nil); code == http.StatusOK || time.Now().After(deadline) {
			break
		}
	}
	r := decode[api.Readiness](t, b)
	names := map[string]bool{}
	for _, c := range r.Checks {
		names[c.Name] = c.OK
	}
	want := []string{"started", "paused", "broker", "storage", "shard 0", "shard 1"}
	for _, n := range want {
		if !names[n] {
			t.Errorf("check %q: %+v", n, r.Checks)
		}
	}
	if code != http.StatusOK || !r.Ready || r.Code != "" || len(r.Checks) != len(want) {
		t.Fatalf("readyz: %d %s", code, b)
	}
	a.n.Pause()
	code, b = a.do(http.MethodGet, "/readyz", "", nil)
	r = decode[api.Readiness](t, b)
	if code != http.StatusServiceUnavailable || r.Ready || r.Code != api.CodeNotReady || !strings.HasPrefix(r.Error, "paused: ") {
		t.Fatalf("readyz while paused: %d %s", code, b)
	}
	_, b = a.do(http.MethodGet, "/v1/status", "", nil)
	if st := decode[api.Status](t, b); st.Ready || len(st.Checks) != len(want) {
		t.Fatalf("status while paused: %s", b)
	}
	a.n.Resume()
	if code, b := a.do(http.MethodGet, "/readyz", "", nil); code != http.StatusOK {
		t.Fatalf("readyz after resume: %d %s", code, b)
	}
}

// TestWebSocketOutlivesTimeouts: the HTTP read, write and idle timeouts
// end requests, not a WebSocket connection that stays quiet longer.
func TestWebSocketOutlivesTimeouts(t *testing.T) {
	a := startAPI(t, func(c *api.Config) {
		c.Limits.ReadHeaderTimeout = 100 * time.Millisecond
		c.Limits.ReadTimeout = 100 * time.Millisecond
		c.Limits.WriteTimeout = 100 * time.Millisecond
		c.Limits.IdleTimeout = 100 * time.Millisecond
	})
	c, _, err := websocket.Dial(a.ctx, "ws"+strings.TrimPrefix(a.base, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	time.Sleep(500 * time.Millisecond) // five times every timeout
	b, _ := json.Marshal(api.WSRequest{ID: 1, Op: "get", Key: hex.EncodeToString(state.PutKey([]byte("k")))})
	if err := c.Write(a.ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	_, b, err = c.Read(a.ctx)
	if err != nil {
		t.Fatalf("the WebSocket connection after the timeouts: %v", err)
	}
	if m := decode[api.WSMessage](t, b); m.ID != 1 || m.Type != "value" {
		t.Fatalf("answer %s", b)
	}
}

// TestRefusalAnswersTheRequest: a connection over the cap gets its typed
// 503 after it sent its request, not before (Go's HTTP client drops an
// answer that comes before its request as "unsolicited", and the request
// fails without the code), and a real client reads the refusal.
func TestRefusalAnswersTheRequest(t *testing.T) {
	a := startAPI(t, func(c *api.Config) {
		c.Limits.MaxConnsPerIP = 1
		c.Limits.ReadHeaderTimeout = 10 * time.Second
	})
	a.rawConn() // the one slot: a connection that never sends
	over := a.rawConn()
	_ = over.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var b [1]byte
	if n, err := over.Read(b[:]); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the refusal came before the request: %d bytes, %v", n, err)
	}
	fmt.Fprintf(over, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
	if code, e := readRefusal(t, over); code != http.StatusServiceUnavailable || e.Code != api.CodeTooManyConns {
		t.Fatalf("over the cap: %d %+v, want 503 %q", code, e, api.CodeTooManyConns)
	}
	code, body := a.do(http.MethodGet, "/v1/status", "", nil)
	if code != http.StatusServiceUnavailable || decode[api.Error](t, body).Code != api.CodeTooManyConns {
		t.Fatalf("an HTTP client over the cap: %d %s, want 503 %q", code, body, api.CodeTooManyConns)
	}
}
