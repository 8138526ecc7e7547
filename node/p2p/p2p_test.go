package p2p

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/rustorium/rustorium/node/tx"
)

// fakeLog is an Ingress that assigns offsets and commits every transaction
// as soon as it is accepted. It stands in for the node, not for a library.
type fakeLog struct {
	mu     sync.Mutex
	offset int64
	got    []tx.ID
}

func (f *fakeLog) Submit(_ context.Context, t *tx.Tx, id tx.ID, _ []byte) (Accepted, <-chan Committed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, id)
	off := f.offset
	f.offset++
	ch := make(chan Committed, 1)
	ch <- Committed{ID: id, Shard: 1, Height: uint64(off + 1), Proof: []byte("proof"), Root: [32]byte{1}}
	close(ch)
	return Accepted{ID: id, Shard: 1, Offset: off}, ch, nil
}

func key(seed byte) ed25519.PrivateKey {
	var s [32]byte
	s[0] = seed
	return ed25519.NewKeyFromSeed(s[:])
}

func startServer(t testing.TB, in Ingress) *Server {
	t.Helper()
	return startServerWith(t, ServerConfig{Key: key(1), ChainID: 7, Ingress: in})
}

// startServerWith serves cfg until the test ends.
func startServerWith(t testing.TB, cfg ServerConfig) *Server {
	t.Helper()
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		s.Close()
		s.Close() // twice is fine
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

func dial(t testing.TB, s *Server, cfg ClientConfig) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, s.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip submits raw and reads its stream to the end: accepted, then
// committed.
func roundTrip(ctx context.Context, c *Client, raw []byte) error {
	call, err := c.Submit(ctx, raw)
	if err == nil {
		_, err = call.Accepted()
	}
	if err == nil {
		_, err = call.Committed()
	}
	return err
}

func put(chain uint32, k string) []byte {
	x := &tx.Tx{Kind: tx.KindPut, ChainID: chain, Key: []byte(k), Value: []byte("v")}
	x.Sign(key(9))
	return x.Encode()
}

func TestSubmitReceipts(t *testing.T) {
	log := &fakeLog{}
	s := startServer(t, log)
	c := dial(t, s, ClientConfig{ServerKey: key(1).Public().(ed25519.PublicKey)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		raw := put(7, string(rune('a'+i)))
		call, err := c.Submit(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		acc, err := call.Accepted()
		if err != nil {
			t.Fatal(err)
		}
		if acc.ID != tx.IDOf(raw) || acc.Offset != int64(i) {
			t.Fatalf("accepted %+v", acc)
		}
		com, err := call.Committed()
		if err != nil {
			t.Fatal(err)
		}
		if com.ID != acc.ID || com.Height != uint64(i+1) || string(com.Proof) != "proof" {
			t.Fatalf("committed %+v", com)
		}
	}
	if err := c.Echo(ctx, []byte("ping")); err != nil {
		t.Fatal(err)
	}
}

func TestBadInputClosesOnlyThatStream(t *testing.T) {
	log := &fakeLog{}
	s := startServer(t, log)
	c := dial(t, s, ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	good := put(7, "good")
	badSig := append([]byte(nil), good...)
	badSig[len(badSig)-1] ^= 1
	cases := []struct {
		name string
		send func() (*Call, error)
		code tx.Code
	}{
		{"bad signature", func() (*Call, error) { return c.Submit(ctx, badSig) }, tx.CodeSignature},
		{"wrong chain", func() (*Call, error) { return c.Submit(ctx, put(8, "x")) }, tx.CodeChainID},
		{"garbage", func() (*Call, error) { return c.Submit(ctx, []byte("garbage")) }, tx.CodeEncoding},
		{"unknown type", func() (*Call, error) { return rawStream(ctx, c, AppendFrame(nil, 99, []byte("x"))) }, tx.CodeEncoding},
		{"oversized frame", func() (*Call, error) {
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], DefaultMaxFrame+1)
			return rawStream(ctx, c, hdr[:])
		}, tx.CodeEncoding},
		{"truncated frame", func() (*Call, error) { return rawStream(ctx, c, []byte{0, 0, 0, 9, 1, 2}) }, tx.CodeEncoding},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			call, err := tc.send()
			if err != nil {
				t.Fatal(err)
			}
			_, err = call.Accepted()
			var rej *RejectError
			if !errors.As(err, &rej) || rej.Code != tc.code {
				t.Fatalf("got %v, want reject %v", err, tc.code)
			}
		})
	}
	// The connection and the server still serve good transactions.
	call, err := c.Submit(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call.Accepted(); err != nil {
		t.Fatalf("after bad input: %v", err)
	}
	log.mu.Lock()
	got := len(log.got)
	log.mu.Unlock()
	if got != 1 {
		t.Fatalf("ingress saw %d transactions, want only the good one", got)
	}
}

func rawStream(ctx context.Context, c *Client, b []byte) (*Call, error) {
	st, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := st.Write(b); err != nil {
		return nil, err
	}
	st.Close()
	return &Call{st: st, maxFrame: c.maxFrame}, nil
}

func TestPinnedServerKey(t *testing.T) {
	s := startServer(t, &fakeLog{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Dial(ctx, s.Addr().String(), ClientConfig{ServerKey: key(2).Public().(ed25519.PublicKey)})
	if err == nil || !errors.Is(err, ErrPeerKey) && !bytes.Contains([]byte(err.Error()), []byte("not pinned")) {
		t.Fatalf("dial to an unpinned key: %v", err)
	}
	c := dial(t, s, ClientConfig{})
	if !bytes.Equal(c.ServerKey(), key(1).Public().(ed25519.PublicKey)) {
		t.Fatal("server key not reported")
	}
}

func TestFrameLimits(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, MsgSubmit, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadFrame(bytes.NewReader(buf.Bytes()), 100); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("limit: %v", err)
	}
	typ, p, err := ReadFrame(bytes.NewReader(buf.Bytes()), 101)
	if err != nil || typ != MsgSubmit || len(p) != 100 {
		t.Fatalf("exact limit: %v %v %d", err, typ, len(p))
	}
	if _, _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 0}), 10); !errors.Is(err, ErrFrameEmpty) {
		t.Fatalf("empty: %v", err)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	c := Committed{ID: tx.ID{1}, Shard: 2, Height: 3, Index: 4, Root: [32]byte{5}, Status: StatusFailed, Superseded: true, Reason: "nonce", Proof: []byte{6, 7}}
	got, err := DecodeCommitted(c.AppendTo(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.Shard != 2 || got.Height != 3 || got.Index != 4 || got.Root != c.Root ||
		got.Status != StatusFailed || !got.Superseded || got.Reason != "nonce" || !bytes.Equal(got.Proof, c.Proof) {
		t.Fatalf("committed round trip: %+v", got)
	}
	a := Accepted{ID: tx.ID{9}, Shard: 3, Offset: 1 << 40}
	if ga, err := DecodeAccepted(a.AppendTo(nil)); err != nil || ga != a {
		t.Fatalf("accepted round trip: %+v %v", ga, err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, MsgSubmit, []byte("tx")))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add([]byte{0, 0, 0, 5, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, p, err := ReadFrame(bytes.NewReader(b), 1024)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(b, AppendFrame(nil, typ, p)) {
			t.Fatal("frame does not re-encode to its input")
		}
	})
}

func FuzzDecodeMessages(f *testing.F) {
	c := Committed{ID: tx.ID{1}, Reason: "r", Proof: []byte{1}}
	f.Add(c.AppendTo(nil))
	a := Accepted{Shard: 1}
	f.Add(a.AppendTo(nil))
	e := RejectError{Code: tx.CodeSignature, Msg: "bad"}
	f.Add(e.AppendTo(nil))
	v := Value{Found: true, Value: []byte("v"), Proof: []byte{1, 2}}
	f.Add(v.AppendTo(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := DecodeCommitted(b); err == nil {
			if !bytes.Equal(c.AppendTo(nil), b) {
				t.Fatal("committed does not re-encode to its input")
			}
		}
		if a, err := DecodeAccepted(b); err == nil && !bytes.Equal(a.AppendTo(nil), b) {
			t.Fatal("accepted does not re-encode to its input")
		}
		_, _ = DecodeError(b)
		if v, err := DecodeValue(b); err == nil && !bytes.Equal(v.AppendTo(nil), b) {
			t.Fatal("value does not re-encode to its input")
		}
	})
}

// TestConcurrentSubmitsMixedSignatures sends good and bad signatures at
// once: every good one must be logged and every bad one refused with
// CodeSignature, nothing else, however the checker happens to batch them
// (that batches form is TestVerifierBatchesWaitingRequests' job).
func TestConcurrentSubmitsMixedSignatures(t *testing.T) {
	log := &fakeLog{}
	s := startServer(t, log)
	c := dial(t, s, ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const n = 200
	raws := make([][]byte, n)
	bad := make([]bool, n)
	for i := range raws {
		raws[i] = put(7, fmt.Sprint("k", i))
		if i%3 == 1 {
			raws[i][len(raws[i])-1-i%64] ^= 1 // somewhere in the signature
			bad[i] = true
		}
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range raws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call, err := c.Submit(ctx, raws[i])
			if err == nil {
				_, err = call.Accepted()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	want := map[tx.ID]bool{}
	for i, err := range errs {
		var rej *RejectError
		switch {
		case bad[i] && (!errors.As(err, &rej) || rej.Code != tx.CodeSignature):
			t.Errorf("tx %d (bad signature): %v, want a CodeSignature rejection", i, err)
		case !bad[i] && err != nil:
			t.Errorf("tx %d (good): %v", i, err)
		case !bad[i]:
			want[tx.IDOf(raws[i])] = true
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if len(log.got) != len(want) {
		t.Fatalf("logged %d transactions, want %d", len(log.got), len(want))
	}
	for _, id := range log.got {
		if !want[id] {
			t.Fatalf("logged %x, which has a bad signature", id[:4])
		}
	}
}

// TestMaxConns: a client connection over ServerConfig.MaxConns is closed
// with CodeTooManyConns; closing one gives its slot back.
func TestMaxConns(t *testing.T) {
	s, err := Listen(ServerConfig{Key: key(1), ChainID: 7, Ingress: &fakeLog{}, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { s.Close(); <-done }()
	c1, c2 := dial(t, s, ClientConfig{}), dial(t, s, ClientConfig{})
	for _, c := range []*Client{c1, c2} { // both counted
		if err := c.Echo(ctx, []byte("a")); err != nil {
			t.Fatal(err)
		}
	}
	c3 := dial(t, s, ClientConfig{})
	var aerr *quic.ApplicationError
	if err := c3.Echo(ctx, []byte("c")); !errors.As(err, &aerr) || aerr.ErrorCode != CodeTooManyConns {
		t.Fatalf("third connection: %v, want application error %d", err, CodeTooManyConns)
	}
	c1.Close()
	for {
		c := dial(t, s, ClientConfig{})
		if c.Echo(ctx, []byte("d")) == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no slot back after a connection closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMaxClientStreams: over all client connections, at most
// ServerConfig.MaxClientStreams streams are served at once; one more is
// answered overloaded at once, on no goroutine of its own; a stream whose
// client gave up (Call.Abort) gives its place back without waiting for a
// receipt that never comes.
func TestMaxClientStreams(t *testing.T) {
	const max = 4
	s := startServerWith(t, ServerConfig{Key: key(1), ChainID: 7, Ingress: &stalledLog{}, MaxClientStreams: max})
	c1, c2 := dial(t, s, ClientConfig{}), dial(t, s, ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var held []*Call
	for i := range max { // accepted, never committed: each holds its stream
		c := []*Client{c1, c2}[i%2]
		call, err := c.Submit(ctx, put(7, fmt.Sprint("held", i)))
		if err == nil {
			_, err = call.Accepted()
		}
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, call)
	}
	for i := range 50 {
		err := roundTrip(ctx, []*Client{c1, c2}[i%2], put(7, fmt.Sprint("over", i)))
		var rej *RejectError
		if !errors.As(err, &rej) || rej.Code != tx.CodeOverloaded {
			t.Fatalf("stream %d over the limit: %v, want overloaded", i, err)
		}
	}
	if n := goroutinesIn("p2p.(*Server).submit("); n != max {
		t.Fatalf("%d goroutines serving submits, want %d (the refused streams run on none)", n, max)
	}
	held[0].Abort()
	for { // its place comes back once the server sees the stream stopped
		call, err := c1.Submit(ctx, put(7, "after"))
		if err == nil {
			_, err = call.Accepted()
		}
		if err == nil {
			break
		}
		var rej *RejectError
		if !errors.As(err, &rej) || rej.Code != tx.CodeOverloaded || ctx.Err() != nil {
			t.Fatalf("after an abort: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// goroutinesIn counts the goroutines with fn on their stack.
func goroutinesIn(fn string) int {
	n := 0
	for _, g := range goroutineStacks() {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}

// goroutineStacks is every goroutine's stack trace, one each.
func goroutineStacks() []string {
	buf := make([]byte, 1<<22)
	return strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n")
}

// stalledLog accepts every transaction and never commits it.
type stalledLog struct{ fakeLog }

func (f *stalledLog) Submit(ctx context.Context, t *tx.Tx, id tx.ID, raw []byte) (Accepted, <-chan Committed, error) {
	acc, _, err := f.fakeLog.Submit(ctx, t, id, raw)
	return acc, make(chan Committed), err
}

// TestSubmitEndsWithItsContext: a call is bounded by its context (not by a
// stream deadline): the wait for a receipt that never comes fails with the
// context's error once it ends, and the connection still serves the next
// call.
func TestSubmitEndsWithItsContext(t *testing.T) {
	s := startServer(t, &stalledLog{})
	c := dial(t, s, ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	call, err := c.Submit(ctx, put(7, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call.Accepted(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := call.Committed(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Committed after the context ended: %v, want context.DeadlineExceeded", err)
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Fatalf("Committed returned %v after its context ended", waited)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	call, err = c.Submit(ctx2, put(7, "b"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := call.Accepted(); err != nil {
		t.Fatal(err)
	}
	cancel2()
	if _, err := call.Committed(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Committed after cancel: %v, want context.Canceled", err)
	}
	if err := c.Echo(context.Background(), []byte("still up")); err != nil {
		t.Fatal(err)
	}
}

// gatedLog accepts a transaction only once its gate opens, and counts
// those waiting at it.
type gatedLog struct {
	fakeLog
	gate    chan struct{}
	waiting chan struct{} // one value per Submit that reached the gate
}

func (g *gatedLog) Submit(ctx context.Context, t *tx.Tx, id tx.ID, raw []byte) (Accepted, <-chan Committed, error) {
	g.waiting <- struct{}{}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return Accepted{}, nil, ctx.Err()
	}
	return g.fakeLog.Submit(ctx, t, id, raw)
}

// liveStreamWorkers lists the goroutines serving client streams (the
// workers of serveConn's internal/workers.Pool, the only pool of this
// package), by goroutine id, with their state.
func liveStreamWorkers() map[string]string {
	out := map[string]string{}
	for _, g := range goroutineStacks() {
		if !strings.Contains(g, "internal/workers.(*Pool[") || !strings.Contains(g, "]).worker(") {
			continue
		}
		head, _, _ := strings.Cut(g, "\n") // goroutine 42 [chan receive]:
		id, state, _ := strings.Cut(strings.TrimPrefix(head, "goroutine "), " ")
		out[id] = state
	}
	return out
}

// waitWorkers polls until the stream workers satisfy ok, or fails after
// 10 s with what they were.
func waitWorkers(t *testing.T, what string, ok func(map[string]string) bool) map[string]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w := liveStreamWorkers()
		if ok(w) {
			return w
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream workers never %s: %v", what, w)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestStreamWorkers: a connection's streams are served at once however
// many are in flight (a busy worker holds none back); afterwards
// idleStreamWorkers goroutines stay and serve the next streams (no new
// goroutine, so no stack to grow again); they end with the connection.
func TestStreamWorkers(t *testing.T) {
	const n = 3 * idleStreamWorkers
	log := &gatedLog{gate: make(chan struct{}), waiting: make(chan struct{}, n)}
	s := startServer(t, log)
	c := dial(t, s, ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- roundTrip(ctx, c, put(7, fmt.Sprint("k", i))) }()
	}
	for i := range n { // every stream reaches the node while all are held
		select {
		case <-log.waiting:
		case <-ctx.Done():
			t.Fatalf("%d of %d concurrent streams reached the node: the others wait for a worker", i, n)
		}
	}
	close(log.gate)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	idle := waitWorkers(t, fmt.Sprintf("settled at %d idle", idleStreamWorkers), func(w map[string]string) bool {
		if len(w) != idleStreamWorkers {
			return false
		}
		for _, state := range w {
			if state != "[chan receive]:" {
				return false
			}
		}
		return true
	})
	for i := range 20 { // one at a time: each goes to an idle worker
		if err := roundTrip(ctx, c, put(7, fmt.Sprint("s", i))); err != nil {
			t.Fatal(err)
		}
	}
	after := waitWorkers(t, "idle again", func(w map[string]string) bool { return len(w) == idleStreamWorkers })
	for id := range after {
		if _, ok := idle[id]; !ok {
			t.Fatalf("sequential streams started worker %s (idle before: %v)", id, idle)
		}
	}
	c.Close()
	waitWorkers(t, "ended with their connection", func(w map[string]string) bool { return len(w) == 0 })
}
