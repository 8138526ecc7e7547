package loadgen

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/reports"
)

// nullConn is the null target: it takes every transaction and answers its
// acceptance and its commit at once, so that a benchmark over it measures
// the load generator alone (pacer, dispatch, send path, recording).
type nullConn struct{}

type nullCall struct{}

func (nullConn) Submit(context.Context, []byte) (Call, error)       { return nullCall{}, nil }
func (nullConn) Get(context.Context, []byte) (p2p.Value, error)     { return p2p.Value{}, nil }
func (nullConn) Account(context.Context, []byte) (p2p.Value, error) { return p2p.Value{}, nil }
func (nullCall) Accepted() (p2p.Accepted, error)                    { return p2p.Accepted{}, nil }
func (nullCall) Committed() (p2p.Committed, error)                  { return p2p.Committed{}, nil }

// hdrObserver records into a reports recorder, as a run's observer does.
type hdrObserver struct{ w *reports.WorkloadRecorder }

func (o hdrObserver) Sent(_ uint64, intended, actual time.Time) { o.w.Sent(intended, actual) }
func (o hdrObserver) Reached(_ uint64, st reports.Stage, intended, actual, at time.Time) {
	o.w.Record(st, intended, actual, at)
}
func (o hdrObserver) Failed(_ uint64, _ reports.Stage, intended time.Time, _ error) {
	o.w.Error("failed", intended, time.Now())
}
func (hdrObserver) Accepted(uint64, p2p.Accepted)   {}
func (hdrObserver) Committed(uint64, p2p.Committed) {}

// BenchmarkOpenLoopNullTarget drives the open loop as fast as it dispatches
// (a pacer far above what it can do) through the Submitter against the
// null target, recording every stage as a run does: sends/s/core is what
// the generator can offer on this machine, #14's yardstick (≥ 50k) for a
// generator that is never the bottleneck.
func BenchmarkOpenLoopNullTarget(b *testing.B) {
	raw := make([]byte, 300)
	txs := make(Presigned, b.N)
	for i := range txs {
		txs[i] = raw
	}
	start := time.Now()
	rec := reports.NewRecorder(reports.RecorderOptions{Start: start})
	sub := &Submitter{Conns: []TxConn{nullConn{}}, Txs: txs, Observer: hdrObserver{rec.Workload("null")}, Timeout: time.Minute}
	ol := &OpenLoop{Pacer: Constant{Rate: 1e9}, Limit: uint64(b.N), MaxInFlight: 1 << 30}
	b.ResetTimer()
	st := ol.Run(context.Background(), start, time.Hour, sub.Send)
	el := time.Since(start)
	b.StopTimer()
	if st.Started != uint64(b.N) {
		b.Fatalf("started %d of %d", st.Started, b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds()/float64(runtime.GOMAXPROCS(0)), "sends/s/core")
}
