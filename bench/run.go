// Package bench runs scenarios end to end: it starts the cluster (embedded
// broker or a real one, in-process nodes), measures the floors of the raw
// building blocks on the same paths, drives the workloads with the load
// generator, checks that every accepted transaction committed exactly once,
// and writes the report folder. It also holds the project's benchmark suite.
package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
	"github.com/rustorium/rustorium/reports"
	"github.com/rustorium/rustorium/scenarios"
)

// ErrUnsupported: the scenario asks for something this harness cannot run yet.
var ErrUnsupported = errors.New("bench: not supported yet")

// Options configures Run.
type Options struct {
	// Out is the report folder. Required.
	Out string
	// Brokers, if set, overrides the scenario's broker with a real cluster.
	Brokers []string
	// Progress receives live progress lines. Nil prints nothing.
	Progress io.Writer
	// Logger receives the nodes' logs. Nil discards them.
	Logger *slog.Logger
	// ClientConns is the number of QUIC connections the load generator
	// spreads its streams over, round-robin over the nodes. Zero means 4,
	// or two per node if that is more.
	ClientConns int
	// SkipFloors skips the floor measurements (tests that need speed only).
	SkipFloors bool
	// AlterRoot is fault injection for tests: a node named here ("node-i")
	// attests the root the function returns instead of the one it computed
	// (node.Config.AlterRoot).
	AlterRoot map[string]func(shard uint32, height uint64, root [32]byte) [32]byte
}

func (o *Options) ensureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// prepareAll pre-signs every workload's transactions (and picks every get
// workload's keys) for total (warmup included); accounts are the transfer
// workloads' keys by index. A get workload reads the accounts of the first
// transfer workload when there is one (see readAccounts).
func prepareAll(ctx context.Context, sc *scenarios.Scenario, accounts map[int][]ed25519.PrivateKey, total time.Duration, p *progress) ([]*workloadRun, error) {
	loads := make([]*workloadRun, len(sc.Workload))
	for i := range sc.Workload {
		acc := accounts[i]
		if k := sc.Workload[i].Kind; k == scenarios.KindGet || k == scenarios.KindQuery {
			acc = readAccounts(sc, accounts)
		}
		var err error
		if loads[i], err = prepare(ctx, sc, &sc.Workload[i], i, acc, total, p); err != nil {
			return nil, err
		}
	}
	return loads, nil
}

// readAccounts returns the accounts a get workload reads: those of the
// scenario's first transfer workload (they exist from genesis on), or nil
// when it has none (then gets read put keys).
func readAccounts(sc *scenarios.Scenario, accounts map[int][]ed25519.PrivateKey) []ed25519.PrivateKey {
	for i, w := range sc.Workload {
		if w.Kind == scenarios.KindTransfer {
			return accounts[i]
		}
	}
	return nil
}

// label records each workload's kind and client in the result.
func label(res *reports.Result, loads []*workloadRun) {
	for _, l := range loads {
		if w := res.Workloads[l.name]; w != nil {
			w.Kind, w.Client = string(l.kind), string(l.client)
		}
	}
}

// chainID is the chain of every harness run.
const chainID = 1

// Run runs a defaulted, validated scenario and writes its report into
// opts.Out. The Result is returned even when the checker or an SLO failed
// (Result.Passed tells); an error means the run itself could not be done.
func Run(ctx context.Context, sc *scenarios.Scenario, opts Options) (*reports.Result, error) {
	if err := supported(sc); err != nil {
		return nil, err
	}
	opts.ensureDefaults()
	p := newProgress(opts.Progress)
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, err
	}
	accounts := workloadAccounts(sc)
	c, err := startCluster(ctx, sc, opts, genesisOf(accounts), p)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, stopWatch := c.watch(ctx)
	defer stopWatch()

	var floors reports.Floors
	if !opts.SkipFloors {
		p.printf("measuring floors (QUIC echo, produce→ack, Merkle batch, ed25519 verify)")
		cl, err := c.client(0)
		if err != nil {
			return nil, err
		}
		if floors, err = measureFloors(ctx, cl, c.floorLog(), sc); err != nil {
			return nil, fmt.Errorf("bench: floors: %w", err)
		}
	}
	if w := maxRateWorkload(sc); w != nil {
		return runMaxRate(ctx, c, w, floors, opts, p)
	}

	// Pre-sign every transaction of every workload before the clock starts.
	warmup, measure := sc.Warmup.Std(), sc.Duration.Std()
	loads, err := prepareAll(ctx, sc, accounts, warmup+measure, p)
	if err != nil {
		return nil, err
	}

	start := time.Now().Add(50 * time.Millisecond)
	rec := reports.NewRecorder(reports.RecorderOptions{Start: start.Add(warmup)})
	p.printf("running: %v warmup, %v measured", warmup, measure)
	sampler := reports.NewResourceSampler(reports.ResourceSamplerOptions{Origin: start.Add(warmup)})
	if err := sampler.Start(ctx); err != nil {
		return nil, err
	}
	stopProgress := p.live(ctx, rec, c.chk, start, warmup, measure)
	timeline := runTimeline(ctx, c, start.Add(warmup), p)
	// report.profile covers the measured phase only.
	profCh := make(chan *profiler, 1)
	profStart := time.AfterFunc(time.Until(start.Add(warmup)), func() {
		profCh <- startProfiles(filepath.Join(opts.Out, "profile"), sc.Report.Profile)
	})
	runLoads(ctx, c, loads, rec, start, warmup+measure)
	var (
		profiles  []reports.ProfileSummary
		profNotes []string
	)
	if !profStart.Stop() { // it ran, or is running: stop the capture
		profiles, profNotes = (<-profCh).stop()
	}
	timeline.stop()
	resources := sampler.Stop()
	stopProgress()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	snap := rec.Snapshot()

	res := reports.NewResult(snap, measure)
	res.Resources = resources
	label(res, loads)
	notes := profNotes
	for _, l := range loads {
		if f := l.obs.failed.Load(); f > 0 {
			notes = append(notes, fmt.Sprintf("workload %s: %d transactions committed as failed by execution (stale nonce or balance), with the reason in their receipts; a transfer fails when it reaches the log after a later transfer of its sender (its nonce is then used up: reordered by the network, or resent after its node went down) or when the sender's balance is short", l.name, f))
		}
	}
	for _, l := range loads {
		if l.closed != nil && l.closed.Limit > 0 && l.stats.Started >= l.closed.Limit {
			notes = append(notes, fmt.Sprintf("workload %s used all %d pre-signed transactions and stopped early", l.name, l.closed.Limit))
		}
	}
	finish := func(res *reports.Result) {
		res.Timeline = timeline.results(res, start.Add(warmup+measure))
		res.Profiles = profiles
	}
	return c.finish(ctx, res, snap, floors, notes, finish, opts, p)
}

// runLoads drives every workload from start for total (warmup included) and
// returns when all sends have completed.
func runLoads(ctx context.Context, c *cluster, loads []*workloadRun, rec *reports.Recorder, start time.Time, total time.Duration) {
	for _, l := range loads {
		l.obs = newObserver(rec.Workload(l.name), c.chk, len(l.txs)) // reads have no ingress stamps to match
	}
	c.ingress.build(loads) // after the observers exist: the node's hook reads them
	var wg sync.WaitGroup
	for _, l := range loads {
		conns := c.txConns(l.client)
		var send loadgen.SendFunc
		if l.kind == scenarios.KindGet || l.kind == scenarios.KindQuery {
			send = (&loadgen.Reader{Conns: conns, Keys: l.reads, Accounts: l.kind == scenarios.KindQuery, Observer: l.obs, Timeout: l.timeout, Verify: readVerify(c.chk)}).Send
		} else {
			send = (&loadgen.Submitter{
				Conns: conns, Route: l.route, Txs: l.txs, Observer: l.obs, Timeout: l.timeout,
				VerifyEvery: l.verifyEvery, Verify: l.verify(c.chk), Visible: l.visible(),
			}).Send
		}
		wg.Add(1)
		if l.closed != nil {
			l.obs.expected = l.closed.Expected
			go func() {
				defer wg.Done()
				l.stats = l.closed.Run(ctx, start, total, send)
			}()
			continue
		}
		ol := &loadgen.OpenLoop{Pacer: l.pacer, OnDrop: l.obs.dropped}
		go func() {
			defer wg.Done()
			l.stats = ol.Run(ctx, start, total, send)
		}()
	}
	wg.Wait()
}

// finish drains the cluster, fills in everything but the workloads, checks
// the SLOs and writes the report folder.
func (c *cluster) finish(ctx context.Context, res *reports.Result, snap *reports.Snapshot, floors reports.Floors, notes []string, extra func(*reports.Result), opts Options, p *progress) (*reports.Result, error) {
	sc := c.sc
	// Drain: give the node until the drain deadline to commit everything
	// that was accepted; what is still missing then is lost.
	p.printf("draining (up to %v) and checking", sc.Drain.Std())
	c.chk.waitCommitted(ctx, sc.Drain.Std())
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}

	res.Scenario, res.Seed, res.Description = sc.Name, sc.Seed, sc.Description
	res.WarmupS = sc.Warmup.Std().Seconds()
	res.Environment = reports.CollectEnvironment(ctx, reports.EnvOptions{Broker: c.brokerKind})
	if b, err := json.Marshal(sc.Resolved()); err == nil {
		res.Resolved = b
	}
	// The nodes converge: every running node reports the same height,
	// block and root on every shard (bounded by the drain again).
	external := c.chk.fromReceipts
	var rootsOK = true
	var rootNotes []string
	if !external {
		rootsOK, rootNotes = c.rootsEqual(ctx, sc.Drain.Std())
	}
	names, nodes := c.live()
	res.Checker = c.chk.verdict(names, nodes)
	res.Checker.RootsEqual, res.Checker.RootsUnchecked = rootsOK, external
	res.Checker.Notes = append(res.Checker.Notes, rootNotes...)
	res.Checker.Notes = append(res.Checker.Notes, notes...)
	if len(c.genesis) > 0 {
		ok, bnotes := c.conserved(ctx, sc.Drain.Std())
		res.Checker.BalancesConserved = &ok
		res.Checker.Notes = append(res.Checker.Notes, bnotes...)
	}
	if down := len(c.nodes) - len(nodes); down > 0 { // an external run has no node slots
		res.Checker.Notes = append(res.Checker.Notes, fmt.Sprintf("%d node(s) down at the end (killed without restart): checked on the %d running", down, len(nodes)))
	}
	if extra != nil {
		extra(res)
	}
	floors.Ratios = ratios(res, floors)
	res.Floors = floors
	slos, err := sc.ReportSLOs()
	if err != nil {
		return res, err
	}
	res.SLO = res.CheckSLOs(slos)
	formats := make([]string, 0, len(sc.Report.Formats))
	for _, f := range sc.Report.Formats {
		if reports.Supported(string(f)) {
			formats = append(formats, string(f))
		}
	}
	if _, err := reports.Write(opts.Out, res, snap, formats); err != nil {
		return res, err
	}
	return res, nil
}

// supported rejects what this harness cannot run yet, naming it.
func supported(sc *scenarios.Scenario) error {
	var errs []error
	for i, w := range sc.Workload {
		if (w.Kind == scenarios.KindTransfer || w.Kind == scenarios.KindGet || w.Kind == scenarios.KindQuery) && w.Mode() == scenarios.ModeMaxRate {
			errs = append(errs, fmt.Errorf("workload[%d] %q: a max-rate search of a %s workload", i, w.Name, w.Kind))
		}
		if w.Mode() == scenarios.ModeMaxRate && len(sc.Workload) > 1 {
			errs = append(errs, fmt.Errorf("workload[%d] %q: a max-rate search must be the only workload", i, w.Name))
		}
		if m := w.Mode(); w.Arrival == scenarios.ArrivalPoisson && m != scenarios.ModeRate && m != scenarios.ModeRamp {
			errs = append(errs, fmt.Errorf("workload[%d] %q: poisson arrivals only with a rate or a ramp", i, w.Name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnsupported, sc.File(), err)
	}
	return nil
}

// workloadRun is one workload's pre-signed transactions and schedule.
type workloadRun struct {
	name        string
	kind        scenarios.Kind
	client      scenarios.Client
	pacer       loadgen.Pacer       // open loop
	closed      *loadgen.ClosedLoop // closed loop
	txs         [][]byte
	reads       [][]byte // gets: the state key each read asks for
	puts        []putKV  // what each tx writes, for proof checks
	route       []uint32 // transfers: the sender of each, to keep a sender on one connection
	timeout     time.Duration
	verifyEvery uint64
	obs         *observer
	stats       loadgen.Stats
}

type putKV struct{ key, value []byte }

// Closed-loop workloads pre-sign for one send per client every
// closedLoopMinCycle, at most maxClosedLoopTxs in all.
const (
	closedLoopMinCycle = 500 * time.Microsecond
	maxClosedLoopTxs   = 300_000
)

func prepare(ctx context.Context, sc *scenarios.Scenario, w *scenarios.Workload, idx int, accounts []ed25519.PrivateKey, total time.Duration, p *progress) (*workloadRun, error) {
	l := &workloadRun{name: w.Name, kind: w.Kind, client: w.Client, timeout: w.Timeout.Std()}
	seed := uint64(sc.Seed)*1_000_003 + uint64(idx)
	var traceKeys []string
	switch w.Mode() {
	case scenarios.ModeRate:
		l.pacer = loadgen.Constant{Rate: w.Rate.PerSecond()}
		if w.Arrival == scenarios.ArrivalPoisson {
			l.pacer = &loadgen.Poisson{Rate: w.Rate.PerSecond(), Seed: seed}
		}
	case scenarios.ModeTrace:
		path := w.Trace
		if !filepath.IsAbs(path) && sc.File() != "" {
			path = filepath.Join(filepath.Dir(sc.File()), path)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("workload %s: %w", w.Name, err)
		}
		tr, err := loadgen.ReadTrace(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("workload %s: %s: %w", w.Name, path, err)
		}
		l.pacer, traceKeys = tr, tr.Keys
	case scenarios.ModeRamp:
		over := w.Ramp.Over.Std()
		if over == 0 {
			over = sc.Duration.Std()
		}
		ramp := loadgen.Ramp{From: w.Ramp.From.PerSecond(), To: w.Ramp.To.PerSecond(), Over: over}
		l.pacer = ramp
		if w.Arrival == scenarios.ArrivalPoisson {
			l.pacer = &loadgen.Poisson{Shape: ramp, Seed: seed}
		}
	case scenarios.ModeClients:
		l.closed = &loadgen.ClosedLoop{Clients: w.Clients, Think: w.Think.Std(), Calibrate: sc.Warmup.Std()}
	}
	var n int
	if l.pacer != nil {
		shape := l.pacer
		if ps, ok := shape.(*loadgen.Poisson); ok && ps.Shape != nil {
			shape = ps.Shape.(loadgen.Pacer)
		}
		if err := loadgen.Validate(shape); err != nil {
			return nil, err
		}
		n = loadgen.Count(l.pacer, total)
	} else {
		// A closed loop has no schedule: sign enough for one send per
		// client every closedLoopMinCycle, and stop early if that runs out.
		n = min(maxClosedLoopTxs, w.Clients*int(total/closedLoopMinCycle))
		l.closed.Limit = uint64(n)
	}
	keys, err := loadgen.NewKeys(w.Keys.Kind, w.Keys.S, uint64(w.Accounts), seed)
	if err != nil {
		return nil, err
	}
	if w.Kind == scenarios.KindGet || w.Kind == scenarios.KindQuery {
		// A closed loop of reads need not stop: its reads repeat the
		// prepared keys' sequence (a Reader reads Keys[i mod len]).
		if l.closed != nil {
			l.closed.Limit = 0
		}
		if w.Kind == scenarios.KindQuery {
			what := "genesis accounts"
			if accounts == nil { // accounts that do not exist: non-membership proofs
				accounts, what = loadgen.AccountKeys(seed, w.Accounts), "accounts without genesis (absent)"
			}
			l.reads = queryKeys(keys, accounts, n)
			p.printf("workload %s: %d account queries of %s", w.Name, n, what)
			return l, nil
		}
		l.reads = readKeys(keys, traceKeys, accounts, n)
		p.printf("workload %s: %d reads of %s", w.Name, n, map[bool]string{true: "genesis accounts", false: "put keys"}[accounts != nil])
		return l, nil
	}
	var s [32]byte
	binary.BigEndian.PutUint64(s[:], seed)
	signer := ed25519.NewKeyFromSeed(s[:])
	p.printf("workload %s: pre-signing %d transactions", w.Name, n)
	t0 := time.Now()
	var last atomic.Int64
	progress := func(done int) {
		if now := time.Now().UnixNano(); now-last.Load() > int64(time.Second) {
			last.Store(now)
			p.printf("  signed %d/%d", done, n)
		}
	}
	switch w.Kind {
	case scenarios.KindTransfer:
		tr := &loadgen.Transfers{ChainID: chainID, Accounts: accounts, Keys: keys, Amount: 1, Seed: seed}
		l.txs, err = tr.Generate(ctx, n, progress)
		l.route = tr.Senders
	default:
		puts := &loadgen.Puts{ChainID: chainID, Signer: signer, Keys: keys, KeyNames: traceKeys, ValueSize: w.ValueSize, Seed: seed, Salt: uint32(time.Now().UnixNano())}
		l.txs, err = puts.Generate(ctx, n, progress)
	}
	if err != nil {
		return nil, err
	}
	p.printf("workload %s: %d transactions signed in %v", w.Name, n, time.Since(t0).Round(time.Millisecond))
	if w.Kind == scenarios.KindPut {
		l.puts = make([]putKV, n)
		for i, raw := range l.txs {
			t, err := tx.Decode(raw)
			if err != nil {
				return nil, err
			}
			l.puts[i] = putKV{key: state.PutKey(t.Key), value: t.Value}
		}
	}
	frac := 0.01
	if w.VerifyProofs != nil {
		frac = w.VerifyProofs.Fraction()
	}
	if frac > 0 {
		l.verifyEvery = uint64(max(1, int(1/frac+0.5)))
	} else {
		l.verifyEvery = ^uint64(0)
	}
	return l, nil
}

// readKeys picks the state key of each of a get workload's n reads: key
// index k from keys (or a trace's key names, which are put keys), read as the
// account accounts[k mod len(accounts)] when there are accounts, else as the
// put key that a put workload names loadgen.KeyName(k).
func readKeys(keys loadgen.Keys, traceKeys []string, accounts []ed25519.PrivateKey, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		switch {
		case i < len(traceKeys):
			out[i] = state.PutKey([]byte(traceKeys[i]))
		case len(accounts) > 0:
			k := keys.Next() % uint64(len(accounts))
			out[i] = state.AccountKey(accounts[k].Public().(ed25519.PublicKey))
		default:
			out[i] = state.PutKey(loadgen.KeyName(keys.Next()))
		}
	}
	return out
}

// queryKeys are a query workload's accounts: the public key of account
// keys.Next() mod len(accounts), for each of n queries.
func queryKeys(keys loadgen.Keys, accounts []ed25519.PrivateKey, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = accounts[keys.Next()%uint64(len(accounts))].Public().(ed25519.PublicKey)
	}
	return out
}

// readVerify checks a read's proof against the root it came with; every
// check counts in the checker's proofs.
func readVerify(chk *checker) func(root [32]byte, key, value, proof []byte) error {
	return func(root [32]byte, key, value, proof []byte) error {
		err := storage.VerifyProofBytes(root, key, value, proof)
		chk.proof(err)
		return err
	}
}

// verify returns the proof check for the sampled receipts: the proof must
// show the transaction's own key and value under the receipt's root.
func (l *workloadRun) verify(chk *checker) func(i uint64, c p2p.Committed) error {
	if l.puts == nil {
		return nil // a transfer's proof shows its sender's new balance, which the client does not know
	}
	return func(i uint64, c p2p.Committed) error {
		if c.Superseded {
			// A later put of the same block overwrote the key, so the proof
			// shows that put's value, which this client does not know.
			return nil
		}
		kv := l.puts[i]
		err := storage.VerifyProofBytes(c.Root, kv.key, kv.value, c.Proof)
		chk.proof(err)
		return err
	}
}

// visible reads a sampled put back through the node's read API until it
// shows the put's value (or, when a later put of the same block superseded
// it, any value): read-your-write visibility.
func (l *workloadRun) visible() func(ctx context.Context, get loadgen.GetFunc, i uint64, com p2p.Committed) error {
	if l.puts == nil {
		return nil
	}
	return func(ctx context.Context, get loadgen.GetFunc, i uint64, com p2p.Committed) error {
		kv := l.puts[i]
		for {
			v, err := get(ctx, kv.key)
			if err != nil {
				return err
			}
			if v.Found && (com.Superseded || bytes.Equal(v.Value, kv.value)) {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
}

// ingressIndex maps transaction ids to their workload and send index, so the
// node's ingress hook can stamp the right send. It is built before the load
// starts and only read afterwards.
type ingressIndex struct {
	mu  sync.RWMutex
	ids map[tx.ID]ingressRef
}

type ingressRef struct {
	obs *observer
	i   uint64
}

func (x *ingressIndex) build(loads []*workloadRun) {
	n := 0
	for _, l := range loads {
		n += len(l.txs)
	}
	ids := make(map[tx.ID]ingressRef, n)
	for _, l := range loads {
		for i, raw := range l.txs {
			ids[tx.IDOf(raw)] = ingressRef{l.obs, uint64(i)}
		}
	}
	x.mu.Lock()
	x.ids = ids
	x.mu.Unlock()
}

func (x *ingressIndex) stamp(id tx.ID, at time.Time) {
	x.mu.RLock()
	r, ok := x.ids[id]
	x.mu.RUnlock()
	if ok {
		r.obs.ingress(r.i, at)
	}
}

// genesisBalance is every transfer account's balance at genesis.
const genesisBalance = 1_000_000

// workloadAccounts derives the accounts of each transfer workload, by
// workload index, from the scenario's seed.
func workloadAccounts(sc *scenarios.Scenario) map[int][]ed25519.PrivateKey {
	out := map[int][]ed25519.PrivateKey{}
	for i, w := range sc.Workload {
		if w.Kind == scenarios.KindTransfer {
			out[i] = loadgen.AccountKeys(uint64(sc.Seed)*1_000_003+uint64(i), w.Accounts)
		}
	}
	return out
}

func genesisOf(accounts map[int][]ed25519.PrivateKey) []node.GenesisAccount {
	var g []node.GenesisAccount
	for _, i := range slices.Sorted(maps.Keys(accounts)) {
		for _, k := range accounts[i] {
			g = append(g, node.GenesisAccount{Key: k.Public().(ed25519.PublicKey), Balance: genesisBalance})
		}
	}
	return g
}
