package calib

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node/api"
	"github.com/rustorium/rustorium/node/cache"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/health"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/sigverify"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
)

// The HTTP API protocols a calibration prices (Ops.API), as the scenario
// format names them (a workload's client).
var apiProtocols = []loadgen.Protocol{loadgen.ProtocolREST, loadgen.ProtocolWS, loadgen.ProtocolGraphQL}

// apiProofLevels is the depth of the proof in the measured receipts: about
// a committed put's in a tree of a million keys.
const apiProofLevels = 20

// apiBackend is the node behind the API measurements: it answers every
// submission at once, accepted and committed (a receipt with a proof of
// apiProofLevels siblings), so that they time the API's own work — HTTP,
// JSON, the WebSocket's framing, the admission's decoding — and its
// signature check, which is then taken out (Ed25519VerifyNs).
type apiBackend struct {
	v     *sigverify.Verifier
	proof []byte
}

func (b *apiBackend) Submit(_ context.Context, _ *tx.Tx, id tx.ID, _ []byte) (p2p.Accepted, <-chan p2p.Committed, error) {
	ch := make(chan p2p.Committed, 1)
	ch <- p2p.Committed{ID: id, Height: 1, Status: p2p.StatusOK, Proof: b.proof}
	close(ch)
	return p2p.Accepted{ID: id}, ch, nil
}

func (b *apiBackend) Get(context.Context, []byte) (p2p.Value, error) {
	return p2p.Value{}, errors.New("calib: the API measurements do not read")
}
func (b *apiBackend) Shards() int                                { return 1 }
func (b *apiBackend) Views() *cache.Views                        { return nil }
func (b *apiBackend) ShardMeta(uint32) (storage.Meta, error)     { return storage.Meta{}, nil }
func (b *apiBackend) Verifier() *sigverify.Verifier              { return b.v }
func (b *apiBackend) Ready(context.Context) []health.Check       { return nil }
func (b *apiBackend) Receipt(tx.ID) (p2p.Committed, bool, error) { return p2p.Committed{}, false, nil }
func (b *apiBackend) Block(uint32, uint64) (consensus.Header, bool, error) {
	return consensus.Header{}, false, nil
}

// api measures each HTTP API protocol through the node's API server on
// loopback: a put's submission round trip until its receipt (one at a
// time), and the CPU per submission over 64 concurrent callers (the
// process's, halved as for QUIC since the client runs in it too, less the
// server's signature check).
func (m *measurer) api(ctx context.Context) error {
	var seed [32]byte
	seed[0] = 7
	key := ed25519.NewKeyFromSeed(seed[:])
	const chain = 1
	x := &tx.Tx{Kind: tx.KindPut, ChainID: chain, Key: []byte("calib-api"), Value: make([]byte, 32)}
	x.Sign(key)
	raw := x.Encode()
	v := sigverify.New(sigverify.Options{})
	defer v.Close()
	srv, err := api.New(api.Config{Backend: &apiBackend{v: v, proof: make([]byte, 32*apiProofLevels+8)}, ChainID: chain})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(sctx, ln) }()
	defer func() { cancel(); _ = srv.Close(); <-done }()
	base := "http://" + ln.Addr().String()
	for _, proto := range apiProtocols {
		cost, err := m.apiProtocol(ctx, proto, base, raw)
		if err != nil {
			return fmt.Errorf("%s: %w", proto, err)
		}
		m.c.Ops.API = append(m.c.Ops.API, cost)
	}
	return nil
}

func (m *measurer) apiProtocol(ctx context.Context, proto loadgen.Protocol, base string, raw []byte) (APICost, error) {
	cl, err := loadgen.NewAPIConn(ctx, proto, base, nil)
	if err != nil {
		return APICost{}, err
	}
	defer cl.Close()
	// submit sends one put until its receipt, adding the time to its
	// accepted answer to accepted when that is not nil.
	submit := func(accepted *[]time.Duration) error {
		t0 := time.Now()
		call, err := cl.Submit(ctx, raw)
		if err != nil {
			return err
		}
		if _, err := call.Accepted(); err != nil {
			return err
		}
		if accepted != nil {
			*accepted = append(*accepted, time.Since(t0))
		}
		_, err = call.Committed()
		return err
	}
	var accepted []time.Duration
	ds, err := SampleRoundTrips(ctx, SampleOptions{Gap: BaseGap, Max: m.n(50, 500), Min: m.n(20, 100), Budget: time.Duration(m.n(1, 3)) * time.Second},
		func() error { return submit(&accepted) })
	if err != nil {
		return APICost{}, err
	}
	acc := latencyOf(accepted)
	calls := concurrentCallers * m.n(5, 50)
	cpu, err := concurrentCPU(calls, func() error { return submit(nil) })
	if err != nil {
		return APICost{}, err
	}
	n := float64(calls)
	req := (float64(cpu.Nanoseconds()) - n*m.c.Ops.Ed25519VerifyNs) / n / 2
	return APICost{Protocol: string(proto), RoundTrip: latencyOf(ds), Accepted: &acc, RequestNs: max(req, 1)}, nil
}
