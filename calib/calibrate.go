package calib

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"

	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/merkle/poseidon"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/sigverify"
	"github.com/rustorium/rustorium/node/tx"
	"github.com/rustorium/rustorium/reports"
)

// Options configures Calibrate.
type Options struct {
	// Quick takes few samples and small sizes: seconds instead of about a
	// minute, for tests. Default false.
	Quick bool
	// Dir is where the on-disk measurements (Pebble) put their files: a
	// temporary directory inside it is created and removed. Empty means
	// os.TempDir().
	Dir string
	// Progress, if set, receives one line per operation measured.
	Progress io.Writer
	// Seed drives the random keys and values. Zero means 1.
	Seed uint64
}

// TxSize is the size of a put transaction with a 32-byte value, the
// payload size of the QUIC and broker round trips.
const TxSize = 32 + 150

// Calibrate measures this machine's cost of each operation the node does,
// with the node's own code. The machine should be otherwise idle: other
// load makes every figure larger.
func Calibrate(ctx context.Context, opts Options) (*Calibration, error) {
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	env := reports.CollectEnvironment(ctx, reports.EnvOptions{Dir: os.TempDir()})
	c := &Calibration{
		Version: Version,
		Quick:   opts.Quick,
		Machine: Machine{CPUModel: env.CPU, Cores: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH},
	}
	m := &measurer{opts: opts, c: c}
	steps := []struct {
		name string
		f    func(context.Context) error
	}{
		{"poseidon", m.poseidon},
		{"ed25519", m.ed25519},
		{"attestations", m.attestations},
		{"merkle", m.merkle},
		{"state", m.state},
		{"reads", m.reads},
		{"pebble", m.pebble},
		{"broker", m.broker},
		{"quic", m.quic},
		{"api", m.api},
		{"background", m.background},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := s.f(ctx); err != nil {
			return nil, fmt.Errorf("calib: %s: %w", s.name, err)
		}
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "calibrate: %-12s %v\n", s.name, time.Since(t0).Round(time.Millisecond))
		}
	}
	c.round()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if p := c.Ops.Paced; p != nil && opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "calibrate: %-12s QUIC echo p50 %.0f µs with calls %v apart, %.0f µs %v apart; produce→ack %.0f and %.0f µs\n",
			"paces", c.Ops.QUICRoundTrip.P50Ns/1000, BaseGap, p.QUICRoundTrip.P50Ns/1000, time.Duration(p.GapNs).Round(10*time.Microsecond),
			c.Ops.ProduceAck.P50Ns/1000, p.ProduceAck.P50Ns/1000)
	}
	return c, nil
}

type measurer struct {
	opts Options
	c    *Calibration
}

// n picks the quick or the full figure.
func (m *measurer) n(quick, full int) int {
	if m.opts.Quick {
		return quick
	}
	return full
}

// perOp times reps calls of f on this process's CPU clock and returns the
// mean in nanoseconds: CPU-bound operations are priced by the CPU they
// take, which other processes' load does not stretch.
func perOp(reps int, f func(i int)) float64 {
	reps = max(reps, 1)
	f(0) // warm
	t0 := cpuClock()
	for i := range reps {
		f(i)
	}
	return float64((cpuClock() - t0).Nanoseconds()) / float64(reps)
}

// medianOp times reps calls of f one by one and returns the median in
// nanoseconds: for operations whose rare stalls (a flush, another
// process's I/O) would swamp a mean.
func medianOp(reps int, f func()) float64 {
	f() // warm
	ds := make([]time.Duration, max(reps, 1))
	for i := range ds {
		t0 := time.Now()
		f()
		ds[i] = time.Since(t0)
	}
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Nanoseconds())
}

func (m *measurer) poseidon(context.Context) error {
	var a, b fr.Element
	a.SetUint64(1)
	b.SetUint64(2)
	m.c.Ops.Poseidon2Ns = perOp(m.n(2000, 100000), func(int) { a = poseidon.Hash2(&a, &b) })
	// The node hashes a block's values and new keys together
	// (merkle.ElementsFromBytes), eight at a time where the CPU has
	// AVX-512 IFMA: the cost of one hash is that of a batch of eight over
	// eight (the same as one at a time elsewhere, and for inputs over 496
	// bytes).
	const batch = 8
	out := make([]fr.Element, batch)
	for _, size := range []int{32, 128, 512, 2048, 16384} {
		in := make([][]byte, batch)
		for j := range in {
			in[j] = make([]byte, size)
			in[j][size-1] = byte(j)
		}
		ns := perOp(m.n(20, 2000)*32/max(size/32, 1)/batch+5, func(i int) {
			in[0][0] = byte(i)
			poseidon.HashBytesMany(out, in)
		})
		m.c.Ops.HashBytes = append(m.c.Ops.HashBytes, SizeCost{Size: size, CostNs: ns / batch})
	}
	return nil
}

func (m *measurer) ed25519(context.Context) error {
	var seed [32]byte
	key := ed25519.NewKeyFromSeed(seed[:])
	x := &tx.Tx{Kind: tx.KindPut, ChainID: 1, Key: []byte("calib"), Value: make([]byte, 32)}
	m.c.Ops.Ed25519SignNs = perOp(m.n(200, 5000), func(int) { x.Sign(key) })
	msg := x.SigningBytes()
	ok := true
	m.c.Ops.Ed25519VerifyNs = perOp(m.n(200, 5000), func(int) { ok = ok && sigverify.Verify(x.From, msg, x.Sig) })
	for _, size := range []int{8, 32, 128} {
		items := make([]sigverify.Item, size)
		for i := range items {
			y := &tx.Tx{Kind: tx.KindPut, ChainID: 1, Key: fmt.Appendf(nil, "calib-%d", i), Value: make([]byte, 32)}
			y.Sign(key)
			items[i] = sigverify.Item{Pub: y.From, Msg: y.SigningBytes(), Sig: y.Sig}
		}
		ns := perOp(m.n(5, 20000/size), func(int) {
			for _, v := range sigverify.Batch(items) {
				ok = ok && v
			}
		})
		m.c.Ops.Ed25519Batch = append(m.c.Ops.Ed25519Batch, SizeCost{Size: size, CostNs: ns})
	}
	if !ok {
		return errors.New("a valid signature did not verify")
	}
	return nil
}

func (m *measurer) attestations(context.Context) error {
	keys := make([]ed25519.PrivateKey, 4)
	vals := make([]ed25519.PublicKey, len(keys))
	for i := range keys {
		var seed [32]byte
		seed[0] = byte(i + 1)
		keys[i] = ed25519.NewKeyFromSeed(seed[:])
		vals[i] = keys[i].Public().(ed25519.PublicKey)
	}
	f, err := consensus.NewFinality(consensus.FinalityConfig{Key: keys[0], Validators: vals, Shards: 1})
	if err != nil {
		return err
	}
	heights := m.n(30, 1000)
	var a consensus.Attestation
	m.c.Ops.AttestSignNs = perOp(heights, func(i int) {
		a = consensus.Attestation{Shard: 0, Height: uint64(i + 1)}
		a.Sign(keys[1])
	})
	enc := make([][]byte, 0, 3*heights)
	for h := 1; h <= heights; h++ {
		for _, k := range keys[1:] {
			a := consensus.Attestation{Shard: 0, Height: uint64(h)}
			a.BlockHash[0] = byte(h)
			a.Sign(k)
			enc = append(enc, a.Encode())
		}
	}
	t0 := cpuClock()
	for _, b := range enc {
		a, err := consensus.DecodeAttestation(b)
		if err != nil {
			return err
		}
		if _, err := f.Receive(a); err != nil {
			return err
		}
	}
	m.c.Ops.AttestReceiveNs = float64((cpuClock() - t0).Nanoseconds()) / float64(len(enc))
	return nil
}

// oneCore runs f with GOMAXPROCS 1, so that an operation that spreads over
// the cores (the Merkle update hashes subtrees in parallel) is priced as
// the CPU time it takes on one core.
func oneCore(f func() error) error {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	return f()
}

func (m *measurer) merkle(context.Context) error { return oneCore(m.merkleOneCore) }

func (m *measurer) state(context.Context) error { return oneCore(m.stateOneCore) }

func (m *measurer) merkleOneCore() error {
	blocks := []int{100, 1000}
	trees := []int{0, 10000, 100000}
	if m.opts.Quick {
		blocks, trees = []int{50}, []int{0, 500}
	}
	for _, tree := range trees {
		for _, block := range blocks {
			d, err := merkleUpdate(cpuClock, block, tree, m.n(2, 3), m.opts.Seed)
			if err != nil {
				return err
			}
			m.c.Ops.MerkleBlock = append(m.c.Ops.MerkleBlock, MerkleCost{BlockSize: block, TreeSize: tree, CostNs: float64(d.Nanoseconds())})
		}
	}
	return nil
}

func (m *measurer) stateOneCore() error {
	sizes := []int{1, 10, 100, 1000}
	// Tree 0 is StateBlock: the tree holds about the block's keys. The
	// grown trees are StateBlockTree: 10k and 100k keys span the trees of
	// the validation's scenarios (100k accounts over 4 shards) and of
	// larger ones, whose costs StateModel extrapolates along the tree's
	// depth.
	trees := []int{0, 10000, 100000}
	if m.opts.Quick {
		sizes, trees = []int{1, 10, 50}, []int{0, 1000}
	}
	for _, tree := range trees {
		for _, size := range sizes {
			d, err := stateCommit(cpuClock, size, 32, m.n(2, min(200, max(4, 4000/size))), tree, m.opts.Seed)
			if err != nil {
				return err
			}
			if tree == 0 {
				m.c.Ops.StateBlock = append(m.c.Ops.StateBlock, SizeCost{Size: size, CostNs: float64(d.Nanoseconds())})
			} else {
				m.c.Ops.StateBlockTree = append(m.c.Ops.StateBlockTree, MerkleCost{BlockSize: size, TreeSize: tree, CostNs: float64(d.Nanoseconds())})
			}
		}
	}
	return nil
}

// reads measures StateRead and ProofVerify on trees of 0, 10k and 100k
// keys (quick: 0 and 1000).
func (m *measurer) reads(context.Context) error {
	return oneCore(func() error {
		trees := []int{0, 10000, 100000}
		if m.opts.Quick {
			trees = []int{0, 1000}
		}
		for _, tree := range trees {
			read, verify, err := stateRead(cpuClock, tree, m.n(50, 400), m.opts.Seed)
			if err != nil {
				return err
			}
			m.c.Ops.StateRead = append(m.c.Ops.StateRead, SizeCost{Size: tree, CostNs: float64(read.Nanoseconds())})
			m.c.Ops.ProofVerify = append(m.c.Ops.ProofVerify, SizeCost{Size: tree, CostNs: float64(verify.Nanoseconds())})
		}
		return nil
	})
}

func (m *measurer) pebble(context.Context) error {
	dir, err := os.MkdirTemp(m.opts.Dir, "rustorium-calib-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return err
	}
	defer db.Close()
	sizes := []int{1 << 10, 16 << 10, 256 << 10, 1 << 20}
	if m.opts.Quick {
		sizes = []int{1 << 10, 64 << 10}
	}
	key := 0
	for _, sync := range []bool{false, true} {
		wo := pebble.NoSync
		if sync {
			wo = pebble.Sync
		}
		for _, size := range sizes {
			var err error
			ns := medianOp(m.n(5, 31), func() {
				b := db.NewBatch()
				val := make([]byte, 200)
				for n := 0; n < size; n += 200 + 16 {
					key++
					_ = b.Set(fmt.Appendf(nil, "k%015d", key), val, nil)
				}
				if e := b.Commit(wo); e != nil {
					err = e
				}
				_ = b.Close()
			})
			if err != nil {
				return err
			}
			m.c.Ops.PebbleCommit = append(m.c.Ops.PebbleCommit, PebbleCost{SizeBytes: size, Sync: sync, CostNs: ns})
		}
	}
	return nil
}

func latencyOf(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	at := func(q float64) float64 { return float64(s[min(int(q*float64(len(s))), len(s)-1)].Nanoseconds()) }
	return Latency{P50Ns: at(0.50), P99Ns: at(0.99), MeanNs: float64(sum.Nanoseconds()) / float64(len(s))}
}

func (m *measurer) broker(ctx context.Context) error {
	e, err := ordering.StartEmbedded(ctx, ordering.EmbeddedOptions{})
	if err != nil {
		return err
	}
	defer e.Close()
	cfg := ordering.Config{Brokers: e.Addrs(), Shards: 1, TopicPrefix: "calib-", Dialer: e.Dial}
	if _, err := ordering.EnsureTopics(ctx, cfg); err != nil {
		return err
	}
	prod, err := ordering.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer prod.Close()
	payload := make([]byte, TxSize)
	base, paced, err := m.paced(ctx, func() error { _, err := prod.Append(ctx, 0, nil, payload); return err })
	if err != nil {
		return err
	}
	m.c.Ops.ProduceAck = latencyOf(base)
	m.pacedOps().ProduceAck = latencyOf(paced)
	sends := m.n(2000, 20000)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	t0 := time.Now()
	for range sends {
		wg.Add(1)
		prod.AppendAsync(ctx, 0, nil, payload, func(_ int64, err error) {
			if err != nil {
				once.Do(func() { first = err })
			}
			wg.Done()
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	m.c.Ops.ProduceCeilingTPS = float64(sends) / time.Since(t0).Seconds()
	return nil
}

// paced samples rt's round trips at two paces, calls BaseGap apart and
// PacedGap apart, in blocks that alternate between the two (four, quick:
// two), so that a minute's drift in the machine's wake-ups moves both
// alike and their difference is the pace's (Ops.Paced). Each block takes
// at most a second a pace.
func (m *measurer) paced(ctx context.Context, rt func() error) (base, paced []time.Duration, err error) {
	blocks := m.n(2, 4)
	for range blocks {
		for _, p := range []struct {
			into *[]time.Duration
			o    SampleOptions
		}{
			{&base, SampleOptions{Gap: BaseGap, Max: m.n(25, 125), Min: m.n(10, 25), Budget: time.Second}},
			{&paced, SampleOptions{Gap: PacedGap, Max: m.n(15, 75), Min: m.n(6, 15), Budget: time.Second}},
		} {
			ds, err := SampleRoundTrips(ctx, p.o, rt)
			if err != nil {
				return nil, nil, err
			}
			*p.into = append(*p.into, ds...)
		}
	}
	return base, paced, nil
}

// pacedOps is the calibration's Ops.Paced, made at PacedGap when absent.
func (m *measurer) pacedOps() *Paced {
	if m.c.Ops.Paced == nil {
		m.c.Ops.Paced = &Paced{GapNs: float64(PacedGap)}
	}
	return m.c.Ops.Paced
}

// echoIngress refuses every submission: the QUIC measurements only echo.
type echoIngress struct{}

func (echoIngress) Submit(context.Context, *tx.Tx, tx.ID, []byte) (p2p.Accepted, <-chan p2p.Committed, error) {
	return p2p.Accepted{}, nil, errors.New("calib: echo server takes no transactions")
}

func (m *measurer) quic(ctx context.Context) error {
	var seed [32]byte
	seed[0] = 42
	key := ed25519.NewKeyFromSeed(seed[:])
	srv, err := p2p.Listen(p2p.ServerConfig{Key: key, Ingress: echoIngress{}})
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(sctx) }()
	defer func() { cancel(); _ = srv.Close(); <-done }()
	cl, err := p2p.Dial(ctx, srv.Addr().String(), p2p.ClientConfig{ServerKey: key.Public().(ed25519.PublicKey)})
	if err != nil {
		return err
	}
	defer cl.Close()
	payload := make([]byte, TxSize)
	base, paced, err := m.paced(ctx, func() error { return cl.Echo(ctx, payload) })
	if err != nil {
		return err
	}
	m.c.Ops.QUICRoundTrip = latencyOf(base)
	m.pacedOps().QUICRoundTrip = latencyOf(paced)
	calls := concurrentCallers * m.n(10, 100)
	cpu, err := concurrentCPU(calls, func() error { return cl.Echo(ctx, payload) })
	if err != nil {
		return err
	}
	m.c.Ops.QUICStreamNs = float64(cpu.Nanoseconds()) / float64(calls) / 2
	return nil
}

// concurrentCallers is how many goroutines concurrentCPU calls from: enough
// to keep the machine's cores busy.
const concurrentCallers = 64

// concurrentCPU calls f calls times, from concurrentCallers goroutines at
// once, and returns the process's CPU time it took (the first error
// stops it).
func concurrentCPU(calls int, f func() error) (time.Duration, error) {
	per := max(calls/concurrentCallers, 1)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	c0 := cpuClock()
	for range concurrentCallers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				if err := f(); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return cpuClock() - c0, first
}

// quietLogger drops Pebble's informational logs and keeps its errors.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)         {}
func (quietLogger) Errorf(f string, args ...any) { pebble.DefaultLogger.Errorf(f, args...) }
func (quietLogger) Fatalf(f string, args ...any) { pebble.DefaultLogger.Fatalf(f, args...) }

// round rounds every cost to 0.1 ns (the measurements are not finer).
func (c *Calibration) round() {
	r := func(v *float64) { *v = float64(int64(*v*10+0.5)) / 10 }
	o := &c.Ops
	for _, v := range []*float64{&o.Poseidon2Ns, &o.Ed25519VerifyNs, &o.Ed25519SignNs, &o.ProduceCeilingTPS, &o.QUICStreamNs, &o.AttestSignNs, &o.AttestReceiveNs,
		&o.ProduceAck.P50Ns, &o.ProduceAck.P99Ns, &o.ProduceAck.MeanNs, &o.QUICRoundTrip.P50Ns, &o.QUICRoundTrip.P99Ns, &o.QUICRoundTrip.MeanNs} {
		r(v)
	}
	if p := o.Paced; p != nil {
		for _, v := range []*float64{&p.ProduceAck.P50Ns, &p.ProduceAck.P99Ns, &p.ProduceAck.MeanNs, &p.QUICRoundTrip.P50Ns, &p.QUICRoundTrip.P99Ns, &p.QUICRoundTrip.MeanNs} {
			r(v)
		}
	}
	for _, t := range [][]SizeCost{o.HashBytes, o.StateBlock, o.Ed25519Batch, o.StateRead, o.ProofVerify} {
		for i := range t {
			r(&t[i].CostNs)
		}
	}
	if b := o.PebbleBackground; b != nil {
		r(&b.NsPerMiB)
		r(&b.InBytesPerTx)
		r(&b.InBytesPerFlush)
		b.WriteAmp = float64(int64(b.WriteAmp*1000+0.5)) / 1000
		b.FlushedPerIn = float64(int64(b.FlushedPerIn*1000+0.5)) / 1000
		b.FlushesPerCompaction = float64(int64(b.FlushesPerCompaction*1000+0.5)) / 1000
	}
	for i := range o.API {
		a := &o.API[i]
		for _, v := range []*float64{&a.RequestNs, &a.RoundTrip.P50Ns, &a.RoundTrip.P99Ns, &a.RoundTrip.MeanNs} {
			r(v)
		}
		if l := a.Accepted; l != nil {
			for _, v := range []*float64{&l.P50Ns, &l.P99Ns, &l.MeanNs} {
				r(v)
			}
		}
	}
	for i := range o.MerkleBlock {
		r(&o.MerkleBlock[i].CostNs)
	}
	for i := range o.PebbleCommit {
		r(&o.PebbleCommit[i].CostNs)
	}
}
