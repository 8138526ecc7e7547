package scenarios

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/tx"
)

// TestDefaultsAreTheNodes: the cluster defaults are the node's own.
func TestDefaultsAreTheNodes(t *testing.T) {
	s, err := Parse("", []byte("cluster: {nodes: 7}\nworkload: [{kind: put, rate: 1/s}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	s.EnsureDefaults()
	c := s.Cluster
	if c.Shards != ordering.DefaultShards || c.Quorum != consensus.DefaultQuorum(7) || c.Quorum != 5 ||
		c.Block.MaxTxs != consensus.DefaultMaxTxs || c.Block.MaxBytes != consensus.DefaultMaxBytes ||
		c.Block.MaxWait.Std() != consensus.DefaultMaxWait {
		t.Errorf("cluster defaults %+v differ from the node's", c)
	}
}

// TestDefaultsTable: the table in EnsureDefaults' doc comment names the
// defaults the code applies.
func TestDefaultsTable(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "defaults.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var doc string
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "EnsureDefaults" {
			doc = fd.Doc.Text()
		}
	}
	table := map[string]string{}
	for _, line := range strings.Split(doc, "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 {
			table[fields[0]] = fields[1]
		}
	}
	for field, want := range map[string]any{
		"seed": DefaultSeed, "warmup": DefaultWarmup, "duration": DefaultDuration, "drain": DefaultDrain,
		"cluster.nodes": DefaultNodes, "cluster.shards": ordering.DefaultShards,
		"cluster.block.max_txs": consensus.DefaultMaxTxs, "cluster.block.max_bytes": consensus.DefaultMaxBytes,
		"cluster.block.max_wait": consensus.DefaultMaxWait, "cluster.storage.sync": DefaultSync,
		"workload[].accounts": DefaultAccounts, "workload[].client": DefaultClient, "workload[].value_size": DefaultValueSize,
		"workload[].timeout": DefaultTimeout, "workload[].verify_proofs": DefaultVerifyProofs,
		"workload[].maxrate.stage": DefaultMaxRateStage, "workload[].maxrate.step": DefaultMaxRateStep,
	} {
		if got := table[field]; got != fmt.Sprint(want) {
			t.Errorf("the EnsureDefaults table says %s is %q, the code %v", field, got, want)
		}
	}
}

// loadFile writes src to a scenario file and loads it.
func loadFile(t *testing.T, src string) (string, *Scenario, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "z.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Load(path)
	return path, s, err
}

// TestGivenZerosAreErrors: a zero the file gives is not a default; where it
// means nothing, Load fails at its line.
func TestGivenZerosAreErrors(t *testing.T) {
	const wl = "workload:\n  - kind: put\n    rate: 1/s\n"
	cases := []struct {
		name, src, field, msg string
		line                  int
	}{
		{"duration", "duration: 0s\n" + wl, "duration", "must be > 0", 1},
		{"nodes", "cluster:\n  nodes: 0\n" + wl, "cluster.nodes", "0 is out of range", 2},
		{"shards", "cluster:\n  shards: 0\n" + wl, "cluster.shards", "0 is out of range", 2},
		{"quorum", "cluster:\n  quorum: 0\n" + wl, "cluster.quorum", "0 is out of range", 2},
		{"max_txs", "cluster:\n  block: {max_txs: 0}\n" + wl, "cluster.block.max_txs", "must be ≥ 1", 2},
		{"max_bytes", "cluster:\n  block:\n    max_bytes: 0\n" + wl, "cluster.block.max_bytes", "0 is out of range", 3},
		{"max_wait", "cluster:\n  block: {max_wait: 0s}\n" + wl, "cluster.block.max_wait", "must be > 0", 2},
		{"session", "cluster:\n  leadership: {session_timeout: 0s}\n" + wl, "cluster.leadership.session_timeout", "must be > 0", 2},
		{"seed", "seed: 0\n" + wl, "seed", "0 is not a seed", 1},
		{"formats", wl + "report:\n  formats: []\n", "report.formats", "at least one format", 5},
		{"accounts", wl + "    accounts: 0\n", "workload[0].accounts", "0 is out of range", 4},
		{"value_size", wl + "    value_size: 0\n", "workload[0].value_size", "0 is out of range", 4},
		{"timeout", wl + "    timeout: 0s\n", "workload[0].timeout", "must be > 0", 4},
		{"ramp over", "workload:\n  - kind: put\n    ramp: {to: 5/s, over: 0s}\n", "workload[0].ramp.over", "must be > 0", 3},
		{"maxrate step", "workload:\n  - kind: put\n    maxrate: {p99: 1s, step: 0s}\n", "workload[0].maxrate.step", "must be > 0", 3},
		{"shards too many", "cluster:\n  shards: 4097\n" + wl, "cluster.shards", "4097 is out of range (1..4096)", 2},
		{"value too large", wl + "    value_size: 16385\n", "workload[0].value_size", "16385 is out of range (1..16384 bytes; the node refuses larger values)", 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, _, err := loadFile(t, c.src)
			e := errorOf(t, err)
			if e.File != path || e.Line != c.line || e.Field != c.field || !strings.Contains(e.Msg, c.msg) || !errors.Is(err, ErrInvalid) {
				t.Errorf("got %v; want %s:%d: %s: …%s…", err, path, c.line, c.field, c.msg)
			}
		})
	}
}

// TestGivenZerosThatMeanNone: warmup: 0s and drain: 0s mean none; a null
// is a field left out; the largest value the node takes loads.
func TestGivenZerosThatMeanNone(t *testing.T) {
	_, s, err := loadFile(t, "warmup: 0s\ndrain: 0s\nduration: ~\ncluster: {nodes: null}\nworkload:\n  - kind: put\n    rate: 1/s\n    value_size: 16384\n")
	if err != nil {
		t.Fatal(err)
	}
	if s.Warmup != 0 || s.Drain != 0 || s.Duration != DefaultDuration || s.Cluster.Nodes != DefaultNodes || s.Workload[0].ValueSize != tx.MaxValueSize {
		t.Errorf("got warmup %v, drain %v, duration %v, nodes %d, value_size %d", s.Warmup, s.Drain, s.Duration, s.Cluster.Nodes, s.Workload[0].ValueSize)
	}
	// Resolved keeps them (EnsureDefaults again does not default them).
	if r := s.Resolved(); r.Warmup != 0 || r.Drain != 0 {
		t.Errorf("resolved warmup %v, drain %v", r.Warmup, r.Drain)
	}
}
