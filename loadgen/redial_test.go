package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"

	"github.com/rustorium/rustorium/node/api"
	"github.com/rustorium/rustorium/node/p2p"
)

// TestConnRedialBackoff: a Conn redials at once, then waits MinBackoff,
// doubling up to MaxBackoff, until a dial succeeds (synctest's clock makes
// the times exact).
func TestConnRedialBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var at []time.Duration
		dial := func(ctx context.Context) (*p2p.Client, func(), error) {
			at = append(at, time.Since(start))
			if len(at) < 6 {
				return nil, nil, errors.New("down")
			}
			return nil, nil, nil // connected (to nothing: this test sends nothing)
		}
		c := newConn(dial, ConnOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
		c.wg.Add(1)
		go c.redial()
		for c.Redials() == 0 {
			time.Sleep(time.Millisecond)
		}
		c.Close()
		want := []time.Duration{0, 10, 30, 70, 120, 170}
		if len(at) != len(want) {
			t.Fatalf("dials at %v", at)
		}
		for i := range want {
			if at[i] != want[i]*time.Millisecond {
				t.Errorf("dial %d at %v, want %v", i, at[i], want[i]*time.Millisecond)
			}
		}
	})
}

// TestConnCloseStopsRedial: Close ends a redial in its backoff at once.
func TestConnCloseStopsRedial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dials := 0
		dial := func(ctx context.Context) (*p2p.Client, func(), error) {
			dials++
			return nil, nil, errors.New("down")
		}
		c := newConn(dial, ConnOptions{MinBackoff: time.Hour})
		c.wg.Add(1)
		go c.redial()
		time.Sleep(time.Minute)
		start := time.Now()
		c.Close() // waits for the redial
		if d := time.Since(start); d != 0 || dials != 1 {
			t.Errorf("Close took %v after %d dials", d, dials)
		}
	})
}

// TestWSRedialsWithBackoff: after its connection breaks, a WebSocket client
// dials again by itself (no request needed), waiting the backoff between
// failed dials, and serves requests once a dial succeeded.
func TestWSRedialsWithBackoff(t *testing.T) {
	var (
		mu       sync.Mutex
		attempts []time.Time
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts = append(attempts, time.Now())
		n := len(attempts)
		mu.Unlock()
		if n >= 2 && n <= 4 { // down for three dials
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		if n == 1 { // the first connection breaks at once
			c.Close(websocket.StatusGoingAway, "restart")
			return
		}
		for { // refuse every request
			_, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			var req api.WSRequest
			_ = json.Unmarshal(b, &req)
			m, _ := json.Marshal(api.WSMessage{ID: req.ID, Type: "error", Error: &api.Error{Code: "not found", Error: "nothing"}})
			if c.Write(r.Context(), websocket.MessageText, m) != nil {
				return
			}
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := NewAPIConn(ctx, ProtocolWS, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for {
		mu.Lock()
		n := len(attempts)
		mu.Unlock()
		if n >= 5 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d dials: the client does not redial by itself", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The waits between failed dials are 50ms, 100ms and 200ms (at least:
	// a loaded machine may add to them, never take away).
	mu.Lock()
	for i, min := range []time.Duration{50, 100, 200} {
		if gap := attempts[i+2].Sub(attempts[i+1]); gap < min*time.Millisecond {
			t.Errorf("dial %d came %v after the one before, want ≥ %v", i+3, gap, min*time.Millisecond)
		}
	}
	mu.Unlock()
	for {
		_, err := conn.Get(ctx, []byte("k"))
		if apiErr, ok := errors.AsType[*APIError](err); ok && apiErr.Code == "not found" {
			break
		}
		if !errors.Is(err, ErrNotConnected) {
			t.Fatalf("after the redial: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewAPIConnProtocol(t *testing.T) {
	if _, err := NewAPIConn(context.Background(), "quic", "http://127.0.0.1:1", nil); !errors.Is(err, ErrProtocol) {
		t.Errorf("quic: %v, want ErrProtocol", err)
	}
}
