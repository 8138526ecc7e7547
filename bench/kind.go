package bench

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// A workloadKind is one kind of workload, whole: the rules it adds to a
// workload's fields and what it supports (check), the accounts it needs at
// genesis, how it prepares a run's sends, and the stages its sends record.
// Each kind lives in a file of its own (kind_*.go); kinds lists them.
//
// A new kind touches three files besides its tests and docs: its own
// kind_NAME.go, this file's kinds table, and scenarios' Kind enum
// (scenarios/scalars.go), which the YAML decoder and the JSON schema read.
type workloadKind interface {
	// check adds the kind's own rules for w to what scenarios.Validate
	// checked: problems as field path (under the workload's) and message.
	check(w *scenarios.Workload, caps Caps) []problem
	// genesis returns the accounts w's transactions spend from, which the
	// target must create at genesis; nil when it needs none.
	genesis(seed uint64, w *scenarios.Workload) []ed25519.PrivateKey
	// prepare builds w's sends: in.n of them.
	prepare(ctx context.Context, in *prepInput) (*sends, error)
	// stages lists the stages its sends record, in pipeline order.
	stages() []reports.Stage
}

// kinds maps each scenario workload kind to its unit.
var kinds = map[scenarios.Kind]workloadKind{
	scenarios.KindPut:      putKind{},
	scenarios.KindTransfer: transferKind{},
	scenarios.KindGet:      getKind{},
	scenarios.KindQuery:    queryKind{},
}

// problem is a rule a workload breaks: the field under the workload's
// path ("" for the workload itself, else like ".maxrate") and what is wrong.
type problem struct{ field, msg string }

// prepInput is what a kind prepares a workload's sends from.
type prepInput struct {
	w    *scenarios.Workload
	seed uint64 // the workload's: keys, values, accounts derive from it
	n    int    // how many sends
	keys loadgen.Keys
	// traceKeys are a replayed trace's key names, in send order (nil
	// unless the workload replays a trace that names keys).
	traceKeys []string
	// accounts are the run's genesis accounts a read workload reads (the
	// first transfer workload's), or a transfer workload's own; nil when
	// there are none.
	accounts []ed25519.PrivateKey
	// split is this worker's share of the load (the whole by default).
	split loadgen.Split
	// salt separates this run's transactions from other runs' (workers of
	// one split load share it).
	salt uint32
	// chain is the chain id the transactions are signed for.
	chain uint32
	// peak is the workload's highest send rate (per second), which sizes a
	// stream's lead.
	peak float64
	// newKeys draws the workload's keys afresh (a stream re-draws the
	// sequence a plan drew).
	newKeys func() (loadgen.Keys, error)
	// onSigned registers a streamed transaction in the run's ingress
	// index as it is signed (presigned ones are registered when the load
	// starts).
	onSigned func(i uint64, raw []byte)
	printf   func(format string, args ...any)
}

// sends are a workload's prepared sends and how to send them.
type sends struct {
	// txs are the signed transactions (presigned or streamed), nil for
	// reads: the run stamps their ingress and the checker counts them.
	txs loadgen.Signed
	// repeat: the sends may repeat (reads), so a closed loop need not stop
	// when it has sent them all.
	repeat bool
	// of is the whole load's index of each send, when the run sends a
	// worker's share (nil: the whole load, send i is index i).
	of []uint64
	// sender builds the SendFunc over the workload's connections.
	sender func(conns []loadgen.TxConn, obs *observer, chk *checker) loadgen.SendFunc
}

// signer is a put workload's key, from its seed.
func signerOf(seed uint64) ed25519.PrivateKey {
	var s [32]byte
	binary.BigEndian.PutUint64(s[:], seed)
	return ed25519.NewKeyFromSeed(s[:])
}

// signProgress reports signing progress at most once a second.
func signProgress(printf func(string, ...any), n int) func(done int) {
	var last atomic.Int64
	return func(done int) {
		if now := time.Now().UnixNano(); now-last.Load() > int64(time.Second) {
			last.Store(now)
			printf("  signed %d/%d", done, n)
		}
	}
}

// The budget and lead of signing. A workload whose signed transactions
// take at most presignBudget bytes is signed before the clock starts, so
// that no signing runs in the measured phase. A larger one is streamed:
// signed while it runs, at most signLead of its peak rate (at least
// minSignLead, at most maxSignLead transactions) ahead of the sends, so
// that the harness's memory does not grow with the run's length.
var presignBudget = 64 << 20 // a var: tests lower it to stream

const (
	signLead    = 5 * time.Second
	minSignLead = 4096
	maxSignLead = 1 << 20
)

// signedSize estimates one signed transaction's bytes in memory with
// valueSize bytes of value.
func signedSize(valueSize int) int { return 160 + valueSize }

// signTxs signs a workload's in.n transactions of the whole load (its
// split's share of them): all of them now when they fit presignBudget
// (presign), else as a stream the run takes them from (stream).
func signTxs(ctx context.Context, in *prepInput, valueSize int, presign func(ctx context.Context, n int, progress func(int)) ([][]byte, error), stream func(loadgen.StreamOptions) (*loadgen.Stream, error)) (loadgen.Signed, error) {
	own := in.n
	if !in.split.Whole() {
		own = in.n / int(in.split.Count)
	}
	if own*signedSize(valueSize) <= presignBudget {
		in.printf("workload %s: pre-signing %d transactions", in.w.Name, own)
		t0 := time.Now()
		txs, err := presign(ctx, in.n, signProgress(in.printf, own))
		if err != nil {
			return nil, err
		}
		in.printf("workload %s: %d transactions signed in %v", in.w.Name, len(txs), time.Since(t0).Round(time.Millisecond))
		return loadgen.Presigned(txs), nil
	}
	lead := min(maxSignLead, max(minSignLead, int(in.peak*signLead.Seconds())))
	in.printf("workload %s: %d transactions, signed while the run takes them, at most %d ahead (≈%d MiB)", in.w.Name, own, lead, lead*signedSize(valueSize)>>20)
	return stream(loadgen.StreamOptions{Lead: lead, OnSigned: in.onSigned})
}

// readSends are the sends of a read workload: send i reads keys[i mod n]
// (account public keys when accounts), every answer's proof verified. Of
// the whole load's keys it keeps the worker's share.
func readSends(in *prepInput, keys [][]byte, accounts bool) *sends {
	timeout := in.w.Timeout.Std()
	var of []uint64
	if !in.split.Whole() {
		var own [][]byte
		for i, k := range keys {
			if in.split.Owns(uint64(i)) {
				own, of = append(own, k), append(of, uint64(i))
			}
		}
		keys = own
	}
	failover := failoverOf(in.w)
	return &sends{repeat: true, of: of, sender: func(conns []loadgen.TxConn, obs *observer, chk *checker) loadgen.SendFunc {
		return (&loadgen.Reader{Conns: conns, Keys: keys, Accounts: accounts, Observer: obs, Timeout: timeout, Verify: readVerify(chk),
			Failover: failover, OnResend: obs.resend}).Send
	}}
}

// readVerify checks a read's proof against the root it came with; every
// check counts in the checker's proofs, and a verified read's root is
// checked against the committed history at the end.
func readVerify(chk *checker) func(root [32]byte, key, value, proof []byte) error {
	return func(root [32]byte, key, value, proof []byte) error {
		err := storage.VerifyProofBytes(root, key, value, proof)
		chk.proof(err)
		if err == nil {
			chk.read(root)
		}
		return err
	}
}

// noMaxRate is the problem of a max-rate search of a kind that has none.
func noMaxRate(w *scenarios.Workload) []problem {
	if w.MaxRate == nil {
		return nil
	}
	return []problem{{".maxrate", fmt.Sprintf("a max-rate search of a %s workload is not supported (puts only)", w.Kind)}}
}

// failoverOf is the workload's failover: on unless it says false.
func failoverOf(w *scenarios.Workload) bool { return w.Failover == nil || *w.Failover }

// splitOf is the sends' of: the whole load's indexes of a worker's share,
// nil for the whole load.
func splitOf(in *prepInput, of []uint64) []uint64 {
	if in.split.Whole() {
		return nil
	}
	return of
}
