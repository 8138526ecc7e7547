package loadgen

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/reports"
)

// readServer serves reads: key "k-bad" comes back with a bad proof, keys
// starting with "k-" are found, others are absent.
type readServer struct{ echoServer }

func (readServer) Get(_ context.Context, key []byte) (p2p.Value, error) {
	v := p2p.Value{Root: [32]byte{7}, Proof: []byte("good")}
	if bytes.HasPrefix(key, []byte("k-")) {
		v.Found, v.Value = true, append([]byte("v-"), key...)
	}
	if string(key) == "k-bad" {
		v.Proof = []byte("bad")
	}
	return v, nil
}

type recObserver struct {
	mu      sync.Mutex
	reached map[uint64]reports.Stage
	failed  map[uint64]error
	txs     int // Accepted or Committed calls: must stay 0
}

func (o *recObserver) Sent(uint64, time.Time, time.Time) {}
func (o *recObserver) Reached(i uint64, st reports.Stage, _, _, _ time.Time) {
	o.mu.Lock()
	o.reached[i] = st
	o.mu.Unlock()
}
func (o *recObserver) Failed(i uint64, _ reports.Stage, _ time.Time, err error) {
	o.mu.Lock()
	o.failed[i] = err
	o.mu.Unlock()
}
func (o *recObserver) Accepted(uint64, p2p.Accepted)   { o.txs++ }
func (o *recObserver) Committed(uint64, p2p.Committed) { o.txs++ }

// TestReaderQUIC: every read's proof is checked against its root with the
// value (nil when absent); a good one reaches the read stage, a bad one
// fails with ErrProof, and nothing reports as a transaction.
func TestReaderQUIC(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(nil)
	srv, err := p2p.Listen(p2p.ServerConfig{Key: key, Ingress: readServer{}})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(context.Background())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := Dial(ctx, func(ctx context.Context) (*p2p.Client, func(), error) {
		cl, err := p2p.Dial(ctx, srv.Addr().String(), p2p.ClientConfig{ServerKey: key.Public().(ed25519.PublicKey)})
		return cl, nil, err
	}, ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	obs := &recObserver{reached: map[uint64]reports.Stage{}, failed: map[uint64]error{}}
	var (
		mu     sync.Mutex
		values = map[string][]byte{}
	)
	q := &Reader{
		Conns: []TxConn{conn}, Observer: obs,
		Keys: [][]byte{[]byte("k-1"), []byte("absent"), []byte("k-bad")},
		Verify: func(root [32]byte, key, value, proof []byte) error {
			mu.Lock()
			values[string(key)] = value
			mu.Unlock()
			if root != [32]byte{7} || string(proof) != "good" {
				return errors.New("mismatch")
			}
			return nil
		},
	}
	for i := range q.Keys {
		q.Send(ctx, uint64(i), time.Now())
	}
	if obs.reached[0] != reports.StageRead || obs.reached[1] != reports.StageRead {
		t.Fatalf("reached %v, failed %v", obs.reached, obs.failed)
	}
	if _, ok := obs.reached[2]; ok || !errors.Is(obs.failed[2], ErrProof) {
		t.Fatalf("bad proof: reached %v, failed %v", obs.reached, obs.failed)
	}
	if string(values["k-1"]) != "v-k-1" || values["absent"] != nil {
		t.Fatalf("verified values %q", values)
	}
	if obs.txs != 0 {
		t.Fatalf("%d reads reported as transactions", obs.txs)
	}
}
