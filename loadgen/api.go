package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/node/api"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
)

// APIConn is a client of one node's HTTP APIs (node/api): REST, WebSocket
// or GraphQL. Its methods are safe for concurrent use.
type APIConn interface {
	TxConn
	// Close ends the connection; safe to call more than once.
	Close() error
}

// ErrAPI is what every error of the HTTP API clients about the node's
// answer matches (errors.Is); a refusal with a code is an *APIError.
var ErrAPI = errors.New("loadgen: refused by the node's API")

// APIError is a request the node's API refused, with its code (as
// node/api names it: a tx.Code's name, "timeout", "not found", …, or
// "connection" when the WebSocket broke under the request).
type APIError struct {
	Code, Msg string
}

func (e *APIError) Error() string {
	return "loadgen: refused by the node's API: " + e.Code + ": " + e.Msg
}
func (e *APIError) Is(target error) bool { return target == ErrAPI }

// CodeConnectionLost is the APIError code of a WebSocket request whose
// connection broke before its answer.
const CodeConnectionLost = "connection"

func apiError(e api.Error) error { return &APIError{Code: e.Code, Msg: e.Error} }

// Protocol is one of the node's HTTP APIs a client speaks (node/api).
type Protocol string

// The HTTP API protocols; their names are the scenario format's.
const (
	ProtocolREST    Protocol = "rest"
	ProtocolWS      Protocol = "ws"
	ProtocolGraphQL Protocol = "graphql"
)

// ErrProtocol: NewAPIConn was asked for a protocol it does not speak.
var ErrProtocol = errors.New("loadgen: unknown API protocol (rest, ws or graphql)")

// NewAPIConn returns a client of the API at base (http://host:port) in
// protocol. dial, if set, makes every TCP connection (the emulated path);
// nil dials directly. A WebSocket client connects now (and after its
// connection breaks, again in the background with a backoff); REST and
// GraphQL connect on their first request.
func NewAPIConn(ctx context.Context, protocol Protocol, base string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (APIConn, error) {
	tr := &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 4096, IdleConnTimeout: 30 * time.Second}
	hc := &http.Client{Transport: tr}
	switch protocol {
	case ProtocolREST:
		return &restConn{base: base, hc: hc}, nil
	case ProtocolGraphQL:
		return &graphqlConn{restConn{base: base, hc: hc}}, nil
	case ProtocolWS:
		w := newWSConn("ws"+strings.TrimPrefix(base, "http")+"/v1/ws", hc)
		if err := w.dial(ctx); err != nil {
			w.stop()
			return nil, fmt.Errorf("loadgen: WebSocket %s: %w", w.url, err)
		}
		return w, nil
	default:
		return nil, fmt.Errorf("%w: %q", ErrProtocol, protocol)
	}
}

// refusal decodes an api.Error body.
func refusal(status int, body []byte) error {
	var e api.Error
	if json.Unmarshal(body, &e) != nil || e.Code == "" {
		return fmt.Errorf("%w: HTTP %d: %.200s", ErrAPI, status, body)
	}
	return apiError(e)
}

// restConn speaks REST: POST /v1/tx?wait=committed, whose answer streams
// the acceptance and then the receipt.
type restConn struct {
	base string
	hc   *http.Client
}

func (c *restConn) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

func (c *restConn) Submit(ctx context.Context, raw []byte) (Call, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/tx?wait=committed", bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return nil, refusal(res.StatusCode, b)
	}
	return &restCall{body: res.Body, sc: bufio.NewScanner(res.Body)}, nil
}

// restCall reads a submission's streamed events.
type restCall struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

func (r *restCall) next() (api.SubmitEvent, error) {
	var ev api.SubmitEvent
	if !r.sc.Scan() {
		err := r.sc.Err()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		r.body.Close()
		return ev, err
	}
	if err := json.Unmarshal(r.sc.Bytes(), &ev); err != nil {
		r.body.Close()
		return ev, fmt.Errorf("loadgen: REST answer: %w", err)
	}
	if ev.Error != nil {
		r.body.Close()
		return ev, apiError(*ev.Error)
	}
	return ev, nil
}

func (r *restCall) Accepted() (p2p.Accepted, error) {
	ev, err := r.next()
	if err != nil {
		return p2p.Accepted{}, err
	}
	if ev.Accepted == nil {
		r.body.Close()
		return p2p.Accepted{}, fmt.Errorf("%w: no acceptance first", ErrAPI)
	}
	a, err := ev.Accepted.P2P()
	if err != nil {
		r.body.Close()
	}
	return a, err
}

func (r *restCall) Committed() (p2p.Committed, error) {
	ev, err := r.next()
	if err != nil {
		return p2p.Committed{}, err
	}
	r.body.Close()
	if ev.Committed == nil {
		return p2p.Committed{}, fmt.Errorf("%w: no receipt", ErrAPI)
	}
	return ev.Committed.P2P()
}

func (c *restConn) Get(ctx context.Context, stateKey []byte) (p2p.Value, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/state/"+hex.EncodeToString(stateKey), nil)
	if err != nil {
		return p2p.Value{}, err
	}
	var v api.Value
	if err := c.do(req, &v); err != nil {
		return p2p.Value{}, err
	}
	return v.P2P()
}

func (c *restConn) Account(ctx context.Context, pub []byte) (p2p.Value, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/accounts/"+hex.EncodeToString(pub), nil)
	if err != nil {
		return p2p.Value{}, err
	}
	var a api.Account
	if err := c.do(req, &a); err != nil {
		return p2p.Value{}, err
	}
	return accountValue(a.Exists, a.Balance, a.Nonce, a.Root, a.Proof)
}

// accountValue is an account view's answer as a Value of the account's
// state key.
func accountValue(exists bool, balance, nonce uint64, root, proof string) (p2p.Value, error) {
	v, err := (&api.Value{Found: exists, Root: root, Proof: proof}).P2P()
	if err == nil && exists {
		v.Value = state.Account{Balance: balance, Nonce: nonce}.Encode()
	}
	return v, err
}

// do sends req and decodes a 2xx JSON answer into out.
func (c *restConn) do(req *http.Request, out any) error {
	res, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return refusal(res.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// graphqlConn speaks GraphQL: the submit mutation, waiting for the commit
// (one answer for both stages), and the account query. Reads of state keys
// go through REST's /v1/state (GraphQL's value query takes put keys only).
type graphqlConn struct{ restConn }

const graphqlSubmit = `mutation($tx: String!) { submit(tx: $tx) {
	accepted { id shard offset }
	committed { id shard height index root status superseded reason proof } } }`

const graphqlAccount = `query($key: String!) { account(key: $key) { exists balance nonce root proof } }`

func (c *graphqlConn) Account(ctx context.Context, pub []byte) (p2p.Value, error) {
	var res struct {
		Data struct {
			Account *struct {
				Exists     bool   `json:"exists"`
				BalanceStr string `json:"balance"`
				NonceStr   string `json:"nonce"`
				Root       string `json:"root"`
				Proof      string `json:"proof"`
			} `json:"account"`
		} `json:"data"`
		Errors gqlErrors `json:"errors"`
	}
	if err := c.graphql(ctx, graphqlAccount, map[string]any{"key": hex.EncodeToString(pub)}, &res); err != nil {
		return p2p.Value{}, err
	}
	a := res.Data.Account
	if len(res.Errors) > 0 || a == nil {
		return p2p.Value{}, res.Errors.err("no account in the answer")
	}
	balance, err := strconv.ParseUint(a.BalanceStr, 10, 64)
	if err != nil {
		return p2p.Value{}, fmt.Errorf("%w: balance %q", ErrAPI, a.BalanceStr)
	}
	nonce, err := strconv.ParseUint(a.NonceStr, 10, 64)
	if err != nil {
		return p2p.Value{}, fmt.Errorf("%w: nonce %q", ErrAPI, a.NonceStr)
	}
	return accountValue(a.Exists, balance, nonce, a.Root, a.Proof)
}

// graphql posts a query with its variables and decodes the answer into out.
func (c *graphqlConn) graphql(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(api.GraphQLRequest{Query: query, Variables: vars})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/graphql", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return c.do(req, out)
}

// gqlErrors are a GraphQL answer's errors.
type gqlErrors []struct {
	Message string `json:"message"`
}

// err is the error of an answer with errors (the first one's message) or
// without the data asked for (missing).
func (e gqlErrors) err(missing string) error {
	if len(e) > 0 {
		missing = e[0].Message
	}
	return fmt.Errorf("%w: %s", ErrAPI, missing)
}

func (c *graphqlConn) Submit(ctx context.Context, raw []byte) (Call, error) {
	var res struct {
		Data struct {
			Submit *struct {
				Accepted struct {
					ID     string `json:"id"`
					Shard  uint32 `json:"shard"`
					Offset string `json:"offset"`
				} `json:"accepted"`
				Committed *struct {
					api.Receipt
					Height string `json:"height"`
				} `json:"committed"`
			} `json:"submit"`
		} `json:"data"`
		Errors gqlErrors `json:"errors"`
	}
	if err := c.graphql(ctx, graphqlSubmit, map[string]any{"tx": hex.EncodeToString(raw)}, &res); err != nil {
		return nil, err
	}
	if len(res.Errors) > 0 || res.Data.Submit == nil || res.Data.Submit.Committed == nil {
		return nil, res.Errors.err("no submission in the answer")
	}
	s := res.Data.Submit
	var call graphqlCall
	off, err := strconv.ParseInt(s.Accepted.Offset, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: offset %q", ErrAPI, s.Accepted.Offset)
	}
	a := api.Accepted{ID: s.Accepted.ID, Shard: s.Accepted.Shard, Offset: off}
	if call.acc, err = a.P2P(); err != nil {
		return nil, err
	}
	rc := s.Committed.Receipt
	if rc.Height, err = strconv.ParseUint(s.Committed.Height, 10, 64); err != nil {
		return nil, fmt.Errorf("%w: height %q", ErrAPI, s.Committed.Height)
	}
	if call.com, err = rc.P2P(); err != nil {
		return nil, err
	}
	return &call, nil
}

// graphqlCall is a submission GraphQL answered at its commit.
type graphqlCall struct {
	acc p2p.Accepted
	com p2p.Committed
}

func (g *graphqlCall) Accepted() (p2p.Accepted, error)   { return g.acc, nil }
func (g *graphqlCall) Committed() (p2p.Committed, error) { return g.com, nil }
func (g *graphqlCall) untimedAccept()                    {}

// wsConn speaks the WebSocket API over one connection, requests
// multiplexed by id. It is dialed when made; after it breaks, it is dialed
// again in the background with a backoff (as a QUIC Conn is: ConnOptions'
// defaults) and requests fail at once with ErrNotConnected until a dial
// succeeded.
type wsConn struct {
	url     string
	hc      *http.Client
	backoff retry.Backoff      // a copy per redial
	life    context.Context    // ends with Close: stops a redial
	stop    context.CancelFunc // ends life

	mu      sync.Mutex
	c       *websocket.Conn
	connCtx context.Context    // the current connection's: its reader and writes
	cancel  context.CancelFunc // ends connCtx
	pending map[uint64]chan api.WSMessage
	next    uint64
	dialing bool
	closed  bool
	wg      sync.WaitGroup // readers and the redial
}

func newWSConn(url string, hc *http.Client) *wsConn {
	w := &wsConn{url: url, hc: hc, backoff: ConnOptions{}.Backoff()}
	w.life, w.stop = context.WithCancel(context.Background())
	return w
}

// wsDialTimeout bounds one dial; wsWriteTimeout one message's write, on
// the connection's own context: a request's deadline must not close the
// connection every other request shares (websocket.Conn closes on an
// expired write context).
const (
	wsDialTimeout  = 5 * time.Second
	wsWriteTimeout = 10 * time.Second
)

// ErrClosed is returned by a closed APIConn.
var ErrClosed = errors.New("loadgen: connection closed")

// dial connects and installs a new connection (its reader starts).
func (w *wsConn) dial(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, wsDialTimeout)
	defer cancel()
	c, _, err := websocket.Dial(ctx, w.url, &websocket.DialOptions{HTTPClient: w.hc})
	if err != nil {
		return err
	}
	c.SetReadLimit(1 << 20)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		c.CloseNow()
		return ErrClosed
	}
	w.connCtx, w.cancel = context.WithCancel(context.Background())
	w.c, w.pending = c, map[uint64]chan api.WSMessage{}
	w.wg.Add(1)
	go w.read(w.connCtx, c)
	return nil
}

// redialLocked starts the background redial unless one runs or w is
// closed; w.mu is held.
func (w *wsConn) redialLocked() {
	if w.dialing || w.closed {
		return
	}
	w.dialing = true
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		_ = retry.Do(w.life, w.backoff, 0, func(ctx context.Context) error {
			err := w.dial(ctx)
			if errors.Is(err, ErrClosed) {
				return retry.Permanent(err)
			}
			return err
		})
		w.mu.Lock()
		w.dialing = false
		w.mu.Unlock()
	}()
}

// request registers a new id on the current connection; while there is
// none it fails with ErrNotConnected (a redial runs).
func (w *wsConn) request() (c *websocket.Conn, connCtx context.Context, id uint64, ch chan api.WSMessage, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return nil, nil, 0, nil, ErrClosed
	case w.c == nil:
		w.redialLocked()
		return nil, nil, 0, nil, ErrNotConnected
	}
	w.next++
	ch = make(chan api.WSMessage, 2) // at most two answers: accepted, then committed or error
	w.pending[w.next] = ch
	return w.c, w.connCtx, w.next, ch, nil
}

// read dispatches one connection's messages until it breaks; then every
// pending request gets an error and the next request redials.
func (w *wsConn) read(ctx context.Context, c *websocket.Conn) {
	defer w.wg.Done()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			c.CloseNow()
			w.mu.Lock()
			if w.c == c {
				for _, ch := range w.pending {
					select { // never blocks: a request has room for its answers
					case ch <- api.WSMessage{Type: "error", Error: &api.Error{Code: CodeConnectionLost, Error: err.Error()}}:
					default:
					}
				}
				w.cancel()
				w.c, w.pending = nil, nil
				w.redialLocked()
			}
			w.mu.Unlock()
			return
		}
		var m api.WSMessage
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		w.mu.Lock()
		ch := w.pending[m.ID]
		if ch != nil && m.Type != "accepted" {
			delete(w.pending, m.ID) // its last answer
		}
		w.mu.Unlock()
		if ch != nil {
			select { // a server that answers an id more than twice is ignored
			case ch <- m:
			default:
			}
		}
	}
}

func (w *wsConn) forget(id uint64) {
	w.mu.Lock()
	delete(w.pending, id)
	w.mu.Unlock()
}

func (w *wsConn) send(ctx context.Context, req api.WSRequest) (chan api.WSMessage, uint64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	c, connCtx, id, ch, err := w.request()
	if err != nil {
		return nil, 0, err
	}
	req.ID = id
	b, err := json.Marshal(req)
	if err == nil {
		wctx, cancel := context.WithTimeout(connCtx, wsWriteTimeout)
		err = c.Write(wctx, websocket.MessageText, b)
		cancel()
	}
	if err != nil {
		w.forget(id)
		return nil, 0, err
	}
	return ch, id, nil
}

func (w *wsConn) Submit(ctx context.Context, raw []byte) (Call, error) {
	ch, id, err := w.send(ctx, api.WSRequest{Op: "submit", Tx: hex.EncodeToString(raw)})
	if err != nil {
		return nil, err
	}
	return &wsCall{ctx: ctx, ch: ch, w: w, id: id}, nil
}

func (w *wsConn) Account(ctx context.Context, pub []byte) (p2p.Value, error) {
	m, err := w.roundTrip(ctx, api.WSRequest{Op: "account", Key: hex.EncodeToString(pub)}, "account")
	if err != nil {
		return p2p.Value{}, err
	}
	a := m.Account
	return accountValue(a.Exists, a.Balance, a.Nonce, a.Root, a.Proof)
}

func (w *wsConn) Get(ctx context.Context, stateKey []byte) (p2p.Value, error) {
	m, err := w.roundTrip(ctx, api.WSRequest{Op: "get", Key: hex.EncodeToString(stateKey)}, "value")
	if err != nil {
		return p2p.Value{}, err
	}
	return m.Value.P2P()
}

// roundTrip sends a request that has one answer, of type typ.
func (w *wsConn) roundTrip(ctx context.Context, req api.WSRequest, typ string) (api.WSMessage, error) {
	ch, id, err := w.send(ctx, req)
	if err != nil {
		return api.WSMessage{}, err
	}
	defer w.forget(id)
	return wait(ctx, ch, typ)
}

// wait returns the next answer on ch, which must be of type typ.
func wait(ctx context.Context, ch chan api.WSMessage, typ string) (api.WSMessage, error) {
	select {
	case <-ctx.Done():
		return api.WSMessage{}, ctx.Err()
	case m := <-ch:
		switch {
		case m.Type == "error" && m.Error != nil:
			return m, apiError(*m.Error)
		case m.Type != typ || (typ == "accepted" && m.Accepted == nil) || (typ == "committed" && m.Committed == nil) || (typ == "value" && m.Value == nil) || (typ == "account" && m.Account == nil):
			return m, fmt.Errorf("%w: %s answered where %s was due", ErrAPI, m.Type, typ)
		}
		return m, nil
	}
}

// wsCall is a submission's answers on a wsConn.
type wsCall struct {
	ctx context.Context
	ch  chan api.WSMessage
	w   *wsConn
	id  uint64
}

func (c *wsCall) Accepted() (p2p.Accepted, error) {
	m, err := wait(c.ctx, c.ch, "accepted")
	var a p2p.Accepted
	if err == nil {
		a, err = m.Accepted.P2P()
	}
	if err != nil {
		c.w.forget(c.id)
	}
	return a, err
}

func (c *wsCall) Committed() (p2p.Committed, error) {
	defer c.w.forget(c.id)
	m, err := wait(c.ctx, c.ch, "committed")
	if err != nil {
		return p2p.Committed{}, err
	}
	return m.Committed.P2P()
}

func (w *wsConn) Close() error {
	w.mu.Lock()
	c, cancel, wasClosed := w.c, w.cancel, w.closed
	w.closed = true
	w.mu.Unlock()
	if wasClosed {
		return nil
	}
	w.stop()
	if c != nil {
		cancel()
		c.CloseNow()
	}
	w.wg.Wait()
	w.hc.CloseIdleConnections()
	return nil
}
