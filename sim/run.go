package sim

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/rustorium/rustorium/calib"
	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
	"github.com/rustorium/rustorium/sim/des"
)

// ErrUnsupported reports a scenario feature the simulator does not model;
// the wrapping text names it.
var ErrUnsupported = errors.New("sim: not modelled")

// Host says where the simulated cluster runs.
type Host string

// Hosts.
const (
	// Dedicated gives every node cluster.cores_per_node cores and a disk of
	// its own, and every broker machine its own cores and disk; the load
	// generator costs nothing. The default.
	Dedicated Host = "dedicated"
	// Shared puts every node, the broker and the load generator on one
	// machine with the calibration's cores and one disk, as `rustorium run`
	// does on the machine it was calibrated on (what make validate-sim
	// compares).
	Shared Host = "shared"
)

// Options configures Run.
type Options struct {
	// Calib prices every operation. Required.
	Calib *calib.Calibration
	// CalibFile names the calibration in the result. Default: "".
	CalibFile string
	// Host is where the cluster runs. Default (""): Dedicated.
	Host Host
	// Progress, if set, receives a line per simulated second of load.
	Progress io.Writer
	// BackgroundLoad is, with Host Shared, the mean number of other
	// processes' threads that want the host's cores meanwhile (the load
	// average other work puts on the machine). A fair scheduler gives the
	// cluster's busy threads cores/(cores+BackgroundLoad) of the cores
	// then, so every CPU job on the host takes (cores+BackgroundLoad)/cores
	// its calibrated time. Default 0: none.
	BackgroundLoad float64
}

// Outcome is a simulation's result and histograms, ready for
// reports.Write.
type Outcome struct {
	Result   *reports.Result
	Snapshot *reports.Snapshot
}

// Run simulates the scenario in virtual time: the same workloads, cluster,
// network and timeline as `rustorium run`, each operation priced from the
// calibration. The same scenario, seed and calibration give the same
// result (but for Simulation.WallS).
func Run(ctx context.Context, sc *scenarios.Scenario, opts Options) (*Outcome, error) {
	if opts.Calib == nil {
		return nil, errors.New("sim: Options.Calib is required")
	}
	if err := opts.Calib.Validate(); err != nil {
		return nil, err
	}
	if opts.Host == "" {
		opts.Host = Dedicated
	}
	if opts.Host != Dedicated && opts.Host != Shared {
		return nil, fmt.Errorf("sim: host %q: want %s or %s", opts.Host, Dedicated, Shared)
	}
	if opts.BackgroundLoad < 0 || opts.BackgroundLoad > 1024 || (opts.BackgroundLoad > 0 && opts.Host != Shared) {
		return nil, fmt.Errorf("sim: background load %v: want 0..1024, with host %s", opts.BackgroundLoad, Shared)
	}
	if err := Check(sc); err != nil {
		return nil, err
	}
	if w := maxRateWorkload(sc); w != nil {
		return runMaxRate(ctx, sc, w, opts)
	}
	wall := time.Now()
	e, err := newEngine(sc, opts)
	if err != nil {
		return nil, err
	}
	if err := e.run(ctx); err != nil {
		return nil, err
	}
	return e.outcome(time.Since(wall))
}

// Check refuses, naming it, what the simulator does not model.
func Check(sc *scenarios.Scenario) error {
	var errs []error
	for i, w := range sc.Workload {
		switch w.Kind {
		case scenarios.KindPut, scenarios.KindTransfer, scenarios.KindGet, scenarios.KindQuery:
		default:
			errs = append(errs, fmt.Errorf("%w: workload[%d] (%s): kind %s", ErrUnsupported, i, w.Name, w.Kind))
		}
		switch m := w.Mode(); {
		case m == scenarios.ModeMaxRate && (w.Kind == scenarios.KindGet || w.Kind == scenarios.KindQuery):
			errs = append(errs, fmt.Errorf("%w: workload[%d] (%s): a max-rate search of reads (a run refuses it too)", ErrUnsupported, i, w.Name))
		case m == scenarios.ModeRate, m == scenarios.ModeRamp, m == scenarios.ModeClients, m == scenarios.ModeMaxRate:
		default:
			errs = append(errs, fmt.Errorf("%w: workload[%d] (%s): load mode %s", ErrUnsupported, i, w.Name, w.Mode()))
		}
	}
	for i, e := range sc.Timeline {
		switch {
		case e.Kill == scenarios.BrokerTarget:
			errs = append(errs, fmt.Errorf("%w: timeline[%d]: kill: broker (the broker's restart is not simulated)", ErrUnsupported, i))
		case e.Flood != "":
			errs = append(errs, fmt.Errorf("%w: timeline[%d]: flood (the HTTP API is not simulated)", ErrUnsupported, i))
		case e.DiskFull != "":
			errs = append(errs, fmt.Errorf("%w: timeline[%d]: disk_full (storage faults are not simulated)", ErrUnsupported, i))
		}
	}
	if sm := sc.Simulation; sm != nil && sm.Mode == scenarios.SimCohort {
		if err := cohortRefuses(sc); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func maxRateWorkload(sc *scenarios.Scenario) *scenarios.Workload {
	for i := range sc.Workload {
		if sc.Workload[i].MaxRate != nil {
			return &sc.Workload[i]
		}
	}
	return nil
}

// coresPerNode is the scenario's, or the calibration's machine's.
func coresPerNode(sc *scenarios.Scenario, c *calib.Calibration) int {
	if sc.Cluster.CoresPerNode > 0 {
		return sc.Cluster.CoresPerNode
	}
	return c.Machine.Cores
}

func newEngine(sc *scenarios.Scenario, opts Options) (*engine, error) {
	// The hops' latencies at the scenario's pace, as its real run's
	// floors measure them (an idle machine wakes more slowly).
	c := opts.Calib.AtGap(sc.FloorGap())
	valueSize := scenarios.DefaultValueSize
	if len(sc.Workload) > 0 {
		valueSize = sc.Workload[0].ValueSize
	}
	e := &engine{
		s:     des.New(uint64(sc.Seed)),
		sc:    sc,
		k:     costs{c: c, merkle: c.MerkleModel(), state: c.StateModel(), sync: sc.Cluster.Storage.SyncEnabled(), valueSize: valueSize},
		opts:  opts,
		links: map[[2]string]*des.Link{},
		net:   sc.Network,
		cores: coresPerNode(sc, c),
	}
	e.cohort, e.window = cohortMode(sc)
	if !e.cohort {
		e.spans = map[string][]int64{}
	}
	for _, ev := range sc.Timeline {
		e.stops = e.stops || ev.Kill != ""
	}
	e.quorum = sc.Cluster.Quorum
	if e.quorum == 0 {
		e.quorum = consensus.DefaultQuorum(sc.Cluster.Nodes)
	}
	e.pebbleRand = rand.New(rand.NewPCG(uint64(sc.Seed), pebbleSeed))
	e.measureStart = des.Time(sc.Warmup)
	e.measureEnd = e.measureStart + des.Time(sc.Duration)
	e.loadEnd = e.measureEnd
	if opts.Host == Shared {
		e.cores = c.Machine.Cores
		e.host = des.NewServer(e.s, "host", e.cores, numOps)
		e.host.SetSpeed(float64(e.cores) / (float64(e.cores) + opts.BackgroundLoad))
		// One disk, which takes the nodes' WAL syncs side by side: each
		// node's Pebble syncs its own log, and the device serves them
		// together (on session 33's host one writer made 6.7k fdatasyncs
		// a second, three writers of their own files 14.6k, each sync's
		// p50 141 and 188 µs). Until session 33 one sync at a time: the
		// three-node replica.commit came out twice the real one.
		e.hostDisk = des.NewServer(e.s, "host disk", max(sc.Cluster.Nodes, 1), numOps)
		if len(c.Ops.ScheduleLag) > 0 && !e.cohort {
			e.lagRand = rand.New(rand.NewPCG(uint64(sc.Seed), lagSeed))
		}
		if len(c.Ops.HopDelay) > 0 && !e.cohort {
			e.hopRand = rand.New(rand.NewPCG(uint64(sc.Seed), hopSeed))
		}
		if !e.cohort {
			// A message the monitor polled behind a waiting Pebble job
			// waits for one of its holds of a P (on average).
			e.poller = des.NewPoller(e.s, e.cores)
			e.poller.Slice = pebbleStreak
		}
		e.clientWay = len(c.Ops.ClientWay) > 0 && !e.cohort
		e.produceWay = len(c.Ops.ProduceWay) > 0 && !e.cohort
		e.walSync = len(c.Ops.WALSync) > 0 && !e.cohort
		e.merkleWay = len(c.Ops.MerkleWay) > 0 && !e.cohort
		if f := c.Ops.Cluster; e.clientWay && f != nil && f.HostBusy > 0 {
			e.peerFitWay, _ = c.ClientWayAt(f.HostBusy, float64(e.k.quicBase())/2)
		}
	}
	nodes := sc.Cluster.Nodes
	validators := make([]ed25519.PublicKey, nodes)
	for i := range nodes {
		validators[i] = nodeKey(sc.Seed, i).Public().(ed25519.PublicKey)
	}
	// The node's own finality tracker (it signs and verifies for real) for
	// small clusters; its honest-vote equivalent above, where the host's
	// signatures would cost more than the simulation.
	useReal := nodes*sc.Cluster.Shards <= 16
	e.vals, e.real = validators, useReal
	for i := range nodes {
		n := &node{id: i, name: e.nodeName(i), up: true, inflight: map[uint32]int{}, idle: e.cores, key: nodeKey(sc.Seed, i)}
		if e.host != nil {
			n.cpu, n.disk = e.host, e.hostDisk
		} else {
			n.cpu = des.NewServer(e.s, n.name, e.cores, numOps)
			n.disk = des.NewServer(e.s, n.name+" disk", 1, numOps)
		}
		n.sync = &groupSync{disk: n.disk}
		fin, err := e.newFinalizer(n, validators, useReal)
		if err != nil {
			return nil, err
		}
		n.fin = fin
		for s := range sc.Cluster.Shards {
			n.reps = append(n.reps, &replica{n: n, shard: uint32(s), next: 1, final: map[uint64]bool{}})
		}
		e.nodes = append(e.nodes, n)
	}
	e.commitsByNode = make([]int64, nodes)
	e.byNode = make([]*txn, nodes)
	e.endLinks = make([]*des.Link, 4*nodes)
	e.peerLinks = make([][]*des.Link, nodes)
	nb := max(sc.Cluster.Brokers, 1)
	for i := range nb {
		// No broker fsyncs: a Kafka cluster acknowledges from the page
		// cache (replication makes a record durable), and so does the
		// embedded broker a run starts (kfake without SyncWrites; only a
		// `rustorium node`'s own embedded broker syncs, and no run uses
		// one).
		b := &broker{id: i, cpu: e.host}
		if e.host == nil {
			b.cpu = des.NewServer(e.s, fmt.Sprintf("broker-%d", i+1), e.cores, numOps)
		}
		e.brokers = append(e.brokers, b)
	}
	for _, n := range e.nodes {
		for range e.brokers {
			n.producers = append(n.producers, &producer{})
		}
	}
	keySpace := 0.0
	for _, w := range sc.Workload {
		if w.Kind == scenarios.KindPut || w.Kind == scenarios.KindTransfer {
			keySpace = float64(w.Accounts)
			break
		}
	}
	for s := range sc.Cluster.Shards {
		e.shards = append(e.shards, &logShard{id: uint32(s), keys: keySpace / float64(sc.Cluster.Shards), broker: s % nb})
	}
	e.assign()
	if e.cohort {
		e.setMinIn()
	}
	e.rec = reports.NewRecorder(reports.RecorderOptions{Start: e.wall(e.measureStart), Shards: 1})
	for i := range sc.Workload {
		w := &sc.Workload[i]
		wl := &workload{sc: w, index: i, rec: e.rec.Workload(w.Name), size: w.ValueSize + 150}
		if w.Kind == scenarios.KindGet || w.Kind == scenarios.KindQuery {
			wl.read, wl.size = true, readRequestBytes
		}
		if w.Kind == scenarios.KindTransfer {
			e.accounts = true
		}
		e.setClient(wl)
		var err error
		if wl.keys, err = loadgen.NewKeys(w.Keys.Kind, w.Keys.S, uint64(w.Accounts), uint64(sc.Seed)+uint64(i)*7919); err != nil {
			return nil, err
		}
		switch w.Mode() {
		case scenarios.ModeRate:
			wl.pacer = loadgen.Constant{Rate: w.Rate.PerSecond()}
			if w.Arrival == scenarios.ArrivalPoisson {
				wl.pacer = &loadgen.Poisson{Rate: w.Rate.PerSecond(), Seed: uint64(sc.Seed) + uint64(i)}
			}
		case scenarios.ModeRamp:
			over := w.Ramp.Over.Std()
			if over == 0 {
				over = sc.Duration.Std()
			}
			ramp := loadgen.Ramp{From: w.Ramp.From.PerSecond(), To: w.Ramp.To.PerSecond(), Over: over}
			wl.pacer = ramp
			if w.Arrival == scenarios.ArrivalPoisson {
				wl.pacer = &loadgen.Poisson{Shape: ramp, Seed: uint64(sc.Seed) + uint64(i)}
			}
		case scenarios.ModeClients:
			wl.clients = w.Clients
		}
		e.wls = append(e.wls, wl)
	}
	return e, nil
}

func (e *engine) newFinalizer(n *node, validators []ed25519.PublicKey, real bool) (finalizer, error) {
	shards := e.sc.Cluster.Shards
	if !real {
		return newCountFinality(shards, e.quorum, n.id), nil
	}
	f, err := consensus.NewFinality(consensus.FinalityConfig{Key: n.key, Validators: validators, Quorum: e.quorum, Shards: shards})
	if err != nil {
		return nil, err
	}
	return &realFinality{f: f, key: n.key}, nil
}
