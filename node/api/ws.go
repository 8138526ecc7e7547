package api

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/rustorium/rustorium/node/tx"
)

// The WebSocket API, at GET /v1/ws: JSON text messages both ways. A client
// sends requests, each with an id of its choosing:
//
//	{"id": 1, "op": "submit", "tx": "<hex>"}
//	{"id": 2, "op": "get", "key": "<hex state key>"}
//	{"id": 4, "op": "account", "key": "<hex public key>"}
//	{"id": 3, "op": "subscribe", "topic": "blocks"}
//
// and the server answers with WSMessages carrying the same id: a submit
// gets an "accepted" and then a "committed" message (or an "error" at
// either point), a get a "value", an account an "account" (from the
// account view, as GET /v1/accounts), a subscribe a "subscribed" and then a
// "block" message (id 0) for every block the node commits. Requests are
// served concurrently: answers to different ids may interleave in any
// order. A subscriber that falls more than 1024 blocks behind is sent an
// error with code "lagged" and the connection is closed.

// WSRequest is a client's WebSocket message.
type WSRequest struct {
	ID    uint64 `json:"id"`
	Op    string `json:"op"`              // submit, get, account or subscribe
	Tx    string `json:"tx,omitempty"`    // submit: the transaction's encoding, hex
	Key   string `json:"key,omitempty"`   // get: the state key, hex
	Topic string `json:"topic,omitempty"` // subscribe: "blocks"
}

// WSMessage is a server's WebSocket message: Type says which field is set.
type WSMessage struct {
	ID        uint64    `json:"id"`
	Type      string    `json:"type"` // accepted, committed, value, account, subscribed, block, error
	Accepted  *Accepted `json:"accepted,omitempty"`
	Committed *Receipt  `json:"committed,omitempty"`
	Value     *Value    `json:"value,omitempty"`
	Account   *Account  `json:"account,omitempty"`
	Block     *Block    `json:"block,omitempty"`
	Error     *Error    `json:"error,omitempty"`
}

// wsReadLimit bounds one client message: a hex transaction and the JSON
// around it.
const wsReadLimit = 2*tx.MaxSize + 1024

// wsConn is one WebSocket connection's state.
type wsConn struct {
	s        *Server
	c        *websocket.Conn
	ctx      context.Context // ends when the connection or the server does
	inflight chan struct{}   // a slot per request under way (submissions until their receipt)
	wg       sync.WaitGroup  // the connection's request goroutines
	once     sync.Once       // one subscription per connection
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	// The connection outlives the request's deadlines (Limits): net/http
	// clears them when Accept hijacks it; each write has its own bound.
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.m.requests.WithLabelValues(wsPattern, "refused").Inc()
		return // Accept answered the request
	}
	s.m.requests.WithLabelValues(wsPattern, "101").Inc()
	c.SetReadLimit(wsReadLimit)
	s.m.ws.Inc()
	defer s.m.ws.Dec()
	ctx, cancel := context.WithCancel(r.Context()) // ends at Close too (ServeHTTP)
	wc := &wsConn{s: s, c: c, ctx: ctx, inflight: make(chan struct{}, s.cfg.MaxInflight)}
	defer wc.wg.Wait()
	defer cancel()
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			c.CloseNow()
			return
		}
		var req WSRequest
		if err := json.Unmarshal(msg, &req); err != nil {
			wc.send(WSMessage{Type: "error", Error: &Error{Code: CodeBadRequest, Error: "request: " + err.Error()}})
			continue
		}
		wc.serve(req)
	}
}

// wsWriteTimeout bounds one message's write: a client that stops reading
// is disconnected instead of holding the connection's goroutines.
const wsWriteTimeout = 10 * time.Second

// send writes m; a failed or timed-out write closes the connection
// (websocket.Conn's rule).
func (wc *wsConn) send(m WSMessage) {
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(wc.ctx, wsWriteTimeout)
	defer cancel()
	_ = wc.c.Write(ctx, websocket.MessageText, b)
}

func (wc *wsConn) fail(id uint64, r *refusal) {
	wc.send(WSMessage{ID: id, Type: "error", Error: &r.body})
}

func (wc *wsConn) serve(req WSRequest) {
	switch req.Op {
	case "submit":
		raw, err := hex.DecodeString(req.Tx)
		if err != nil {
			wc.fail(req.ID, refuse(http.StatusBadRequest, CodeBadRequest, "tx: %v", err))
			return
		}
		wc.spawn(req.ID, func() { wc.submit(req.ID, raw) })
	case "get":
		key, err := hex.DecodeString(req.Key)
		if err != nil {
			wc.fail(req.ID, refuse(http.StatusBadRequest, CodeBadRequest, "key: %v", err))
			return
		}
		wc.spawn(req.ID, func() {
			v, ref := wc.s.get(wc.ctx, key)
			if ref != nil {
				wc.fail(req.ID, ref)
				return
			}
			jv := ValueOf(v)
			wc.send(WSMessage{ID: req.ID, Type: "value", Value: &jv})
		})
	case "account":
		wc.spawn(req.ID, func() {
			a, ref := wc.s.account(wc.ctx, req.Key)
			if ref != nil {
				wc.fail(req.ID, ref)
				return
			}
			wc.send(WSMessage{ID: req.ID, Type: "account", Account: &a})
		})
	case "subscribe":
		switch {
		case req.Topic != "blocks":
			wc.fail(req.ID, refuse(http.StatusBadRequest, CodeBadRequest, "topic %q: only blocks", req.Topic))
		case wc.s.cfg.Feed == nil:
			wc.fail(req.ID, refuse(http.StatusNotFound, CodeNotFound, "this node publishes no block feed"))
		default:
			started := false
			wc.once.Do(func() {
				started = true
				wc.wg.Add(1)
				go func() {
					defer wc.wg.Done()
					wc.blocks(req.ID)
				}()
			})
			if !started {
				wc.fail(req.ID, refuse(http.StatusBadRequest, CodeBadRequest, "already subscribed"))
			}
		}
	default:
		wc.fail(req.ID, refuse(http.StatusBadRequest, CodeBadRequest, "op %q: submit, get, account or subscribe", req.Op))
	}
}

// spawn runs a request on its own goroutine, or refuses it as overloaded
// when MaxInflight requests of the connection are under way.
func (wc *wsConn) spawn(id uint64, f func()) {
	select {
	case wc.inflight <- struct{}{}:
	default:
		wc.fail(id, refuse(http.StatusServiceUnavailable, tx.CodeOverloaded.String(), "%d requests already under way on this connection", cap(wc.inflight)))
		return
	}
	wc.wg.Add(1)
	go func() {
		defer wc.wg.Done()
		defer func() { <-wc.inflight }()
		f()
	}()
}

func (wc *wsConn) submit(id uint64, raw []byte) {
	acc, ch, ref := wc.s.submit(wc.ctx, raw)
	if ref != nil {
		wc.fail(id, ref)
		return
	}
	a := AcceptedOf(acc)
	wc.send(WSMessage{ID: id, Type: "accepted", Accepted: &a})
	c, ref := wc.s.receipt(wc.ctx, ch)
	if ref != nil {
		wc.fail(id, ref)
		return
	}
	rc := ReceiptOf(c)
	wc.send(WSMessage{ID: id, Type: "committed", Committed: &rc})
}

// blocks pushes the feed's blocks until the connection ends or lags.
func (wc *wsConn) blocks(id uint64) {
	sub, cancel := wc.s.cfg.Feed.subscribe()
	defer cancel()
	wc.send(WSMessage{ID: id, Type: "subscribed"})
	for {
		select {
		case <-wc.ctx.Done():
			return
		case <-sub.lagged:
			// Tell the client if it still reads, then close at once.
			ctx, cancel := context.WithTimeout(wc.ctx, time.Second)
			b, _ := json.Marshal(WSMessage{Type: "error", Error: &Error{Code: CodeLagged, Error: fmt.Sprintf("more than %d blocks behind: unsubscribed", subscriberBuffer)}})
			_ = wc.c.Write(ctx, websocket.MessageText, b)
			cancel()
			wc.c.CloseNow()
			return
		case ev := <-sub.ch:
			b := BlockOf(ev.Header, ev.IDs)
			wc.send(WSMessage{Type: "block", Block: &b})
		}
	}
}
