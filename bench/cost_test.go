package bench

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/rustorium/rustorium/reports"
)

// TestCostFromCounters: the counters picked out of two nodes' metrics at
// both ends of measuring, their changes summed over the nodes and divided
// by the committed transactions; a restarted node counts from its restart.
func TestCostFromCounters(t *testing.T) {
	counter := func(name string, v float64) *dto.MetricFamily {
		return &dto.MetricFamily{Name: proto.String(name), Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(v)}}}}
	}
	node := func(incarnation uint64, scale float64) costCounters {
		wire := &dto.MetricFamily{Name: proto.String(costWire), Metric: []*dto.Metric{{
			Label:   []*dto.LabelPair{{Name: proto.String("path"), Value: proto.String("client_quic")}, {Name: proto.String("direction"), Value: proto.String("sent")}},
			Counter: &dto.Counter{Value: proto.Float64(100 * scale)},
		}}}
		sig := &dto.MetricFamily{Name: proto.String(costSigBatch), Metric: []*dto.Metric{{
			Histogram: &dto.Histogram{SampleSum: proto.Float64(30 * scale), SampleCount: proto.Uint64(uint64(20 * scale))},
		}}}
		return countersOf([]*dto.MetricFamily{
			counter(costPerms, 16*scale), counter(costKeysHashed, 9*scale), counter(costPebbleIn, 50*scale), counter(costPebbleOut, 150*scale),
			counter(costPrepares, 4*scale), counter(costPrepared, 6*scale), counter(costWALSyncs, 2*scale), counter(costWALSeconds, 0.001*scale),
			counter("rustorium_other_total", 1e9), wire, sig,
		}, incarnation)
	}
	r := &costReading{source: "registry",
		start: map[string]costCounters{"a": node(1, 1), "b": node(1, 1)},
		end:   map[string]costCounters{"a": node(1, 3), "b": node(2, 1)}, // b restarted: counts 1× from its restart
	}
	res := &reports.Result{Workloads: map[string]*reports.WorkloadResult{"puts": {Stages: map[string]*reports.StageResult{"committed": {Count: 3}}}}}
	c := r.perTx(res)
	// a: 2× the start's counts; b: 1× → 3× over 3 transactions.
	if c == nil || c.Nodes != 2 || c.PoseidonPermsPerTx != 16 || c.KeysHashedPerTx != 9 || c.PebbleBytesPerTx != 150 || c.PebbleWriteAmp != 3 ||
		c.SigBatchMean != 1.5 || c.PrepareBlocksMean != 1.5 || c.WireBytesPerTx.ClientQUIC != 100 || len(c.Notes) != 1 ||
		c.WALSyncsPerTx != 2 || c.WALSyncMeanUs != 500 {
		t.Fatalf("cost %+v", c)
	}
}
