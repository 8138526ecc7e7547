package node_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
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

		c, err := p2p.Dial(ctx, n.Addr().String(), p2p.ClientConfig{ServerKey: n.PublicKey()})
		if err != nil {
			t.Fatal(err)
		}
		const first = 60
		var wg sync.WaitGroup
		errs := make(chan error, first)
		for i := range first {
			wg.Add(1)
			go func() {
				defer wg.Done()
				x, raw := signedPut(i, "a")
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
		c.Close()
		roots := map[uint32][32]byte{}
		metas := map[uint32]storage.Meta{}
		for s := range uint32(2) {
			m, err := n.ShardMeta(s)
			if err != nil || m.Height == 0 {
				t.Fatalf("shard %d meta: %+v %v", s, m, err)
			}
			metas[s], roots[s] = m, m.Root.Bytes()
		}
		n.Close()
		n.Close() // twice is fine

		// While the node is down, transactions reach the log directly (as
		// if the node crashed after the broker acked them).
		prod, err := ordering.Open(ctx, ordering.Config{Brokers: brokers, TopicPrefix: prefix, Shards: 2})
		if err != nil {
			t.Fatal(err)
		}
		var late []tx.ID
		for i := first; i < first+20; i++ {
			x, raw := signedPut(i, "b")
			id := tx.IDOf(raw)
			if _, err := prod.Append(ctx, ordering.ShardOf(x.RoutingKey(), 2), id[:], raw); err != nil {
				t.Fatal(err)
			}
			late = append(late, id)
		}
		// One already committed transaction appears in the log again.
		_, dupRaw := signedPut(0, "a")
		dupID := tx.IDOf(dupRaw)
		dx, _ := tx.Decode(dupRaw)
		dupShard := ordering.ShardOf(dx.RoutingKey(), 2)
		dupOffset, err := prod.Append(ctx, dupShard, dupID[:], dupRaw)
		if err != nil {
			t.Fatal(err)
		}
		prod.Close()

		// The store reopens where it stopped.
		db, err := storage.Open(filepath.Join(dir, "state"), storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for s := range uint32(2) {
			m, ok, err := db.ShardMeta(s)
			if err != nil || !ok || m.Root.Bytes() != roots[s] || m.Height != metas[s].Height {
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
		for {
			m, _ := n.ShardMeta(dupShard)
			if m.NextOffset > dupOffset {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the duplicate at offset %d never reached a block", dupOffset)
			}
			time.Sleep(10 * time.Millisecond)
		}
		for i := range first + 20 {
			_, raw := signedPut(i, map[bool]string{true: "a", false: "b"}[i < first])
			if k := log.count(tx.IDOf(raw)); k != 1 {
				t.Fatalf("tx %d committed %d times", i, k)
			}
		}
		// Heights are contiguous per shard across the restart.
		log.mu.Lock()
		for s, hs := range log.blocks {
			for i, h := range hs {
				if h != uint64(i+1) {
					t.Fatalf("shard %d heights %v", s, hs)
				}
			}
		}
		log.mu.Unlock()
	})
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
// log across restarts, so it resumes from its store's offsets.
func TestEmbeddedBrokerRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	var prev uint64
	for round := range 2 {
		log := newBlockLog()
		n := startNode(t, ctx, nil, "", dir, log)
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
// does not have (here: the same store pointed at another log) stops its
// shard loudly on Err instead of silently skipping or re-reading.
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

	n = startNode(t, ctx, brokers, "second-", dir, newBlockLog())
	defer n.Close()
	select {
	case err := <-n.Err():
		if !errors.Is(err, ordering.ErrOffsetOutOfRange) {
			t.Fatalf("pipeline error %v, want ErrOffsetOutOfRange", err)
		}
	case <-ctx.Done():
		t.Fatal("the shard pipeline resumed on a log without its offsets and said nothing")
	}
}

// TestCrossShardTransfer: a transfer debits its sender in one shard and
// credits the receiver in another exactly once, also across a restart; a
// transfer with a stale nonce fails with its reason in the receipt.
func TestCrossShardTransfer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Two accounts that live in different shards (of 2).
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
	alicePub, bobPub := alice.Public().(ed25519.PublicKey), bob.Public().(ed25519.PublicKey)
	genesis := []node.GenesisAccount{{Key: alicePub, Balance: 100}, {Key: bobPub, Balance: 5}}
	brokers, dir := kafkatest.Embedded(t), t.TempDir()
	log := newBlockLog()
	start := func() *node.Node {
		var seed [32]byte
		n, err := node.New(ctx, node.Config{ChainID: chain, Key: ed25519.NewKeyFromSeed(seed[:]), Shards: 2, Brokers: brokers, DataDir: dir, OnBlock: log.on, Genesis: genesis})
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return n
	}
	balance := func(n *node.Node, pub ed25519.PublicKey) uint64 {
		a, ok, err := n.Account(pub)
		if err != nil || !ok {
			t.Fatalf("account: %v %v", ok, err)
		}
		return a.Balance
	}
	transfer := func(c *p2p.Client, nonce, amount uint64) p2p.Committed {
		var to [32]byte
		copy(to[:], bobPub)
		x := &tx.Tx{Kind: tx.KindTransfer, ChainID: chain, Nonce: nonce, To: to, Amount: amount}
		x.Sign(alice)
		call, err := c.Submit(ctx, x.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := call.Accepted(); err != nil {
			t.Fatal(err)
		}
		com, err := call.Committed()
		if err != nil {
			t.Fatal(err)
		}
		return com
	}
	waitBalance := func(n *node.Node, pub ed25519.PublicKey, want uint64) {
		deadline := time.Now().Add(20 * time.Second)
		for balance(n, pub) != want {
			if time.Now().After(deadline) {
				t.Fatalf("balance %d, want %d", balance(n, pub), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	n := start()
	c, err := p2p.Dial(ctx, n.Addr().String(), p2p.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	first := transfer(c, 0, 30)
	if first.Status != p2p.StatusOK {
		t.Fatalf("transfer failed: %s", first.Reason)
	}
	// The very same transaction again is a duplicate: answered with the
	// stored receipt, not applied again.
	if com := transfer(c, 0, 30); com.Status != p2p.StatusOK || com.Height == 0 {
		t.Fatalf("duplicate: %+v", com)
	}
	// Another transaction with a used nonce fails, with the reason.
	if com := transfer(c, 0, 31); com.Status != p2p.StatusFailed || !strings.Contains(com.Reason, "nonce") {
		t.Fatalf("replayed nonce: %+v", com)
	}
	waitBalance(n, bobPub, 35)
	if got := balance(n, alicePub); got != 70 {
		t.Fatalf("alice %d, want 70", got)
	}

	// Credits written to bob's log around the leaders are checked against
	// the block they name: only what that block's execution emitted is
	// applied, and each at most once.
	var to [32]byte
	copy(to[:], bobPub)
	aliceShard, bobShard := ordering.ShardOf(alicePub, 2), ordering.ShardOf(bobPub, 2)
	honest := &tx.Tx{Kind: tx.KindCredit, ChainID: chain, Nonce: 0, From: alicePub, To: to, Amount: 30,
		SourceShard: aliceShard, SourceHeight: first.Height, Sig: make([]byte, 64)}
	inflated := *honest
	inflated.Amount = 1000
	selfSourced := *honest
	selfSourced.SourceShard, selfSourced.SourceHeight = bobShard, 1
	credited, err := n.ShardMeta(bobShard) // the real credit is committed by now
	if err != nil {
		t.Fatal(err)
	}
	prod, err := ordering.Open(ctx, ordering.Config{Brokers: brokers, Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []*tx.Tx{honest, &inflated, &selfSourced} {
		if _, err := prod.Append(ctx, bobShard, nil, x.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	prod.Close()
	receipt := func(id tx.ID) p2p.Committed {
		deadline := time.Now().Add(20 * time.Second)
		for {
			com, ok, err := n.Receipt(id)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				return com
			}
			if time.Now().After(deadline) {
				t.Fatalf("no receipt for credit %v", id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, c := range []struct {
		x      *tx.Tx
		reason string
	}{{&inflated, "not emitted by block"}, {&selfSourced, "cannot credit shard"}} {
		if com := receipt(c.x.ID()); com.Status != p2p.StatusFailed || !strings.Contains(com.Reason, c.reason) {
			t.Fatalf("forged credit of %d: %+v, want failed with %q", c.x.Amount, com, c.reason)
		}
	}
	// The replayed real credit kept its first receipt: it was not
	// committed again in a later block.
	if com := receipt(honest.ID()); com.Status != p2p.StatusOK || com.Height > credited.Height {
		t.Fatalf("the replayed credit's receipt %+v, want its first (height ≤ %d)", com, credited.Height)
	}
	if got := balance(n, bobPub); got != 35 {
		t.Fatalf("bob %d after forged and replayed credits, want 35", got)
	}
	c.Close()
	n.Close()

	// After a restart, nothing is credited twice and genesis is not re-applied.
	n = start()
	defer n.Close()
	c, err = p2p.Dial(ctx, n.Addr().String(), p2p.ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if com := transfer(c, 1, 10); com.Status != p2p.StatusOK {
		t.Fatalf("second transfer failed: %s", com.Reason)
	}
	waitBalance(n, bobPub, 45)
	if got := balance(n, alicePub); got != 60 {
		t.Fatalf("alice %d, want 60", got)
	}
	// The account view agrees with storage and keeps up with new blocks
	// without being invalidated: read it, transfer, read it again.
	view := func() uint64 {
		a, err := n.Views().Account(ctx, ordering.ShardOf(alicePub, 2), alicePub)
		if err != nil || !a.Exists {
			t.Fatalf("alice's view: %+v %v", a, err)
		}
		return a.Balance
	}
	if got := view(); got != 60 {
		t.Fatalf("alice's view %d, want 60", got)
	}
	misses := n.Views().Stats().Misses
	if com := transfer(c, 2, 5); com.Status != p2p.StatusOK {
		t.Fatalf("third transfer failed: %s", com.Reason)
	}
	if got := view(); got != 55 || n.Views().Stats().Misses != misses {
		t.Fatalf("alice's view %d after the block (misses %d → %d), want 55 from the delta", got, misses, n.Views().Stats().Misses)
	}
	if r := n.Views().Recent(alicePub); len(r) == 0 {
		t.Fatal("no recent transactions for alice")
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	for id, k := range log.seen {
		if k != 1 {
			t.Fatalf("transaction %v committed %d times", id, k)
		}
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
