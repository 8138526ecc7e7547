package node_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
)

const chain = 7

// blockLog records every committed block's transactions, as the harness's
// checker does.
type blockLog struct {
	mu      sync.Mutex
	seen    map[tx.ID]int
	blocks  map[uint32][]uint64 // shard → heights in commit order
	headers map[uint32][]consensus.Header
}

func newBlockLog() *blockLog {
	return &blockLog{seen: map[tx.ID]int{}, blocks: map[uint32][]uint64{}, headers: map[uint32][]consensus.Header{}}
}

func (l *blockLog) on(ev node.BlockEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ev.IDs {
		l.seen[id]++
	}
	l.blocks[ev.Header.Shard] = append(l.blocks[ev.Header.Shard], ev.Header.Height)
	l.headers[ev.Header.Shard] = append(l.headers[ev.Header.Shard], ev.Header)
}

// covering returns the header of the block whose range holds offset.
func (l *blockLog) covering(shard uint32, offset int64) (consensus.Header, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.headers[shard] {
		if h.FirstOffset <= offset && offset < h.NextOffset {
			return h, true
		}
	}
	return consensus.Header{}, false
}

func (l *blockLog) count(id tx.ID) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[id]
}

func startNode(t *testing.T, ctx context.Context, brokers []string, prefix, dir string, log *blockLog) *node.Node {
	t.Helper()
	return startNodeReg(t, ctx, brokers, prefix, dir, log, nil)
}

func startNodeReg(t *testing.T, ctx context.Context, brokers []string, prefix, dir string, log *blockLog, reg prometheus.Registerer) *node.Node {
	t.Helper()
	var seed [32]byte
	seed[0] = 1
	n, err := node.New(ctx, node.Config{
		ChainID: chain, Key: ed25519.NewKeyFromSeed(seed[:]), Shards: 2, Brokers: brokers, TopicPrefix: prefix,
		DataDir: dir, OnBlock: log.on, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func signedPut(i int, salt string) (*tx.Tx, []byte) {
	var seed [32]byte
	seed[0] = 9
	x := &tx.Tx{Kind: tx.KindPut, ChainID: chain, Nonce: uint64(i), Key: fmt.Appendf(nil, "k%d", i%37), Value: fmt.Appendf(nil, "%s-%d", salt, i)}
	x.Sign(ed25519.NewKeyFromSeed(seed[:]))
	return x, x.Encode()
}

// TestSubmitCommitRestart runs the whole write path over real QUIC and a
// real log: every accepted transaction gets a committed receipt whose proof
// verifies; transactions that reach the log while the node is down are
// committed once after restart, and nothing committed before is applied
// again.
func TestSubmitCommitRestart(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		prefix, dir := kafkatest.Prefix(t), t.TempDir()
		log := newBlockLog()
		n := startNode(t, ctx, brokers, prefix, dir, log)
		const first = 60
		submitPuts(t, ctx, n, first, "a")
		metas := map[uint32]storage.Meta{}
		for s := range uint32(2) {
			m, err := n.ShardMeta(s)
			if err != nil || m.Height == 0 {
				t.Fatalf("shard %d meta: %+v %v", s, m, err)
			}
			metas[s] = m
		}
		n.Close()
		n.Close() // twice is fine

		late, dupShard, dupOffset := appendWhileDown(t, ctx, brokers, prefix, first)
		// The store reopens where it stopped.
		db, err := storage.Open(filepath.Join(dir, "state"), storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for s := range uint32(2) {
			m, ok, err := db.ShardMeta(s)
			if err != nil || !ok || m.Root != metas[s].Root || m.Height != metas[s].Height {
				t.Fatalf("shard %d after reopening: %+v %v %v, want %+v", s, m, ok, err, metas[s])
			}
		}
		db.Close()

		n = startNode(t, ctx, brokers, prefix, dir, log)
		defer n.Close()
		deadline := time.Now().Add(30 * time.Second)
		for _, id := range late {
			for log.count(id) == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("transaction %v appended while down never committed", id)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		// Let the duplicate's block commit too, then check exactly-once.
		for m, _ := n.ShardMeta(dupShard); m.NextOffset <= dupOffset; m, _ = n.ShardMeta(dupShard) {
			if time.Now().After(deadline) {
				t.Fatalf("the duplicate at offset %d never reached a block", dupOffset)
			}
			time.Sleep(10 * time.Millisecond)
		}
		checkOnceContiguous(t, log, first, first+20)
	})
}

// submitPuts submits count puts (signedPut(i, salt)) to n at once and
// checks each one's committed receipt and proof.
func submitPuts(t *testing.T, ctx context.Context, n *node.Node, count int, salt string) {
	t.Helper()
	c, err := p2p.Dial(ctx, n.Addr().String(), p2p.ClientConfig{ServerKey: n.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, count)
	for i := range count {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x, raw := signedPut(i, salt)
			errs <- submitAndVerify(ctx, c, x, raw)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// appendWhileDown appends to the log directly, as if the node had crashed
// after the broker acked them, 20 new puts (signedPut(first.., "b")) and
// put 0 of "a", committed before, again. It returns the new puts' ids and
// where the duplicate went.
func appendWhileDown(t *testing.T, ctx context.Context, brokers []string, prefix string, first int) (late []tx.ID, dupShard uint32, dupOffset int64) {
	t.Helper()
	prod, err := ordering.Open(ctx, ordering.Config{Brokers: brokers, TopicPrefix: prefix, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := first; i < first+20; i++ {
		x, raw := signedPut(i, "b")
		id := tx.IDOf(raw)
		if _, err := prod.Append(ctx, ordering.ShardOf(x.RoutingKey(), 2), id[:], raw); err != nil {
			t.Fatal(err)
		}
		late = append(late, id)
	}
	dx, dupRaw := signedPut(0, "a")
	dupID := tx.IDOf(dupRaw)
	dupShard = ordering.ShardOf(dx.RoutingKey(), 2)
	if dupOffset, err = prod.Append(ctx, dupShard, dupID[:], dupRaw); err != nil {
		t.Fatal(err)
	}
	return late, dupShard, dupOffset
}

// checkOnceContiguous checks that puts 0..first-1 of "a" and first..all-1
// of "b" committed exactly once, and that every shard's heights are
// contiguous.
func checkOnceContiguous(t *testing.T, log *blockLog, first, all int) {
	t.Helper()
	for i := range all {
		_, raw := signedPut(i, map[bool]string{true: "a", false: "b"}[i < first])
		if k := log.count(tx.IDOf(raw)); k != 1 {
			t.Fatalf("tx %d committed %d times", i, k)
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for s, hs := range log.blocks {
		for i, h := range hs {
			if h != uint64(i+1) {
				t.Fatalf("shard %d heights %v", s, hs)
			}
		}
	}
}

func submitAndVerify(ctx context.Context, c *p2p.Client, x *tx.Tx, raw []byte) error {
	call, err := c.Submit(ctx, raw)
	if err != nil {
		return err
	}
	acc, err := call.Accepted()
	if err != nil {
		return err
	}
	if acc.ID != tx.IDOf(raw) {
		return errors.New("accepted names another transaction")
	}
	com, err := call.Committed()
	if err != nil {
		return err
	}
	if com.ID != acc.ID || com.Shard != acc.Shard || com.Status != p2p.StatusOK {
		return fmt.Errorf("receipt %+v for %+v", com, acc)
	}
	if com.Superseded {
		return nil
	}
	return storage.VerifyProofBytes(com.Root, state.PutKey(x.Key), x.Value, com.Proof)
}

// TestRejectsBadTransactions: the node refuses what fails stateless checks
// and keeps serving.
func TestRejectsBadTransactions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg := prometheus.NewRegistry()
	n := startNodeReg(t, ctx, kafkatest.Embedded(t), "", t.TempDir(), newBlockLog(), reg)
	defer n.Close()
	c, err := p2p.Dial(ctx, n.Addr().String(), p2p.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	x := &tx.Tx{Kind: tx.KindPut, ChainID: chain + 1, Key: []byte("k"), Value: []byte("v")}
	x.Sign(ed25519.NewKeyFromSeed(make([]byte, 32)))
	call, err := c.Submit(ctx, x.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var rej *p2p.RejectError
	if _, err := call.Accepted(); !errors.As(err, &rej) || rej.Code != tx.CodeChainID {
		t.Fatalf("wrong chain: %v", err)
	}
	good, raw := signedPut(1, "ok")
	if err := submitAndVerify(ctx, c, good, raw); err != nil {
		t.Fatalf("after a rejection: %v", err)
	}
	// The node's own metrics saw the same.
	if got := metricValue(t, reg, "rustorium_rejected_total", map[string]string{"reason": "wrong chain id"}); got != 1 {
		t.Errorf("rejected{wrong chain id} = %v", got)
	}
	for name, want := range map[string]float64{"rustorium_ingress_total": 1, "rustorium_accepted_total": 1, "rustorium_waiting_receipts": 0} {
		if got := metricValue(t, reg, name, nil); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// TestEmbeddedBrokerRestart: a node on its own embedded broker keeps the
// log across restarts, so it resumes from its store's offsets; its store
// syncs, so its broker syncs every produced batch too (an accepted
// transaction must survive what the store survives).
func TestEmbeddedBrokerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	var prev uint64
	for round := range 2 {
		log := newBlockLog()
		n := startNode(t, ctx, nil, "", dir, log)
		if !node.EmbeddedSyncWrites(n) {
			t.Fatal("a node whose store syncs runs its embedded broker without synchronous writes")
		}
		c, err := p2p.Dial(ctx, n.Addr().String(), p2p.ClientConfig{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			x, raw := signedPut(round*10+i, "e")
			if err := submitAndVerify(ctx, c, x, raw); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		c.Close()
		var height uint64
		for s := range uint32(2) {
			m, _ := n.ShardMeta(s)
			height += m.Height
		}
		if round == 1 && height <= prev {
			t.Fatalf("after restart the heights sum to %d, before %d: the store did not resume", height, prev)
		}
		prev = height
		n.Close()
	}
}

// TestPipelineFailureReported: a store that resumes from an offset the log
// does not have (here: the same store pointed at another, empty broker)
// is refused loudly — the node does not start (ErrLogBehind, naming each
// shard's offsets), instead of silently skipping, re-reading, or accepting
// transactions at offsets already consumed. (The same store on other
// topics of its broker is refused sooner: its layout names the topic
// prefix, TestDataDirLayout. A log whose start moved past the store's
// offset still stops the shard on Err, with ErrOffsetOutOfRange.)
func TestPipelineFailureReported(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers, dir := kafkatest.Embedded(t), t.TempDir()
	n := startNode(t, ctx, brokers, "first-", dir, newBlockLog())
	c, err := p2p.Dial(ctx, n.Addr().String(), p2p.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		x, raw := signedPut(i, "f")
		if err := submitAndVerify(ctx, c, x, raw); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	n.Close()

	var seed [32]byte
	seed[0] = 1
	n, err = node.New(ctx, node.Config{ChainID: chain, Key: ed25519.NewKeyFromSeed(seed[:]), Shards: 2, Brokers: kafkatest.Embedded(t), TopicPrefix: "first-", DataDir: dir})
	if err == nil {
		n.Close()
		t.Fatal("the node started on a log without its offsets")
	}
	if !errors.Is(err, node.ErrLogBehind) || !strings.Contains(err.Error(), "first-transactions-0 ends at offset 0") {
		t.Fatalf("New: %v, want ErrLogBehind naming the offsets", err)
	}
}

// TestCrossShardTransfer: a transfer debits its sender in one shard and
// credits the receiver in another exactly once, also across a restart; a
// transfer with a stale nonce fails with its reason in the receipt.
func TestCrossShardTransfer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := newTransferFixture(t, ctx)
	n := f.start()
	c, err := p2p.Dial(ctx, n.Addr().String(), p2p.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	first := f.transfer(c, 0, 30)
	if first.Status != p2p.StatusOK {
		t.Fatalf("transfer failed: %s", first.Reason)
	}
	// The very same transaction again is a duplicate: answered with the
	// stored receipt, not applied again.
	if com := f.transfer(c, 0, 30); com.Status != p2p.StatusOK || com.Height == 0 {
		t.Fatalf("duplicate: %+v", com)
	}
	// Another transaction with a used nonce fails, with the reason.
	if com := f.transfer(c, 0, 31); com.Status != p2p.StatusFailed || !strings.Contains(com.Reason, "nonce") {
		t.Fatalf("replayed nonce: %+v", com)
	}
	f.waitBalance(n, f.bobPub, 35)
	if got := f.balance(n, f.alicePub); got != 70 {
		t.Fatalf("alice %d, want 70", got)
	}
	f.forgeCredits(n, first.Height)
	c.Close()
	n.Close()

	// After a restart, nothing is credited twice and genesis is not re-applied.
	n = f.start()
	defer n.Close()
	c, err = p2p.Dial(ctx, n.Addr().String(), p2p.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if com := f.transfer(c, 1, 10); com.Status != p2p.StatusOK {
		t.Fatalf("second transfer failed: %s", com.Reason)
	}
	f.waitBalance(n, f.bobPub, 45)
	if got := f.balance(n, f.alicePub); got != 60 {
		t.Fatalf("alice %d, want 60", got)
	}
	f.checkView(n, c)
	f.log.mu.Lock()
	defer f.log.mu.Unlock()
	for id, k := range f.log.seen {
		if k != 1 {
			t.Fatalf("transaction %v committed %d times", id, k)
		}
	}
}

// transferFixture is a two-shard node's store and log with alice (100)
// and bob (5) in different shards.
type transferFixture struct {
	t                *testing.T
	ctx              context.Context
	alice            ed25519.PrivateKey
	alicePub, bobPub ed25519.PublicKey
	genesis          []node.GenesisAccount
	brokers          []string
	dir              string
	log              *blockLog
}

func newTransferFixture(t *testing.T, ctx context.Context) *transferFixture {
	var alice, bob ed25519.PrivateKey
	for i := byte(1); bob == nil; i++ {
		var seed [32]byte
		seed[0], seed[1] = 0xa, i
		k := ed25519.NewKeyFromSeed(seed[:])
		switch {
		case alice == nil:
			alice = k
		case ordering.ShardOf(k.Public().(ed25519.PublicKey), 2) != ordering.ShardOf(alice.Public().(ed25519.PublicKey), 2):
			bob = k
		}
	}
	f := &transferFixture{t: t, ctx: ctx, alice: alice, alicePub: alice.Public().(ed25519.PublicKey), bobPub: bob.Public().(ed25519.PublicKey),
		brokers: kafkatest.Embedded(t), dir: t.TempDir(), log: newBlockLog()}
	f.genesis = []node.GenesisAccount{{Key: f.alicePub, Balance: 100}, {Key: f.bobPub, Balance: 5}}
	return f
}

// start starts the node (again, on the same store).
func (f *transferFixture) start() *node.Node {
	var seed [32]byte
	n, err := node.New(f.ctx, node.Config{ChainID: chain, Key: ed25519.NewKeyFromSeed(seed[:]), Shards: 2, Brokers: f.brokers, DataDir: f.dir, OnBlock: f.log.on, Genesis: f.genesis})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := n.Start(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *transferFixture) balance(n *node.Node, pub ed25519.PublicKey) uint64 {
	a, ok, err := n.Account(pub)
	if err != nil || !ok {
		f.t.Fatalf("account: %v %v", ok, err)
	}
	return a.Balance
}

// transfer sends amount from alice to bob and returns the receipt.
func (f *transferFixture) transfer(c *p2p.Client, nonce, amount uint64) p2p.Committed {
	var to [32]byte
	copy(to[:], f.bobPub)
	x := &tx.Tx{Kind: tx.KindTransfer, ChainID: chain, Nonce: nonce, To: to, Amount: amount}
	x.Sign(f.alice)
	call, err := c.Submit(f.ctx, x.Encode())
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := call.Accepted(); err != nil {
		f.t.Fatal(err)
	}
	com, err := call.Committed()
	if err != nil {
		f.t.Fatal(err)
	}
	return com
}

func (f *transferFixture) waitBalance(n *node.Node, pub ed25519.PublicKey, want uint64) {
	deadline := time.Now().Add(20 * time.Second)
	for f.balance(n, pub) != want {
		if time.Now().After(deadline) {
			f.t.Fatalf("balance %d, want %d", f.balance(n, pub), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receipt waits for a transaction's stored receipt.
func (f *transferFixture) receipt(n *node.Node, id tx.ID) p2p.Committed {
	deadline := time.Now().Add(20 * time.Second)
	for {
		com, ok, err := n.Receipt(id)
		if err != nil {
			f.t.Fatal(err)
		}
		if ok {
			return com
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("no receipt for credit %v", id)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// forgeCredits writes credits to bob's log around the leaders: they are
// checked against the block they name (alice's transfer at height), so
// only what that block's execution emitted is applied, and each at most
// once.
func (f *transferFixture) forgeCredits(n *node.Node, height uint64) {
	t := f.t
	var to [32]byte
	copy(to[:], f.bobPub)
	aliceShard, bobShard := ordering.ShardOf(f.alicePub, 2), ordering.ShardOf(f.bobPub, 2)
	honest := &tx.Tx{Kind: tx.KindCredit, ChainID: chain, Nonce: 0, From: f.alicePub, To: to, Amount: 30,
		SourceShard: aliceShard, SourceHeight: height, Sig: make([]byte, 64)}
	inflated := *honest
	inflated.Amount = 1000
	selfSourced := *honest
	selfSourced.SourceShard, selfSourced.SourceHeight = bobShard, 1
	credited, err := n.ShardMeta(bobShard) // the real credit is committed by now
	if err != nil {
		t.Fatal(err)
	}
	prod, err := ordering.Open(f.ctx, ordering.Config{Brokers: f.brokers, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*tx.Tx{honest, &inflated, &selfSourced} {
		if _, err := prod.Append(f.ctx, bobShard, nil, x.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	prod.Close()
	for _, c := range []struct {
		x      *tx.Tx
		reason string
	}{{&inflated, "not emitted by block"}, {&selfSourced, "cannot credit shard"}} {
		if com := f.receipt(n, c.x.ID()); com.Status != p2p.StatusFailed || !strings.Contains(com.Reason, c.reason) {
			t.Fatalf("forged credit of %d: %+v, want failed with %q", c.x.Amount, com, c.reason)
		}
	}
	// The replayed real credit kept its first receipt: it was not
	// committed again in a later block.
	if com := f.receipt(n, honest.ID()); com.Status != p2p.StatusOK || com.Height > credited.Height {
		t.Fatalf("the replayed credit's receipt %+v, want its first (height ≤ %d)", com, credited.Height)
	}
	if got := f.balance(n, f.bobPub); got != 35 {
		t.Fatalf("bob %d after forged and replayed credits, want 35", got)
	}
}

// checkView checks that the account view agrees with storage and keeps
// up with new blocks without being invalidated: read it, transfer, read
// it again. Alice has 60 and her next nonce is 2.
func (f *transferFixture) checkView(n *node.Node, c *p2p.Client) {
	t := f.t
	view := func() uint64 {
		a, err := n.Views().Account(f.ctx, ordering.ShardOf(f.alicePub, 2), f.alicePub)
		if err != nil || !a.Exists {
			t.Fatalf("alice's view: %+v %v", a, err)
		}
		return a.Balance
	}
	if got := view(); got != 60 {
		t.Fatalf("alice's view %d, want 60", got)
	}
	misses := n.Views().Stats().Misses
	if com := f.transfer(c, 2, 5); com.Status != p2p.StatusOK {
		t.Fatalf("third transfer failed: %s", com.Reason)
	}
	if got := view(); got != 55 || n.Views().Stats().Misses != misses {
		t.Fatalf("alice's view %d after the block (misses %d → %d), want 55 from the delta", got, misses, n.Views().Stats().Misses)
	}
	if r := n.Views().Recent(f.alicePub); len(r) == 0 {
		t.Fatal("no recent transactions for alice")
	}
}

// TestGet: reads over QUIC return committed values with proofs against the
// shard root, and proofs of absence for missing keys.
func TestGet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := startNode(t, ctx, kafkatest.Embedded(t), "", t.TempDir(), newBlockLog())
	defer n.Close()
	c, err := p2p.Dial(ctx, n.Addr().String(), p2p.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	x, raw := signedPut(3, "get")
	if err := submitAndVerify(ctx, c, x, raw); err != nil {
		t.Fatal(err)
	}
	check := func(key, want []byte) {
		v, err := c.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if v.Found != (want != nil) || (want != nil && string(v.Value) != string(want)) {
			t.Fatalf("get %q: %+v", key, v)
		}
		if err := storage.VerifyProofBytes(v.Root, key, want, v.Proof); err != nil {
			t.Fatalf("get %q: proof: %v", key, err)
		}
	}
	check(state.PutKey(x.Key), x.Value)
	check(state.PutKey([]byte("never written")), nil)
	var rej *p2p.RejectError
	if _, err := c.Get(ctx, []byte{1}); !errors.As(err, &rej) || rej.Code != tx.CodeEncoding {
		t.Fatalf("a one-byte key: %v", err)
	}
}

// TestEmbeddedBrokerDownFailsLoudly: a node whose embedded broker stops
// accepting connections (kfake's accept loop ends for good on descriptor
// exhaustion) fails on Err with ErrBrokerDown instead of refusing writes
// forever; while the broker accepts, it does not.
func TestEmbeddedBrokerDownFailsLoudly(t *testing.T) {
	defer node.WatchEmbeddedEvery(20*time.Millisecond, 3)()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := startNode(t, ctx, nil, "", t.TempDir(), newBlockLog())
	defer n.Close()
	select {
	case err := <-n.Err():
		t.Fatalf("a node with a live broker failed: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	node.CloseEmbedded(n)
	select {
	case err := <-n.Err():
		if !errors.Is(err, node.ErrBrokerDown) {
			t.Fatalf("Err = %v, want ErrBrokerDown", err)
		}
	case <-ctx.Done():
		t.Fatal("the node did not notice its broker was gone")
	}
}

// TestReplicaRangesFromLeaderAndLog: a node's replicas take the
// transactions of the blocks its own leader cut from what the leader handed
// over, and read them from the log for the blocks a fault keeps them from
// that (every third height), seeking past the ranges handed over: every
// put commits once, every shard's heights are contiguous, both ways were
// taken, and no replica read a record outside the block it was reading.
func TestReplicaRangesFromLeaderAndLog(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var logs syncBuffer
		reg, blocks := prometheus.NewRegistry(), newBlockLog()
		var seed [32]byte
		seed[0] = 1
		n, err := node.New(ctx, node.Config{
			ChainID: chain, Key: ed25519.NewKeyFromSeed(seed[:]), Shards: 2, Brokers: brokers, TopicPrefix: kafkatest.Prefix(t),
			DataDir: t.TempDir(), OnBlock: blocks.on, Registerer: reg, Storage: storage.Options{NoSync: true},
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		n.Faults().SetNoHandoff(func(_ uint32, height uint64) bool { return height%3 == 0 })
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		const batches, per = 9, 6
		for b := range batches {
			submitPuts(t, ctx, n, per, fmt.Sprintf("r%d", b)) // each batch commits before the next: blocks of its own
		}
		for b := range batches {
			for i := range per {
				if _, raw := signedPut(i, fmt.Sprintf("r%d", b)); blocks.count(tx.IDOf(raw)) != 1 {
					t.Fatalf("put %d of batch %d committed %d times", i, b, blocks.count(tx.IDOf(raw)))
				}
			}
		}
		for s := range uint32(2) {
			hs := blocks.heights(s)
			for i, h := range hs {
				if h != uint64(i+1) {
					t.Fatalf("shard %d heights %v", s, hs)
				}
			}
		}
		fromLeader := metricValue(t, reg, "rustorium_replica_ranges_total", map[string]string{"from": "leader"})
		fromLog := metricValue(t, reg, "rustorium_replica_ranges_total", map[string]string{"from": "log"})
		if fromLeader == 0 || fromLog == 0 {
			t.Fatalf("ranges read from the leader %v, from the log %v: want both", fromLeader, fromLog)
		}
		if s := logs.String(); strings.Contains(s, "outside every block") {
			t.Fatalf("a replica read records outside the block it read:\n%s", s)
		}
		t.Logf("%s: %v ranges from the leader, %v from the log", kind, fromLeader, fromLog)
	})
}

// syncBuffer is a bytes.Buffer for a logger that goroutines share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
