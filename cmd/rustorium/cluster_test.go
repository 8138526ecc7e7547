package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rustorium/rustorium/cluster"
	"github.com/rustorium/rustorium/internal/freeport"
	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/api"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/storage"
)

// testCluster writes the key files and the cluster file of n nodes on
// brokers, with genesis accounts, and returns the file's path, the key
// files and the account keys.
func testCluster(t *testing.T, dir string, n int, brokers []string) (string, []string, []ed25519.PrivateKey) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "chain_id: 7\nshards: 4\nquorum: 2\nbrokers: [%s]\ntopic_prefix: %s\n", strings.Join(brokers, ", "), kafkatest.Prefix(t))
	b.WriteString("block: {max_wait: 10ms}\nleadership: {session_timeout: 1s, transaction_timeout: 3s}\nstorage: {sync: false}\n")
	accounts := loadgen.AccountKeys(99, 4)
	b.WriteString("genesis:\n")
	for _, a := range accounts {
		fmt.Fprintf(&b, "  - {account: %x, balance: 1000}\n", []byte(a.Public().(ed25519.PublicKey)))
	}
	b.WriteString("nodes:\n")
	var keyFiles []string
	for i := 1; i <= n; i++ {
		kf := filepath.Join(dir, fmt.Sprintf("node-%d.key", i))
		var out bytes.Buffer
		root := newRootCmd()
		root.SetOut(&out)
		root.SetArgs([]string{"node", "keygen", "--out", kf})
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		pub := strings.TrimSpace(out.String())
		// Peers must know the node's addresses before it runs, and a node
		// restarted after a crash binds them again: ports outside the
		// kernel's ephemeral range, which no outbound connection takes.
		addr, api := freeport.Loopback(t), freeport.Loopback(t) // QUIC; the API's, for loadgen --cluster
		fmt.Fprintf(&b, "  - {id: node-%d, key: %s, addr: %q, api: %q}\n", i, pub, addr, api)
		keyFiles = append(keyFiles, kf)
	}
	path := filepath.Join(dir, "cluster.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, keyFiles, accounts
}

// TestNodeClusterMode starts three nodes of one cluster file in process,
// through the command's own code (clusterNodeConfig, serveNode), submits
// transfers and puts to different nodes, and checks the receipts and that
// all three nodes converge.
func TestNodeClusterMode(t *testing.T) {
	dir := t.TempDir()
	brokers := kafkatest.Embedded(t)
	path, keyFiles, accounts := testCluster(t, dir, 3, brokers)

	// A key that is not the node's, an id not in the file, a bad key file.
	if _, err := clusterNodeConfig(path, "node-1", keyFiles[1], "", "", nil); err == nil || !strings.Contains(err.Error(), "is not node-1's key") {
		t.Fatalf("node-1 with node-2's key: %v", err)
	}
	if _, err := clusterNodeConfig(path, "node-9", keyFiles[0], "", "", nil); err == nil || !strings.Contains(err.Error(), `--id "node-9" is not a node`) {
		t.Fatalf("unknown id: %v", err)
	}
	if _, err := clusterNodeConfig(path, "node-1", path, "", "", nil); !errors.Is(err, cluster.ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("key file of mode 0644: %v", err)
	}
	badKey := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(badKey, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := clusterNodeConfig(path, "node-1", badKey, "", "", nil); err == nil || !strings.Contains(err.Error(), "ed25519 seed") {
		t.Fatalf("bad key file: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		nodes = map[string]*node.Node{}
		apis  = map[string]string{} // the nodes' API base URLs
		errs  = make(chan error, 3)
	)
	for i := range 3 {
		id := fmt.Sprintf("node-%d", i+1)
		cfg, err := clusterNodeConfig(path, id, keyFiles[i], filepath.Join(dir, id), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.NodeID != id || len(cfg.Peers) != 3 || cfg.Quorum != 2 || cfg.Shards != 4 || cfg.ChainID != 7 || len(cfg.Genesis) != 4 ||
			cfg.Leadership.SessionTimeout != time.Second || !cfg.Storage.NoSync || cfg.Listen != cfg.Peers[i].Addr {
			t.Fatalf("%s: config %+v", id, cfg)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- serveNode(runCtx, cfg, serveOptions{API: "127.0.0.1:0", Ready: func(n *node.Node, api net.Addr) {
				mu.Lock()
				nodes[id], apis[id] = n, "http://"+api.String()
				mu.Unlock()
			}})
		}()
	}
	defer func() {
		stop()
		wg.Wait()
		for range 3 {
			if err := <-errs; err != nil {
				t.Errorf("node: %v", err)
			}
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		k := len(nodes)
		mu.Unlock()
		if k == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the nodes did not start")
		}
	}

	// Transfers between the genesis accounts and puts, sent to node-2 and
	// node-3.
	tr := &loadgen.Transfers{ChainID: 7, Accounts: accounts, Keys: &loadgen.Sequential{N: 4}, Amount: 10, Seed: 1}
	txs, err := tr.Generate(ctx, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	puts := &loadgen.Puts{ChainID: 7, Signer: accounts[0], Keys: &loadgen.Sequential{N: 100}, ValueSize: 16, Seed: 2}
	more, err := puts.Generate(ctx, 8, nil)
	if err != nil {
		t.Fatal(err)
	}
	txs = append(txs, more...)
	for i, raw := range txs {
		n := nodes[fmt.Sprintf("node-%d", 2+i%2)]
		c, err := p2p.Dial(ctx, n.Addr().String(), p2p.ClientConfig{ServerKey: n.PublicKey()})
		if err != nil {
			t.Fatal(err)
		}
		call, err := c.Submit(ctx, raw)
		if err == nil {
			_, err = call.Accepted()
		}
		var com p2p.Committed
		if err == nil {
			com, err = call.Committed()
		}
		c.Close()
		if err != nil {
			t.Fatalf("tx %d: %v", i, err)
		}
		if com.Status != p2p.StatusOK {
			t.Fatalf("tx %d committed as failed: %s", i, com.Reason)
		}
	}
	// Every node holds the same chain.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		diff := ""
		for s := range uint32(4) {
			var first storage.Meta
			for i := 1; i <= 3; i++ {
				m, err := nodes[fmt.Sprintf("node-%d", i)].ShardMeta(s)
				if err != nil {
					t.Fatal(err)
				}
				if i == 1 {
					first = m
				} else if m.Height != first.Height || m.BlockHash != first.BlockHash || !m.Root.Equal(&first.Root) {
					diff = fmt.Sprintf("shard %d: node-1 at %d, node-%d at %d", s, first.Height, i, m.Height)
				}
			}
		}
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes did not converge: %s", diff)
		}
	}
	// Each node's REST API reports its committed chain.
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("node-%d", i)
		res, err := http.Get(apis[id] + "/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		var st api.Status
		err = json.NewDecoder(res.Body).Decode(&st)
		res.Body.Close()
		if err != nil || len(st.Shards) != 4 {
			t.Fatalf("%s status: %+v %v", id, st, err)
		}
		for s, sh := range st.Shards {
			m, _ := nodes[id].ShardMeta(uint32(s))
			if root := m.Root.Bytes(); sh.Height != m.Height || sh.Root != hex.EncodeToString(root[:]) {
				t.Fatalf("%s shard %d: API says %+v, store %d", id, s, sh, m.Height)
			}
		}
	}
}

// TestNodeClusterBinary runs the real binary: three `rustorium node
// --cluster` processes on an embedded broker of the test, a transfer
// committed through one of them, and a clean exit on SIGINT.
func TestNodeClusterBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	path, keyFiles, accounts := testCluster(t, dir, 3, kafkatest.Embedded(t))
	cf, err := cluster.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	procs := startExecProcs(t, ctx, bin, path, dir, keyFiles)
	tr := &loadgen.Transfers{ChainID: 7, Accounts: accounts, Keys: &loadgen.Sequential{N: 4}, Amount: 1, Seed: 3}
	txs, err := tr.Generate(ctx, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, raw := range txs {
		nd := cf.Nodes[i%3]
		c, err := p2p.Dial(ctx, nd.Addr, p2p.ClientConfig{ServerKey: cf.Keys()[i%3]})
		if err != nil {
			t.Fatal(err)
		}
		call, err := c.Submit(ctx, raw)
		var com p2p.Committed
		if err == nil {
			if _, err = call.Accepted(); err == nil {
				com, err = call.Committed()
			}
		}
		c.Close()
		if err != nil || com.Status != p2p.StatusOK {
			t.Fatalf("transfer %d via %s: %v %+v\n%s", i, nd.ID, err, com, procs[i%3].log.String())
		}
	}
	for i, p := range procs {
		if err := p.stop(); err != nil {
			t.Errorf("node-%d: %v\n%s", i+1, err, p.log.String())
		}
		if s := p.log.String(); !strings.Contains(s, "validators=3") || !strings.Contains(s, "stopping") {
			t.Errorf("node-%d log:\n%s", i+1, s)
		}
	}
}

// buildBinary builds the command into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "rustorium")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startNodeProcess starts node i of the cluster file as a process, its data
// under dir/node-<i+1>, its log collected.
func startNodeProcess(t *testing.T, ctx context.Context, bin, path, dir string, keyFiles []string, i int) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	id := fmt.Sprintf("node-%d", i+1)
	cf, err := cluster.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p := exec.CommandContext(ctx, bin, "node", "--cluster", path, "--id", id, "--key-file", keyFiles[i], "--data", filepath.Join(dir, id),
		"--metrics", "127.0.0.1:0", "--api", cf.Nodes[i].API)
	stderr, err := p.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	buf := &lockedBuffer{running: make(chan struct{})}
	go buf.copy(stderr)
	return p, buf
}

// lockedBuffer collects a process's log and signals its "node running".
type lockedBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	running chan struct{}
	once    sync.Once
}

func (l *lockedBuffer) copy(r io.Reader) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		l.mu.Lock()
		l.b.WriteString(s.Text() + "\n")
		l.mu.Unlock()
		if strings.Contains(s.Text(), "node running") {
			l.once.Do(func() { close(l.running) })
		}
	}
}

func (l *lockedBuffer) waitRunning(t *testing.T, i int) {
	t.Helper()
	select {
	case <-l.running:
	case <-time.After(30 * time.Second):
		t.Fatalf("node-%d did not start:\n%s", i+1, l.String())
	}
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
