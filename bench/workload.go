package bench

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/scenarios"
)

// workloadRun is one workload of a run: its schedule and its prepared
// sends, then what running it observed.
type workloadRun struct {
	name   string
	kind   scenarios.Kind
	client scenarios.Client
	pacer  loadgen.Pacer       // open loop
	closed *loadgen.ClosedLoop // closed loop
	sends  *sends
	obs    *observer
	stats  loadgen.Stats
	// traced are its traced sends, marked as they are signed; measured is
	// the start of measuring of the recorder its load ran with.
	traced   tracedSet
	measured time.Time
}

// MaxSends bounds the sends one workload schedules (a run, or a max-rate
// probe). Signing is bounded apart (presignBudget, signLead); what grows
// with the sends is the run's bookkeeping, about 200 bytes a send (send
// times, ingress index, the checker's accepted and committed ids), so
// 20M ≈ 4 GB. A scenario that asks for more is refused, at load time where
// its schedule says so (rate, ramp), else when the workload is prepared.
const MaxSends = 20_000_000

// Closed-loop workloads pre-sign for one send per client every
// closedLoopMinCycle, at most maxClosedLoopTxs in all.
const (
	closedLoopMinCycle = 500 * time.Microsecond
	maxClosedLoopTxs   = 300_000
)

// dropped counts a send the open loop could not start and lets its
// transaction go.
func (l *workloadRun) dropped(i uint64, intended time.Time) {
	l.obs.dropped(i, intended)
	if l.sends.txs != nil {
		l.sends.txs.Skip(i)
	}
}

// close stops the signing of a streamed workload. Safe on nil and twice.
func (l *workloadRun) close() {
	if l == nil || l.sends == nil {
		return
	}
	if st, ok := l.sends.txs.(*loadgen.Stream); ok {
		st.Close()
	}
}

// workloadSeed is workload idx's seed: its keys, values and accounts.
func workloadSeed(sc *scenarios.Scenario, idx int) uint64 {
	return uint64(sc.Seed)*1_000_003 + uint64(idx)
}

// runAccounts derives the genesis accounts each workload's kind needs, by
// workload index, from the scenario's seed.
func runAccounts(sc *scenarios.Scenario) map[int][]ed25519.PrivateKey {
	out := map[int][]ed25519.PrivateKey{}
	for i := range sc.Workload {
		w := &sc.Workload[i]
		if acc := kinds[w.Kind].genesis(workloadSeed(sc, i), w); acc != nil {
			out[i] = acc
		}
	}
	return out
}

// genesisBalance is every genesis account's balance.
const genesisBalance = 1_000_000

func genesisOf(accounts map[int][]ed25519.PrivateKey) []node.GenesisAccount {
	var g []node.GenesisAccount
	for _, i := range slices.Sorted(maps.Keys(accounts)) {
		for _, k := range accounts[i] {
			g = append(g, node.GenesisAccount{Key: k.Public().(ed25519.PublicKey), Balance: genesisBalance})
		}
	}
	return g
}

// accountsFor returns the accounts workload idx works on: its own genesis
// accounts, or for a workload that has none the first workload's that has
// (a read of genesis accounts), or nil.
func accountsFor(accounts map[int][]ed25519.PrivateKey, idx int) []ed25519.PrivateKey {
	if acc, ok := accounts[idx]; ok {
		return acc
	}
	if len(accounts) == 0 {
		return nil
	}
	return accounts[slices.Min(slices.Collect(maps.Keys(accounts)))]
}

// share is the part of a scenario's load this run sends: a worker's split
// and the salt all workers share.
type share struct {
	split loadgen.Split
	salt  uint32
	chain uint32 // the target's chain id
}

// prepare sets up workload idx (w, which may be a max-rate probe's copy)
// for total (warmup included): its schedule, then its kind's sends (the
// run's share of them); a streamed workload tells signed of each as it is
// signed. The caller closes the workload when its load has run.
func prepare(ctx context.Context, sc *scenarios.Scenario, w *scenarios.Workload, idx int, accounts []ed25519.PrivateKey, total time.Duration, sh share, signed func(l *workloadRun, i uint64, raw []byte), printf func(string, ...any)) (*workloadRun, error) {
	l := &workloadRun{name: w.Name, kind: w.Kind, client: w.Client}
	in := &prepInput{w: w, seed: workloadSeed(sc, idx), accounts: accounts, split: sh.split, salt: sh.salt, chain: sh.chain, printf: printf,
		onSigned: func(i uint64, raw []byte) { signed(l, i, raw) }}
	in.newKeys = func() (loadgen.Keys, error) {
		return loadgen.NewKeys(w.Keys.Kind, w.Keys.S, uint64(w.Accounts), in.seed)
	}
	if err := l.schedule(sc, in, total); err != nil {
		return nil, fmt.Errorf("workload %s: %w", w.Name, err)
	}
	if in.n > MaxSends {
		return nil, fmt.Errorf("%w: workload %s: %d sends, more than the %d a run may schedule: lower its rate or the duration", ErrUnsupported, w.Name, in.n, MaxSends)
	}
	var err error
	if in.keys, err = in.newKeys(); err != nil {
		return nil, err
	}
	if l.sends, err = kinds[w.Kind].prepare(ctx, in); err != nil {
		return nil, err
	}
	switch {
	case l.closed != nil && l.sends.repeat:
		l.closed.Limit = 0 // reads repeat their keys: the loop need not stop
	case l.closed != nil:
		l.closed.Limit = uint64(l.sends.txs.Len())
	case l.sends.of != nil:
		l.pacer = loadgen.Subset{Pacer: l.pacer, Of: l.sends.of}
	}
	return l, nil
}

// schedule sets the workload's pacer (open loop) or closed loop from its
// load mode, and in.n, the number of sends to prepare.
func (l *workloadRun) schedule(sc *scenarios.Scenario, in *prepInput, total time.Duration) error {
	w := in.w
	switch w.Mode() {
	case scenarios.ModeRate:
		in.peak = w.Rate.PerSecond()
		l.pacer = loadgen.Constant{Rate: w.Rate.PerSecond()}
		if w.Arrival == scenarios.ArrivalPoisson {
			l.pacer = &loadgen.Poisson{Rate: w.Rate.PerSecond(), Seed: in.seed}
		}
	case scenarios.ModeTrace:
		tr, err := readTrace(sc, w.Trace)
		if err != nil {
			return err
		}
		l.pacer, in.traceKeys = tr, tr.Keys
	case scenarios.ModeRamp:
		over := w.Ramp.Over.Std()
		if over == 0 {
			over = sc.Duration.Std()
		}
		ramp := loadgen.Ramp{From: w.Ramp.From.PerSecond(), To: w.Ramp.To.PerSecond(), Over: over}
		in.peak = max(ramp.From, ramp.To)
		l.pacer = ramp
		if w.Arrival == scenarios.ArrivalPoisson {
			l.pacer = &loadgen.Poisson{Shape: ramp, Seed: in.seed}
		}
	case scenarios.ModeClients:
		// A closed loop has no schedule: sign enough for one send per
		// client every closedLoopMinCycle, and stop early if that runs out.
		in.n = min(maxClosedLoopTxs, w.Clients*int(total/closedLoopMinCycle))
		in.peak = float64(w.Clients) / closedLoopMinCycle.Seconds()
		l.closed = &loadgen.ClosedLoop{Clients: clientsOf(w.Clients, in.split), Think: w.Think.Std(), Calibrate: sc.Warmup.Std()}
		return nil
	default:
		return fmt.Errorf("%w: load mode %q", ErrUnsupported, w.Mode())
	}
	shape := l.pacer
	if ps, ok := shape.(*loadgen.Poisson); ok && ps.Shape != nil {
		shape = ps.Shape.(loadgen.Pacer)
	}
	if err := loadgen.Validate(shape); err != nil {
		return err
	}
	in.n = loadgen.Count(l.pacer, total)
	if in.peak == 0 && total > 0 { // a trace: twice its mean
		in.peak = 2 * float64(in.n) / total.Seconds()
	}
	return nil
}

// readTrace reads a trace file, relative to the scenario file.
func readTrace(sc *scenarios.Scenario, path string) (*loadgen.Trace, error) {
	if !filepath.IsAbs(path) && sc.File() != "" {
		path = filepath.Join(filepath.Dir(sc.File()), path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr, err := loadgen.ReadTrace(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tr, nil
}

// clientsOf is a worker's share of a closed loop's clients: as even as
// they divide, the first workers taking one more.
func clientsOf(clients int, split loadgen.Split) int {
	if split.Whole() {
		return clients
	}
	n := clients / int(split.Count)
	if uint64(clients%int(split.Count)) > split.Index {
		n++
	}
	return n
}
