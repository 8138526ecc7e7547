package loadgen

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/tx"
)

// echoServer is a client-protocol server that serves Echo only.
type echoServer struct{}

func (echoServer) Submit(context.Context, *tx.Tx, tx.ID, []byte) (p2p.Accepted, <-chan p2p.Committed, error) {
	return p2p.Accepted{}, nil, errors.New("no")
}

func serve(t *testing.T, key ed25519.PrivateKey, addr string) *p2p.Server {
	t.Helper()
	var (
		srv *p2p.Server
		err error
	)
	for range 40 { // the port was just released
		if srv, err = p2p.Listen(p2p.ServerConfig{Key: key, Ingress: echoServer{}, Addr: addr}); err == nil {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(context.Background())
	return srv
}

// TestConnRedials: when the server goes away, a call fails with an error
// ConnBroken recognises, the Conn (told by its own Echo) drops the client and fails fast with
// ErrNotConnected while the server is down, and is connected again soon
// after the server is back on the same address.
func TestConnRedials(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	srv := serve(t, key, "127.0.0.1:0")
	addr := srv.Addr().String()
	dial := func(ctx context.Context) (*p2p.Client, func(), error) {
		c, err := p2p.Dial(ctx, addr, p2p.ClientConfig{ServerKey: key.Public().(ed25519.PublicKey)})
		return c, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := Dial(ctx, dial, ConnOptions{MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, DialTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cl, err := conn.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Echo(ctx, []byte("hi")); err != nil {
		t.Fatal(err)
	}

	srv.Close()
	// The server closed the connection: the next call fails as broken,
	// and the Conn's own Echo (the loaded floors' probe, which sends
	// nothing else) reports it, so the Conn starts redialing.
	var callErr error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if callErr = conn.Echo(ctx, []byte("hi")); callErr != nil {
			break
		}
	}
	if !ConnBroken(callErr) {
		t.Fatalf("after the server closed: %v (ConnBroken false)", callErr)
	}
	if _, err := conn.Client(); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("while down: %v, want ErrNotConnected", err)
	}
	time.Sleep(300 * time.Millisecond) // a few failed redials
	if conn.Redials() != 0 {
		t.Fatal("redialed a server that is down")
	}

	srv = serve(t, key, addr)
	defer srv.Close()
	var cl2 *p2p.Client
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cl2, err = conn.Client(); err == nil {
			break
		}
	}
	if err != nil || cl2 == cl || conn.Redials() != 1 {
		t.Fatalf("after the restart: %v, redials %d", err, conn.Redials())
	}
	if err := cl2.Echo(ctx, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	// A failure that is not the connection's keeps the client.
	conn.Failed(cl2, context.DeadlineExceeded)
	if c, err := conn.Client(); err != nil || c != cl2 {
		t.Fatalf("a deadline dropped the client: %v", err)
	}
	conn.Close()
	if _, err := conn.Client(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}
