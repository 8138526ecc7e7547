package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rustorium/rustorium/cluster"
	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
)

// TestNodeCrashRestart kills a shard leader with SIGKILL — no graceful
// leave of the group, no Pebble close, its Kafka transaction left open —
// in the middle of a transfer load on three `rustorium node` processes,
// and restarts it from its data directory 3s later. Every accepted
// transfer must commit exactly once on every node (credits included:
// balances stay conserved), the survivors' clients must get every receipt,
// and all three stores must end with equal heights, blocks and roots. On
// the embedded broker and on the real one.
func TestNodeCrashRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes")
	}
	bin := buildBinary(t, t.TempDir())
	kafkatest.ForEachBroker(t, func(t *testing.T, brokers []string, kind string) {
		crashRestart(t, bin, brokers)
	})
}

func crashRestart(t *testing.T, bin string, brokers []string) {
	dir := t.TempDir()
	path, keyFiles, accounts := testCluster(t, dir, 3, brokers)
	cf, err := cluster.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	procs := startExecProcs(t, ctx, bin, path, dir, keyFiles)

	// The transfers, grouped by sender so that each sender's nonces reach
	// the log in order.
	tr := &loadgen.Transfers{ChainID: 7, Accounts: accounts, Keys: &loadgen.Sequential{N: uint64(len(accounts))}, Amount: 1, Seed: 11}
	raws, err := tr.Generate(ctx, 480, nil)
	if err != nil {
		t.Fatal(err)
	}
	bySender := map[uint32][][]byte{}
	for i, raw := range raws {
		bySender[tr.Senders[i]] = append(bySender[tr.Senders[i]], raw)
	}

	// The victim leads a shard that the transfers use, according to the
	// nodes' own metrics (rustorium_shard_leader), once every node has
	// joined the leaders' group.
	busy := map[uint32]bool{}
	for _, a := range accounts {
		busy[ordering.ShardOf(a.Public().(ed25519.PublicKey), cf.Shards)] = true
	}
	victim := -1
	for deadline := time.Now().Add(30 * time.Second); victim < 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no node reports leading a shard in use:\n%s", procs[0].log.String())
		}
		leads := make([][]uint32, len(procs))
		all := true
		for i, p := range procs {
			if leads[i], err = p.leading(ctx); err != nil {
				t.Fatal(err)
			}
			all = all && len(leads[i]) > 0 // 4 shards, 3 members: each leads one
		}
		if !all {
			continue
		}
		for i := range leads {
			for _, sh := range leads[i] {
				if busy[sh] && victim < 0 {
					victim = i
				}
			}
		}
	}
	var survivors []int
	for i := range procs {
		if i != victim {
			survivors = append(survivors, i)
		}
	}
	clients := make([]*p2p.Client, len(survivors))
	for j, i := range survivors {
		c, err := p2p.Dial(ctx, cf.Nodes[i].Addr, p2p.ClientConfig{ServerKey: cf.Keys()[i]})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients[j] = c
	}

	var (
		sent     atomic.Int64
		slowest  atomic.Int64 // submit → committed, µs
		mu       sync.Mutex
		accepted []tx.ID
		wg       sync.WaitGroup
	)
	// A failure on this goroutine ends the load before the test returns.
	defer func() { cancel(); wg.Wait() }()
	killAt := int64(len(raws) / 4)
	s := 0
	for _, txs := range bySender {
		c := clients[s%len(clients)]
		s++
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, raw := range txs {
				t0 := time.Now()
				call, err := c.Submit(ctx, raw)
				if err == nil {
					_, err = call.Accepted()
				}
				if err != nil {
					t.Errorf("submit: %v", err)
					return
				}
				mu.Lock()
				accepted = append(accepted, tx.IDOf(raw))
				mu.Unlock()
				sent.Add(1)
				// The receipt: the survivors commit through the crash.
				if _, err := call.Committed(); err != nil {
					t.Errorf("receipt: %v", err)
					return
				}
				for d := time.Since(t0).Microseconds(); d > slowest.Load(); {
					if slowest.CompareAndSwap(slowest.Load(), d) {
						break
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	// The crash and the restart, on the test's goroutine (they may
	// t.Fatal) while the load runs.
	for sent.Load() < killAt && !t.Failed() {
		time.Sleep(5 * time.Millisecond)
	}
	leads, _ := procs[victim].leading(ctx)
	t.Logf("SIGKILL node-%d (leading shards %v) after %d transfers", victim+1, leads, sent.Load())
	procs[victim].kill()
	time.Sleep(3 * time.Second)
	procs[victim] = newExecProc(t, ctx, bin, path, dir, keyFiles, victim)
	procs[victim].log.waitRunning(t, victim)
	t.Logf("node-%d restarted", victim+1)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Wait until the restarted node serves the same roots as the others
	// for every genesis account, then stop all three and compare stores.
	// Twice, a second apart: a credit block still in flight when the roots
	// first agree would otherwise reach some nodes before their stop and
	// not others (seen once: node-1 one block behind, a credit short).
	deadline := time.Now().Add(60 * time.Second)
	for settled := 0; settled < 2; {
		if !sameRoots(ctx, t, cf, accounts) {
			settled = 0
			if time.Now().After(deadline) {
				t.Fatalf("node-%d did not catch up:\n%s", victim+1, procs[victim].log.String())
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if settled++; settled < 2 {
			time.Sleep(time.Second)
		}
	}
	for i, p := range procs {
		if err := p.stop(); err != nil {
			t.Errorf("node-%d: %v\n%s", i+1, err, p.log.String())
		}
	}
	var first []storage.Meta
	for i := range procs {
		db, err := storage.Open(filepath.Join(dir, fmt.Sprintf("node-%d", i+1), "state"), storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var metas []storage.Meta
		var balance uint64
		for sh := range uint32(cf.Shards) {
			m, _, err := db.ShardMeta(sh)
			if err != nil {
				t.Fatal(err)
			}
			metas = append(metas, m)
		}
		for _, a := range accounts {
			pub := a.Public().(ed25519.PublicKey)
			v, ok, err := db.Get(ordering.ShardOf(pub, cf.Shards), state.AccountKey(pub))
			if err != nil || !ok {
				t.Fatalf("node-%d: account: %v %v", i+1, ok, err)
			}
			acct, _ := state.DecodeAccount(v)
			balance += acct.Balance
		}
		lost := 0
		for _, id := range accepted {
			if ok, err := db.HasTx(id); err != nil || !ok {
				lost++
			}
		}
		db.Close()
		if lost > 0 || balance != uint64(1000*len(accounts)) {
			t.Errorf("node-%d: %d of %d accepted transfers missing, balances add up to %d (genesis %d)", i+1, lost, len(accepted), balance, 1000*len(accounts))
		}
		if first == nil {
			first = metas
			continue
		}
		for sh := range metas {
			if metas[sh].Height != first[sh].Height || metas[sh].BlockHash != first[sh].BlockHash || !metas[sh].Root.Equal(&first[sh].Root) {
				t.Errorf("shard %d: node-%d at height %d, node-1 at %d (or another block or root)", sh, i+1, metas[sh].Height, first[sh].Height)
			}
		}
	}
	t.Logf("%d transfers accepted and committed on every node; slowest receipt %v (the crash's fail-over); heights %d/%d/%d/%d",
		len(accepted), time.Duration(slowest.Load())*time.Microsecond, first[0].Height, first[1].Height, first[2].Height, first[3].Height)
}

// sameRoots reports whether every node answers every genesis account's
// read with the same root and value (read over QUIC, proofs verified).
func sameRoots(ctx context.Context, t *testing.T, cf *cluster.File, accounts []ed25519.PrivateKey) bool {
	t.Helper()
	for _, a := range accounts {
		key := state.AccountKey(a.Public().(ed25519.PublicKey))
		var want *p2p.Value
		for i, nd := range cf.Nodes {
			c, err := p2p.Dial(ctx, nd.Addr, p2p.ClientConfig{ServerKey: cf.Keys()[i]})
			if err != nil {
				return false
			}
			v, err := c.Get(ctx, key)
			c.Close()
			if err != nil {
				return false
			}
			if err := storage.VerifyProofBytes(v.Root, key, v.Value, v.Proof); err != nil {
				t.Fatalf("node-%d: proof of %x: %v", i+1, key[:5], err)
			}
			if want == nil {
				want = &v
			} else if v.Root != want.Root || string(v.Value) != string(want.Value) {
				return false
			}
		}
	}
	return true
}

// execProc is one `rustorium node` process and its log.
type execProc struct {
	cmd  *exec.Cmd
	log  *lockedBuffer
	once sync.Once
	err  error
}

func newExecProc(t *testing.T, ctx context.Context, bin, path, dir string, keyFiles []string, i int) *execProc {
	cmd, log := startNodeProcess(t, ctx, bin, path, dir, keyFiles, i)
	return &execProc{cmd: cmd, log: log}
}

// startExecProcs starts a node process per key file and waits until each
// runs; they are killed when the test ends (also any that replaced one in
// the slice meanwhile).
func startExecProcs(t *testing.T, ctx context.Context, bin, path, dir string, keyFiles []string) []*execProc {
	t.Helper()
	procs := make([]*execProc, len(keyFiles))
	t.Cleanup(func() {
		for _, p := range procs {
			if p != nil {
				p.kill()
			}
		}
	})
	for i := range procs {
		procs[i] = newExecProc(t, ctx, bin, path, dir, keyFiles, i)
	}
	for i, p := range procs {
		p.log.waitRunning(t, i)
	}
	return procs
}

// kill ends the process with SIGKILL (a crash), once.
func (p *execProc) kill() {
	p.once.Do(func() {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	})
}

// stop ends the process with SIGINT (a clean stop) and returns its exit
// error, once.
func (p *execProc) stop() error {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGINT)
		p.err = p.cmd.Wait()
	})
	return p.err
}

// leading returns the shards the node reports leading on its metrics
// endpoint (nil before it logged the endpoint).
func (p *execProc) leading(ctx context.Context) ([]uint32, error) {
	m := metricsURL.FindStringSubmatch(p.log.String())
	if m == nil {
		return nil, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m[1], nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil // not serving (yet, or any more)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil
	}
	var out []uint32
	for _, l := range leaderSeries.FindAllStringSubmatch(string(body), -1) {
		sh, _ := strconv.ParseUint(l[1], 10, 32)
		out = append(out, uint32(sh))
	}
	return out, nil
}

var (
	metricsURL   = regexp.MustCompile(`msg=metrics url=(\S+)`)
	leaderSeries = regexp.MustCompile(`(?m)^rustorium_shard_leader\{shard="(\d+)"\} 1$`)
)
