package node_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/health"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
)

// testCluster runs N nodes in process on one broker, each with its own
// store, identity and QUIC socket, all validators of each other.
type testCluster struct {
	t       testing.TB
	ctx     context.Context
	brokers []string
	prefix  string
	shards  int
	quorum  int
	genesis []node.GenesisAccount
	keys    []ed25519.PrivateKey
	addrs   []string
	dirs    []string
	logs    []*blockLog
	regs    []*prometheus.Registry
	alter   map[int]func(shard uint32, height uint64, root [32]byte) [32]byte // Faults.SetAlterRoot
	seen    map[int]func(tx.ID) bool                                          // Faults.SetSeenTx
	block   consensus.CutterConfig
	retain  int // node.Config.AttestationRetain

	mu    sync.Mutex
	nodes []*node.Node     // nil while down
	pcs   []net.PacketConn // the running nodes' sockets
	held  []net.PacketConn // each address's socket from its reservation to its node's first start
}

func newTestCluster(t testing.TB, ctx context.Context, brokers []string, n, shards, quorum int, genesis []node.GenesisAccount) *testCluster {
	c := &testCluster{
		t: t, ctx: ctx, brokers: brokers, prefix: kafkatest.Prefix(t), shards: shards, quorum: quorum, genesis: genesis,
		nodes: make([]*node.Node, n), pcs: make([]net.PacketConn, n), held: make([]net.PacketConn, n), alter: map[int]func(uint32, uint64, [32]byte) [32]byte{}, seen: map[int]func(tx.ID) bool{},
	}
	for i := range n {
		var seed [32]byte
		seed[0], seed[1] = 0xc1, byte(i)
		c.keys = append(c.keys, ed25519.NewKeyFromSeed(seed[:]))
		// Reserve each node's address: peers must know it before it runs,
		// and nothing else may take it meanwhile (held until its start).
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		c.addrs = append(c.addrs, pc.LocalAddr().String())
		c.held[i] = pc
		c.dirs = append(c.dirs, filepath.Join(t.TempDir(), fmt.Sprintf("node-%d", i+1)))
		c.logs = append(c.logs, newBlockLog())
		c.regs = append(c.regs, prometheus.NewRegistry())
	}
	t.Cleanup(c.close)
	return c
}

func (c *testCluster) peers() []p2p.Peer {
	out := make([]p2p.Peer, len(c.keys))
	for i, k := range c.keys {
		out[i] = p2p.Peer{Key: k.Public().(ed25519.PublicKey), Addr: c.addrs[i]}
	}
	return out
}

// start starts node i (again, after kill: same store, key and address).
func (c *testCluster) start(i int) *node.Node {
	c.t.Helper()
	c.mu.Lock()
	pc := c.held[i] // the reservation's, at the first start
	c.held[i] = nil
	c.mu.Unlock()
	var err error
	for range 50 { // the port of a killed node may take a moment to free
		if pc != nil {
			break
		}
		if pc, err = net.ListenPacket("udp", c.addrs[i]); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c.regs[i] = reg
	n, err := node.New(c.ctx, node.Config{
		ChainID: chain, Key: c.keys[i], NodeID: fmt.Sprintf("node-%d", i+1), Shards: c.shards,
		Brokers: c.brokers, TopicPrefix: c.prefix, DataDir: c.dirs[i], PacketConn: pc,
		Peers: c.peers(), Quorum: c.quorum, Genesis: c.genesis, OnBlock: c.logs[i].on, Registerer: reg,
		Leadership:        node.LeadershipConfig{SessionTimeout: time.Second, TransactionTimeout: 3 * time.Second},
		Block:             c.block,
		AttestationRetain: c.retain,
		Storage:           storage.Options{NoSync: true},
		Logger:            slog.New(slog.NewTextHandler(testLogWriter{c.t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		pc.Close()
		c.t.Fatal(err)
	}
	n.Faults().SetAlterRoot(c.alter[i])
	n.Faults().SetSeenTx(c.seen[i])
	if err := n.Start(c.ctx); err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.nodes[i], c.pcs[i] = n, pc
	c.mu.Unlock()
	return n
}

func (c *testCluster) startAll() {
	for i := range c.keys {
		c.start(i)
	}
}

// kill stops node i (Close: it leaves the leaders' group at once).
func (c *testCluster) kill(i int) {
	c.mu.Lock()
	n, pc := c.nodes[i], c.pcs[i]
	c.nodes[i], c.pcs[i] = nil, nil
	c.mu.Unlock()
	if n != nil {
		n.Close()
		pc.Close()
	}
}

func (c *testCluster) node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

func (c *testCluster) close() {
	for i := range c.nodes {
		c.kill(i)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, pc := range c.held { // nodes never started
		if pc != nil {
			pc.Close()
			c.held[i] = nil
		}
	}
}

// leaderOf returns the index of the node leading shard, waiting for one.
func (c *testCluster) leaderOf(shard uint32) int {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i := range c.nodes {
			if n := c.node(i); n != nil {
				for _, s := range n.Leading() {
					if s == shard {
						return i
					}
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no node leads shard %d", shard)
	return -1
}

// converged waits until every running node holds the same blocks and
// roots for every shard, and returns the common metas.
func (c *testCluster) converged(d time.Duration) []storage.Meta {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var first []storage.Meta
		same, why := true, ""
		for i := range c.nodes {
			n := c.node(i)
			if n == nil {
				continue
			}
			metas := make([]storage.Meta, c.shards)
			for s := range uint32(c.shards) {
				m, err := n.ShardMeta(s)
				if err != nil {
					c.t.Fatal(err)
				}
				metas[s] = m
			}
			if first == nil {
				first = metas
				continue
			}
			for s := range metas {
				if metas[s].Height != first[s].Height || metas[s].BlockHash != first[s].BlockHash || !metas[s].Root.Equal(&first[s].Root) {
					same, why = false, fmt.Sprintf("node-%d shard %d at height %d, first node at %d", i+1, s, metas[s].Height, first[s].Height)
				}
			}
		}
		if same {
			return first
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nodes did not converge: %s", why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// balances sums the genesis accounts' balances on node i.
func (c *testCluster) balances(i int) uint64 {
	c.t.Helper()
	var sum uint64
	for _, a := range c.genesis {
		acct, ok, err := c.node(i).Account(a.Key)
		if err != nil || !ok {
			c.t.Fatalf("node-%d: account %x: %v %v", i+1, a.Key[:4], ok, err)
		}
		sum += acct.Balance
	}
	return sum
}

// transferLoad submits transfers between accounts from several goroutines
// (one per sender, nonces in order), spreading them over the running nodes,
// until stop is closed. It returns the ids the log accepted.
type transferLoad struct {
	mu       sync.Mutex
	accepted map[tx.ID]bool
	info     map[tx.ID]string // where and when each was accepted, for failure reports
	failed   atomic.Int64     // submissions refused or cut off (node down)
	wg       sync.WaitGroup
	stop     chan struct{}
}

func (c *testCluster) startTransfers(accounts []ed25519.PrivateKey, senders int, every time.Duration) *transferLoad {
	l := &transferLoad{accepted: map[tx.ID]bool{}, info: map[tx.ID]string{}, stop: make(chan struct{})}
	for g := range senders {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			from := accounts[g]
			clients := map[int]*p2p.Client{}
			defer func() {
				for _, cl := range clients {
					cl.Close()
				}
			}()
			var nonce uint64
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				case <-time.After(every):
				}
				ni := (g + i) % len(c.keys)
				n := c.node(ni)
				if n == nil {
					continue
				}
				cl := clients[ni]
				if cl == nil {
					var err error
					ctx, cancel := context.WithTimeout(c.ctx, time.Second)
					cl, err = p2p.Dial(ctx, c.addrs[ni], p2p.ClientConfig{ServerKey: c.keys[ni].Public().(ed25519.PublicKey)})
					cancel()
					if err != nil {
						l.failed.Add(1)
						continue
					}
					clients[ni] = cl
				}
				var to [32]byte
				copy(to[:], accounts[rng.IntN(len(accounts))].Public().(ed25519.PublicKey))
				x := &tx.Tx{Kind: tx.KindTransfer, ChainID: chain, Nonce: nonce, To: to, Amount: uint64(1 + rng.IntN(5))}
				x.Sign(from)
				raw := x.Encode()
				ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
				call, err := cl.Submit(ctx, raw)
				var acc p2p.Accepted
				if err == nil {
					acc, err = call.Accepted()
				}
				cancel()
				if err != nil {
					// The node is down or the connection broke: the tx
					// may or may not be in the log. Redial next time and
					// resynchronize the nonce from the committed state.
					l.failed.Add(1)
					cl.Close()
					delete(clients, ni)
					nonce = 0
					for j := range c.keys {
						if m := c.node(j); m != nil {
							if a, ok, err := m.Account(x.From); err == nil && ok {
								nonce = a.Nonce
							}
							break
						}
					}
					continue
				}
				l.mu.Lock()
				l.accepted[tx.IDOf(raw)] = true
				l.info[tx.IDOf(raw)] = fmt.Sprintf("shard %d offset %d via node-%d at %s", acc.Shard, acc.Offset, ni+1, time.Now().Format("15:04:05.000"))
				l.mu.Unlock()
				nonce++
			}
		}()
	}
	return l
}

func (l *transferLoad) end() map[tx.ID]bool {
	close(l.stop)
	l.wg.Wait()
	return l.accepted
}

func testAccounts(n, shards int) ([]ed25519.PrivateKey, []node.GenesisAccount) {
	var keys []ed25519.PrivateKey
	var genesis []node.GenesisAccount
	for i := range n {
		var seed [32]byte
		seed[0], seed[1], seed[2] = 0xac, byte(i), byte(i>>8)
		k := ed25519.NewKeyFromSeed(seed[:])
		keys = append(keys, k)
		genesis = append(genesis, node.GenesisAccount{Key: k.Public().(ed25519.PublicKey), Balance: 1_000_000})
	}
	return keys, genesis
}

// TestClusterFailover runs 3 nodes with 4 shards (quorum 2) under transfer
// load, kills the leader of a shard mid-load and restarts it, then pauses a
// node: no accepted transaction is lost or applied twice, balances are
// conserved on every node, and all nodes end with equal roots.
func TestClusterFailover(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		const shards = 4
		accounts, genesis := testAccounts(12, shards)
		c := newTestCluster(t, ctx, brokers, 3, shards, 2, genesis)
		c.startAll()
		load := c.startTransfers(accounts, len(accounts), 5*time.Millisecond)

		time.Sleep(time.Second)
		victim := c.leaderOf(1)
		before := c.logs[victim].blocksOf(1)
		t.Logf("%s: killing node-%d, leader of shard 1 (leads %v), after %d blocks of shard 1", kind, victim+1, c.node(victim).Leading(), before)
		killedAt := time.Now()
		c.kill(victim)
		// Another node takes shard 1 over and its blocks become final.
		survivor := (victim + 1) % 3
		for c.logs[survivor].blocksOf(1) <= c.logs[victim].blocksOf(1)+1 {
			if time.Since(killedAt) > 30*time.Second {
				t.Fatal("shard 1 made no progress after its leader was killed")
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("%s: shard 1 committed a new block %v after the kill (new leader node-%d)", kind, time.Since(killedAt).Round(time.Millisecond), c.leaderOf(1)+1)
		// Down long enough to miss hundreds of heights: it must catch up
		// on the attestations it missed (pulled from its peers).
		time.Sleep(3 * time.Second)
		target := c.logs[survivor].blocksOf(1)
		restartedAt := time.Now()
		c.start(victim)
		for c.logs[victim].blocksOf(1) < target {
			if time.Since(restartedAt) > 30*time.Second {
				t.Fatalf("the restarted node-%d is stuck at %d blocks of shard 1, the others had %d when it restarted", victim+1, c.logs[victim].blocksOf(1), target)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("%s: node-%d restarted and caught up %d blocks of shard 1 in %v", kind, victim+1, target-before, time.Since(restartedAt).Round(time.Millisecond))

		time.Sleep(time.Second)
		paused := (victim + 2) % 3
		c.node(paused).Pause()
		time.Sleep(time.Second)
		c.node(paused).Resume()
		time.Sleep(time.Second)
		accepted := load.end()
		if len(accepted) < 100 {
			t.Fatalf("only %d transfers accepted", len(accepted))
		}

		// Drain: the last accepted transfers commit within moments; one
		// that never does is lost.
		deadline := time.Now().Add(30 * time.Second)
		for i := 0; i < len(c.logs) && time.Now().Before(deadline); {
			if lost, _ := c.logs[i].check(accepted); lost == 0 {
				i++
				continue
			}
			time.Sleep(20 * time.Millisecond)
		}
		c.converged(30 * time.Second)
		var want uint64
		for _, a := range genesis {
			want += a.Balance
		}
		for i := range c.keys {
			// Credits of the last transfers may still be on their way.
			deadline := time.Now().Add(10 * time.Second)
			for c.balances(i) != want && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if got := c.balances(i); got != want {
				t.Errorf("node-%d: balances add up to %d, genesis gave %d", i+1, got, want)
			}
		}
		metas := c.converged(10 * time.Second) // credits may have added blocks
		for i, l := range c.logs {
			lost, dup := l.check(accepted)
			if lost+dup > 0 {
				t.Errorf("node-%d: of %d accepted, %d never committed, %d committed twice", i+1, len(accepted), lost, dup)
				shown := 0
				for id := range accepted {
					if l.count(id) == 0 && shown < 5 {
						shown++
						var shard uint32
						var off int64
						fmt.Sscanf(load.info[id], "shard %d offset %d", &shard, &off)
						h, ok := l.covering(shard, off)
						t.Logf("  lost %x: %s; block covering it: %v %+v", id[:4], load.info[id], ok, h)
					}
				}
			}
		}
		var heights []uint64
		for _, m := range metas {
			heights = append(heights, m.Height)
		}
		t.Logf("%s: %d transfers accepted (%d submissions failed while a node was down), heights %v, roots equal on 3 nodes",
			kind, len(accepted), load.failed.Load(), heights)
	})
}

// TestClusterWrongRoot configures one of three nodes to attest wrong roots
// for shard 0: it raises the divergence alarm and stops applying shard 0,
// while the other two (a quorum of 2) go on finalizing it, and all three
// go on with the other shards.
func TestClusterWrongRoot(t *testing.T) {
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const shards = 2
		c := newTestCluster(t, ctx, brokers, 3, shards, 2, nil)
		const bad = 2
		c.alter[bad] = func(shard uint32, height uint64, root [32]byte) [32]byte {
			if shard == 0 {
				root[31] ^= 1
			}
			return root
		}
		c.startAll()
		cl, err := p2p.Dial(ctx, c.addrs[0], p2p.ClientConfig{ServerKey: c.keys[0].Public().(ed25519.PublicKey)})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		perShard := map[uint32]int{}
		for i := 0; perShard[0] < 5 || perShard[1] < 5; i++ {
			x, raw := signedPut(i, "wrong-root")
			call, err := cl.Submit(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			acc, err := call.Accepted()
			if err != nil {
				t.Fatal(err)
			}
			com, err := call.Committed()
			if err != nil {
				t.Fatalf("tx %d (shard %d): %v", i, acc.Shard, err)
			}
			if err := storage.VerifyProofBytes(com.Root, state.PutKey(x.Key), x.Value, com.Proof); err != nil && !com.Superseded {
				t.Fatalf("proof: %v", err)
			}
			perShard[acc.Shard]++
		}
		deadline := time.Now().Add(10 * time.Second)
		for !c.node(bad).Halted(0) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !c.node(bad).Halted(0) || c.node(bad).Halted(1) || c.node(0).Halted(0) || c.node(1).Halted(0) {
			t.Fatalf("halted: bad node %v/%v, good nodes %v/%v", c.node(bad).Halted(0), c.node(bad).Halted(1), c.node(0).Halted(0), c.node(1).Halted(0))
		}
		// A node that halted a shard does not lead it (this run checks it
		// only if the group gave the bad node shard 0;
		// TestHaltedNodeResignsLeadership forces that case).
		waitFor(t, 10*time.Second, "the bad node stops leading shard 0, which it halted", func() bool {
			return !slices.Contains(c.node(bad).Leading(), 0)
		})
		// The tracker halts the shard before the runner counts the alarm.
		waitFor(t, 10*time.Second, "the bad node counts a divergence alarm", func() bool {
			m := series(t, c.regs[bad], "rustorium_alarms_total", map[string]string{"shard": "0", "kind": "divergence"})
			return m != nil && m.GetCounter().GetValue() >= 1
		})
		if got := c.logs[bad].blocksOf(0); got > 0 {
			t.Fatalf("the bad node committed %d blocks of shard 0 after computing a wrong root", got)
		}
		// Its readiness names the halted shard, and only it; the good
		// nodes are ready.
		if failed := health.Failing(c.node(bad).Ready(ctx)); len(failed) != 1 || failed[0].Name != "shard 0" || !strings.Contains(failed[0].Error, "halted") {
			t.Fatalf("the bad node's failed checks: %+v, want shard 0 halted", failed)
		}
		if m := series(t, c.regs[bad], "rustorium_ready", nil); m == nil || m.GetGauge().GetValue() != 0 {
			t.Fatalf("the bad node's rustorium_ready: %v, want 0", m)
		}
		if failed := health.Failing(c.node(0).Ready(ctx)); failed != nil {
			t.Fatalf("a good node's failed checks: %+v", failed)
		}
		if c.logs[0].blocksOf(0) < 1 || c.logs[bad].blocksOf(1) < 1 {
			t.Fatalf("good node shard 0: %d blocks; bad node shard 1: %d blocks", c.logs[0].blocksOf(0), c.logs[bad].blocksOf(1))
		}
		t.Logf("%s: good nodes committed %d blocks of shard 0, the bad one %d (alarm raised); shard 1: %d on the bad node",
			kind, c.logs[0].blocksOf(0), c.logs[bad].blocksOf(0), c.logs[bad].blocksOf(1))
	})
}

// series returns the series of family name on reg whose labels include
// want, or nil.
func series(t testing.TB, reg *prometheus.Registry, name string, want map[string]string) *dto.Metric {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := 0
			for _, lp := range m.GetLabel() {
				if v, ok := want[lp.GetName()]; ok && v == lp.GetValue() {
					match++
				}
			}
			if match == len(want) {
				return m
			}
		}
	}
	return nil
}

// metricValue is the value of the counter or gauge series of family name
// whose labels include want; the test fails if there is none.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	m := series(t, reg, name, want)
	if m == nil {
		t.Fatalf("no series %s%v", name, want)
	}
	return m.GetCounter().GetValue() + m.GetGauge().GetValue()
}

// histogram is a histogram series' sum and count, by phase label.
func histogram(t testing.TB, reg *prometheus.Registry, name, phase string) (float64, uint64) {
	h := series(t, reg, name, map[string]string{"phase": phase}).GetHistogram()
	return h.GetSampleSum(), h.GetSampleCount()
}

func (l *blockLog) heights(shard uint32) []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.blocks[shard])
}

func (l *blockLog) blocksOf(shard uint32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.blocks[shard])
}

// check counts accepted transactions never committed, and transactions
// committed more than once.
func (l *blockLog) check(accepted map[tx.ID]bool) (lost, dup int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range accepted {
		if l.seen[id] == 0 {
			lost++
		}
	}
	for _, n := range l.seen {
		if n > 1 {
			dup++
		}
	}
	return lost, dup
}

// TestManyBlocksPerRound: with tiny blocks, a burst makes a leader cut many
// blocks of one shard in one round, more than it lets run ahead of its own
// commits across rounds; all of them commit, in order, exactly once.
func TestManyBlocksPerRound(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newTestCluster(t, ctx, kafkatest.Embedded(t), 1, 2, 0, nil)
	c.block = consensus.CutterConfig{MaxTxs: 2}
	n := c.start(0)
	c.node(0).Pause() // let the burst pile up in the log
	cl, err := p2p.Dial(ctx, c.addrs[0], p2p.ClientConfig{ServerKey: n.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const total = 200
	calls := make([]*p2p.Call, total)
	var wg sync.WaitGroup
	for i := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, raw := signedPut(i, "burst")
			call, err := cl.Submit(ctx, raw)
			if err != nil {
				t.Error(err)
				return
			}
			calls[i] = call
		}()
	}
	time.Sleep(200 * time.Millisecond) // the submissions wait at the paused node
	n.Resume()
	wg.Wait()
	for i, call := range calls {
		if call == nil {
			t.Fatalf("tx %d not submitted", i)
		}
		if _, err := call.Accepted(); err != nil {
			t.Fatal(err)
		}
		if _, err := call.Committed(); err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
	}
	blocks := c.logs[0].blocksOf(0) + c.logs[0].blocksOf(1)
	if blocks < total/2 {
		t.Fatalf("%d blocks for %d txs with at most 2 per block", blocks, total)
	}
	for s := range uint32(2) {
		hs := c.logs[0].heights(s)
		for i, h := range hs {
			if h != uint64(i+1) {
				t.Fatalf("shard %d heights %v: not consecutive", s, hs)
			}
		}
	}
}

// testLogWriter sends a node's warnings and errors to the test log.
type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestCatchUpBeyondRetainedAttestations: peers keep only their last 16
// attestations per shard in memory; a node that was down for many more
// heights (more than the peers' send queues to it hold, too) still catches
// up, because older ones are signed again from the peers' committed
// headers.
func TestCatchUpBeyondRetainedAttestations(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const shards, retain = 2, 16
	c := newTestCluster(t, ctx, kafkatest.Embedded(t), 3, shards, 2, nil)
	c.retain = retain
	c.block = consensus.CutterConfig{MaxTxs: 2, MaxBytes: 1 << 20, MaxWait: time.Millisecond}
	c.startAll()
	const down = 2
	c.kill(down)
	before := storedHeights(t, c, down)
	cl, err := p2p.Dial(ctx, c.addrs[0], p2p.ClientConfig{ServerKey: c.keys[0].Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var calls []*p2p.Call
	for i := 0; ; i++ {
		_, raw := signedPut(i, "beyond-retain")
		call, err := cl.Submit(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, call)
		if i%50 == 49 { // enough heights past the retained ones, in every shard?
			for _, call := range calls {
				if _, err := call.Accepted(); err != nil {
					t.Fatal(err)
				}
				if _, err := call.Committed(); err != nil {
					t.Fatal(err)
				}
			}
			calls = calls[:0]
			enough := true
			for s := range uint32(shards) {
				m, err := c.node(0).ShardMeta(s)
				if err != nil {
					t.Fatal(err)
				}
				// 2 shards × 600 heights overflow a peer's 1024-frame
				// queue to the down node: queued attestations alone
				// cannot bring it back.
				enough = enough && m.Height > before[s]+600
			}
			if enough {
				break
			}
		}
	}
	c.start(down)
	metas := c.converged(30 * time.Second)
	t.Logf("node-%d caught up from heights %v to %d/%d", down+1, before, metas[0].Height, metas[1].Height)
}

// storedHeights reads node i's committed height of every shard from its
// store while the node is down.
func storedHeights(t *testing.T, c *testCluster, i int) []uint64 {
	t.Helper()
	db, err := storage.Open(filepath.Join(c.dirs[i], "state"), storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := make([]uint64, c.shards)
	for s := range out {
		m, _, err := db.ShardMeta(uint32(s))
		if err != nil {
			t.Fatal(err)
		}
		out[s] = m.Height
	}
	return out
}

// TestHaltedNodeResignsLeadership: a node that halted a shard and is then
// given that shard to lead (here for certain: it is the only member of the
// leaders' group left) leaves the group for good instead of consuming the
// shard's records without a block. The transactions it accepted meanwhile
// commit, once each, when the other nodes return.
func TestHaltedNodeResignsLeadership(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const shards, bad = 2, 2
	c := newTestCluster(t, ctx, kafkatest.Embedded(t), 3, shards, 2, nil)
	c.alter[bad] = func(shard uint32, height uint64, root [32]byte) [32]byte {
		if shard == 0 {
			root[31] ^= 1
		}
		return root
	}
	dial := func(i int) *p2p.Client {
		cl, err := p2p.Dial(ctx, c.addrs[i], p2p.ClientConfig{ServerKey: c.keys[i].Public().(ed25519.PublicKey)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	// submit sends puts through cl until n of them are in shard 0, and
	// returns every accepted id, waiting for the commits if wait.
	next := 0
	submit := func(cl *p2p.Client, n int, wait bool) map[tx.ID]bool {
		ids := map[tx.ID]bool{}
		for inShard0 := 0; inShard0 < n; next++ {
			_, raw := signedPut(next, "resign")
			call, err := cl.Submit(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			acc, err := call.Accepted()
			if err != nil {
				t.Fatal(err)
			}
			if wait {
				if _, err := call.Committed(); err != nil {
					t.Fatal(err)
				}
			}
			ids[acc.ID] = true
			if acc.Shard == 0 {
				inShard0++
			}
		}
		return ids
	}
	c.start(0)
	c.start(1)
	submit(dial(0), 3, true)
	c.start(bad)
	waitFor(t, 20*time.Second, "the bad node halts shard 0", func() bool { return c.node(bad).Halted(0) })
	c.kill(0)
	c.kill(1)
	// Only the bad node is left: the group gives it both shards.
	pending := submit(dial(bad), 10, false)
	waitFor(t, 20*time.Second, "the bad node resigns leadership", func() bool {
		return metricValue(t, c.regs[bad], "rustorium_leader_resigned", nil) == 1
	})
	c.start(0)
	c.start(1)
	// Both good nodes, each at its own pace (node-2 may commit a moment
	// after node-1 on a busy machine).
	waitFor(t, 30*time.Second, "the good nodes commit what the bad node accepted", func() bool {
		lost0, _ := c.logs[0].check(pending)
		lost1, _ := c.logs[1].check(pending)
		return lost0 == 0 && lost1 == 0
	})
	if _, dup := c.logs[1].check(pending); dup != 0 {
		t.Fatalf("node-2: %d transactions committed twice", dup)
	}
	if _, dup := c.logs[0].check(pending); dup != 0 {
		t.Fatalf("node-1: %d transactions committed twice", dup)
	}
}

// waitFor polls cond until it holds or d passes, and then fails the test
// naming what it waited for.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", d, what)
		}
	}
}

// TestReplicaWithOtherTxSetHalts: a replica that executes another set of
// transactions than the block's header names halts the shard, even where
// its state root agrees with the quorum's. Here the one transaction it
// takes for committed before is a transfer that fails everywhere else, so
// it writes nothing and the roots match; only the block hash the replica
// attests (its own count and tx root) tells the difference.
func TestReplicaWithOtherTxSetHalts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var seed [32]byte
	seed[0] = 0xb1
	alice := ed25519.NewKeyFromSeed(seed[:])
	alicePub := alice.Public().(ed25519.PublicKey)
	const shards, bad = 2, 2
	shard := ordering.ShardOf(alicePub, shards)
	c := newTestCluster(t, ctx, kafkatest.Embedded(t), 3, shards, 2, []node.GenesisAccount{{Key: alicePub, Balance: 10}})
	overdraft := &tx.Tx{Kind: tx.KindTransfer, ChainID: chain, Nonce: 0, To: [32]byte{1}, Amount: 1000}
	overdraft.Sign(alice)
	raw := overdraft.Encode()
	id := tx.IDOf(raw)
	c.seen[bad] = func(x tx.ID) bool { return x == id }
	c.startAll()
	cl, err := p2p.Dial(ctx, c.addrs[0], p2p.ClientConfig{ServerKey: c.keys[0].Public().(ed25519.PublicKey)})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	call, err := cl.Submit(ctx, raw)
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
	if com.Status != p2p.StatusFailed || !strings.Contains(com.Reason, "balance") {
		t.Fatalf("the overdraft committed as %+v, want failed for its balance", com)
	}
	waitFor(t, 20*time.Second, "the replica that skipped a transaction halts the shard", func() bool { return c.node(bad).Halted(shard) })
	if c.node(0).Halted(shard) || c.node(1).Halted(shard) || c.node(bad).Halted(1-shard) {
		t.Fatal("a good node, or the bad node's other shard, halted")
	}
	if got := c.logs[bad].blocksOf(shard); got != 0 {
		t.Fatalf("the bad node committed %d blocks of shard %d", got, shard)
	}
}
