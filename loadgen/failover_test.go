package loadgen

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/tx"
	"github.com/rustorium/rustorium/reports"
)

// commitServer accepts and commits every transaction at once.
type commitServer struct{ echoServer }

func (commitServer) Submit(_ context.Context, _ *tx.Tx, id tx.ID, _ []byte) (p2p.Accepted, <-chan p2p.Committed, error) {
	ch := make(chan p2p.Committed, 1)
	ch <- p2p.Committed{ID: id, Status: p2p.StatusOK}
	return p2p.Accepted{ID: id}, ch, nil
}

// TestSubmitterFailover: a send whose connection's node is down goes to
// the next connection with the same bytes and commits there, counted as a
// resend; without Failover it fails at once; a refusal is not failed over.
func TestSubmitterFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dialTo := func(key ed25519.PrivateKey, srv *p2p.Server) *Conn {
		addr := srv.Addr().String()
		c, err := Dial(ctx, func(ctx context.Context) (*p2p.Client, func(), error) {
			cl, err := p2p.Dial(ctx, addr, p2p.ClientConfig{ServerKey: key.Public().(ed25519.PublicKey)})
			return cl, nil, err
		}, ConnOptions{MinBackoff: time.Hour, MaxBackoff: time.Hour}) // stays down once down
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	_, deadKey, _ := ed25519.GenerateKey(nil)
	dead, err := p2p.Listen(p2p.ServerConfig{Key: deadKey, Ingress: commitServer{}})
	if err != nil {
		t.Fatal(err)
	}
	go dead.Serve(ctx)
	_, liveKey, _ := ed25519.GenerateKey(nil)
	live, err := p2p.Listen(p2p.ServerConfig{Key: liveKey, Ingress: commitServer{}})
	if err != nil {
		t.Fatal(err)
	}
	go live.Serve(ctx)
	defer live.Close()
	down := dialTo(deadKey, dead)
	up := dialTo(liveKey, live)
	// The dead node serves the connection before it closes, so that its
	// Close closes it (a handshake still in flight when a server closes
	// may leave its client to learn of it only at its idle timeout, 30 s:
	// CI saw the send below wait that long).
	cl, err := down.Client()
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Echo(ctx, []byte("up")); err != nil {
		t.Fatal(err)
	}
	dead.Close() // node down: the next call on its connection breaks it
	_, _ = down.Submit(ctx, []byte("x"))

	signer := AccountKeys(1, 1)[0]
	txs, err := (&Puts{ChainID: 0, Signer: signer, Keys: &Sequential{N: 10}, ValueSize: 4}).Generate(ctx, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, failover := range []bool{false, true} {
		obs := &recObserver{reached: map[uint64]reports.Stage{}, failed: map[uint64]error{}}
		var resent []uint64
		q := &Submitter{Conns: []TxConn{down, up}, Txs: Presigned(txs), Observer: obs, Failover: failover, OnResend: func(i uint64) { resent = append(resent, i) }, VerifyEvery: 1000}
		q.Send(ctx, 0, time.Now()) // send 0 goes to the dead node's connection first
		switch {
		case !failover && (obs.failed[0] == nil || !NodeDown(obs.failed[0]) || len(resent) != 0):
			t.Fatalf("without failover: failed %v, resent %v", obs.failed[0], resent)
		case failover && (obs.failed[0] != nil || obs.reached[0] != reports.StageCommitted || len(resent) != 1):
			t.Fatalf("with failover: failed %v, reached %v, resent %v", obs.failed[0], obs.reached[0], resent)
		}
	}
	if NodeDown(&p2p.RejectError{Code: tx.CodeSignature}) || NodeDown(errors.New("other")) {
		t.Fatal("a refusal counts as a node down")
	}
}
