package loadgen

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rustorium/rustorium/internal/cpuclock"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/tx"
	"github.com/rustorium/rustorium/reports"
)

// ackServer is a client-protocol server that accepts and commits every
// transaction at once.
type ackServer struct{}

func (ackServer) Submit(context.Context, *tx.Tx, tx.ID, []byte) (p2p.Accepted, <-chan p2p.Committed, error) {
	c := make(chan p2p.Committed, 1)
	c <- p2p.Committed{}
	return p2p.Accepted{}, c, nil
}

// countingObserver counts the commits.
type countingObserver struct {
	hdrObserver
	committed atomic.Int64
	err       atomic.Pointer[error] // the first failure
}

func (o *countingObserver) Committed(uint64, p2p.Committed) { o.committed.Add(1) }

func (o *countingObserver) Failed(i uint64, st reports.Stage, intended time.Time, err error) {
	o.err.CompareAndSwap(nil, &err)
	o.hdrObserver.Failed(i, st, intended, err)
}

// BenchmarkOpenLoopCPU paces sends at 2000/s and 6000/s through the
// Submitter over a real QUIC connection to a server in this process that
// commits at once, and reports the process's CPU a send (client and
// server: getrusage): the send path's own cost at a paced rate, the pacer
// sleeping between sends and the send workers waking for them (the null
// target's benchmark runs them back to back).
func BenchmarkOpenLoopCPU(b *testing.B) {
	for _, rate := range []float64{2000, 6000} {
		b.Run(fmt.Sprintf("rate=%.0f", rate), func(b *testing.B) { openLoopCPU(b, rate) })
	}
}

func openLoopCPU(b *testing.B, rate float64) {
	_, key, _ := ed25519.GenerateKey(nil)
	srv, err := p2p.Listen(p2p.ServerConfig{Key: key, Ingress: ackServer{}, Addr: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	defer func() { cancel(); srv.Close(); <-done }()
	cl, err := p2p.Dial(ctx, srv.Addr().String(), p2p.ClientConfig{ServerKey: key.Public().(ed25519.PublicKey)})
	if err != nil {
		b.Fatal(err)
	}
	conn, err := Dial(ctx, func(context.Context) (*p2p.Client, func(), error) { return cl, nil, nil }, ConnOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	txs := make(Presigned, b.N)
	for i := range txs {
		x := &tx.Tx{Kind: tx.KindPut, Nonce: uint64(i), Key: []byte("k"), Value: []byte("v")}
		x.Sign(key)
		txs[i] = x.Encode()
	}
	start := time.Now()
	rec := reports.NewRecorder(reports.RecorderOptions{Start: start})
	obs := &countingObserver{hdrObserver: hdrObserver{rec.Workload("ack")}}
	sub := &Submitter{Conns: []TxConn{conn}, Txs: txs, Observer: obs, VerifyEvery: 1 << 62}
	ol := &OpenLoop{Pacer: Constant{Rate: rate}, Limit: uint64(b.N)}
	c0, ok := cpuclock.Process()
	if !ok {
		b.Skip("no CPU clock here")
	}
	b.ResetTimer()
	st := ol.Run(ctx, start, time.Hour, sub.Send)
	b.StopTimer()
	c1, _ := cpuclock.Process()
	if st.Started != uint64(b.N) {
		b.Fatalf("started %d of %d", st.Started, b.N)
	}
	if n := obs.committed.Load(); n != int64(b.N) {
		b.Fatalf("committed %d of %d (%v)", n, b.N, *obs.err.Load())
	}
	b.ReportMetric(float64((c1-c0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/send")
}
