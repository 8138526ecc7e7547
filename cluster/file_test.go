package cluster

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/scenarios"
)

const testKey = "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"

func TestClusterFileErrors(t *testing.T) {
	good := fmt.Sprintf(`
chain_id: 1
shards: 4
brokers: [127.0.0.1:9092]
nodes:
  - {id: node-1, key: %s, addr: 127.0.0.1:7401}
`, testKey)
	if _, err := Parse("c.yaml", []byte(good)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, text, want string }{
		{"unknown field", "shards: 4\nbrokerz: [a:1]\n", "c.yaml:2: brokerz: unknown field (did you mean brokers?)"},
		{"wrong type", "shards: four\n", "c.yaml:1: shards: want a whole number"},
		{"bad duration", "shards: 1\nleadership: {session_timeout: soon}\n", "c.yaml:2: leadership.session_timeout:"},
		{"no brokers", "shards: 1\nnodes:\n  - {id: a, key: " + testKey + ", addr: 1.2.3.4:5}\n", "c.yaml: brokers: required"},
		{"bad broker", "shards: 1\nbrokers: [kafka]\n", "c.yaml:2: brokers[0]: \"kafka\" is not host:port"},
		{"no nodes", "shards: 1\nbrokers: [a:1]\n", "c.yaml: nodes: required"},
		{"bad key", "shards: 1\nbrokers: [a:1]\nnodes:\n  - {id: a, key: abcd, addr: 1.2.3.4:5}\n", `c.yaml:4: nodes[0].key: "abcd" is not an ed25519 public key`},
		{"duplicate id", "shards: 1\nbrokers: [a:1]\nnodes:\n  - {id: a, key: " + testKey + ", addr: 1.2.3.4:5}\n  - {id: a, key: " + strings.Repeat("11", 32) + ", addr: 1.2.3.4:6}\n", `c.yaml:5: nodes[1].id: "a" is also nodes[0]'s id`},
		{"duplicate key", "shards: 1\nbrokers: [a:1]\nnodes:\n  - {id: a, key: " + testKey + ", addr: 1.2.3.4:5}\n  - {id: b, key: " + testKey + ", addr: 1.2.3.4:6}\n", "c.yaml:5: nodes[1].key: the same key as nodes[0]"},
		{"bad addr", "shards: 1\nbrokers: [a:1]\nnodes:\n  - {id: a, key: " + testKey + ", addr: here}\n", `c.yaml:4: nodes[0].addr: "here" is not host:port`},
		{"bad hold", "shards: 1\nbrokers: [a:1]\nblock: {hold: round}\nnodes:\n  - {id: a, key: " + testKey + ", addr: 1.2.3.4:5}\n", `c.yaml:3: block.hold: "round": want shard or leader (leave it out for shard)`},
		{"bad id", "shards: 1\nbrokers: [a:1]\nnodes:\n  - {id: a b, key: " + testKey + ", addr: 1.2.3.4:5}\n", `c.yaml:4: nodes[0].id: "a b": use letters`},
		{"quorum", "shards: 1\nbrokers: [a:1]\nquorum: 2\nnodes:\n  - {id: a, key: " + testKey + ", addr: 1.2.3.4:5}\n", "c.yaml:3: quorum: 2 is out of range"},
		{"shards", "shards: 0\nbrokers: [a:1]\n", "c.yaml:1: shards: 0 is out of range"},
		{"genesis", "shards: 1\nbrokers: [a:1]\ngenesis:\n  - {account: zz, balance: 5}\n", `c.yaml:4: genesis[0].account: "zz" is not`},
		{"negative balance", "genesis:\n  - {account: " + testKey + ", balance: -5}\n", "c.yaml:2: genesis[0].balance: -5 is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tc.text))
			var e *scenarios.Error
			if !errors.As(err, &e) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
}

func TestClusterFileZeros(t *testing.T) {
	head := "brokers: [a:1]\nnodes:\n  - {id: a, key: " + testKey + ", addr: 1.2.3.4:5}\n"
	for _, tc := range []struct{ text, want string }{
		{"shards: 0\n", fmt.Sprintf("c.yaml:4: shards: 0 is out of range (1..%d; leave it out for 4)", ordering.MaxShards)},
		{"quorum: 0\n", "c.yaml:4: quorum: 0 is out of range (1..1 nodes; leave it out for ⌊2N/3⌋+1)"},
		{"block: {max_txs: 0}\n", "c.yaml:4: block.max_txs: 0: must be ≥ 1 (leave it out for 1000)"},
		{"block: {max_bytes: 0}\n", "c.yaml:4: block.max_bytes: 0: must be ≥ 1 (leave it out for 1048576)"},
		{"block:\n  max_wait: 0s\n", "c.yaml:5: block.max_wait: 0s: must be > 0 (leave it out for 20ms)"},
	} {
		t.Run(strings.TrimSpace(tc.text), func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(head+tc.text))
			var e *scenarios.Error
			if !errors.As(err, &e) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSettingsToConfig(t *testing.T) {
	good := Settings{Shards: 1, Quorum: 1, Block: consensus.CutterConfig{MaxTxs: 1, MaxBytes: 1, MaxWait: 1}, Sync: true}
	if cfg, err := good.Config(); err != nil || cfg.Storage.NoSync {
		t.Fatalf("%+v %v", cfg, err)
	}
	for name, edit := range map[string]func(*Settings){
		"shards 0":   func(s *Settings) { s.Shards = 0 },
		"quorum 0":   func(s *Settings) { s.Quorum = 0 },
		"quorum 2":   func(s *Settings) { s.Quorum = 2 },
		"max txs 0":  func(s *Settings) { s.Block.MaxTxs = 0 },
		"max bytes":  func(s *Settings) { s.Block.MaxBytes = 0 },
		"max wait 0": func(s *Settings) { s.Block.MaxWait = 0 },
	} {
		s := good
		edit(&s)
		if _, err := s.Config(); !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), strings.Fields(name)[0]) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

// TestMarshalRoundTrip: a file written by Marshal parses back to the same
// cluster, node APIs included; a bad api address is refused at its line.
func TestMarshalRoundTrip(t *testing.T) {
	text := "chain_id: 7\nshards: 2\nbrokers: [127.0.0.1:9092]\nblock: {max_wait: 5ms, hold: leader}\nnodes:\n  - {id: node-1, key: " + testKey + ", addr: 127.0.0.1:7401, api: 127.0.0.1:7481}\n"
	cf, err := Parse("c.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	back, out := marshalParse(t, cf)
	if back.ChainID != 7 || back.Shards != 2 || back.Block.MaxWait.Std().String() != "5ms" || back.Block.Hold != "leader" || back.Nodes[0].APIURL() != "http://127.0.0.1:7481" || !back.Keys()[0].Equal(cf.Keys()[0]) {
		t.Fatalf("round trip:\n%s", out)
	}
	// The default hold is left out, so that a node binary older than the
	// field reads the file (rustorium run --node-bin).
	plain, err := Parse("c.yaml", []byte(strings.Replace(text, ", hold: leader", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := plain.Marshal(); err != nil || strings.Contains(string(out), "hold") {
		t.Fatalf("the default hold written out: %v\n%s", err, out)
	}
	_, err = Parse("c.yaml", []byte(strings.Replace(text, "api: 127.0.0.1:7481", "api: nowhere", 1)))
	if err == nil || !strings.Contains(err.Error(), `c.yaml:6: nodes[0].api: "nowhere" is not host:port`) {
		t.Fatalf("bad api: %v", err)
	}
}

// TestReadKeyFileMode: a key file group or others may read is refused,
// naming chmod 600; at 0600 it reads.
func TestReadKeyFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no unix modes")
	}
	path := filepath.Join(t.TempDir(), "node.key")
	key, err := WriteKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadKeyFile(path); !errors.Is(err, ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Fatalf("mode %04o: %v, want ErrKeyFileMode telling chmod 600", mode, err)
		}
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadKeyFile(path); err != nil || !got.Equal(key) {
		t.Fatalf("mode 0600: %v", err)
	}
}

// marshalParse writes cf (Marshal) and parses what it wrote, failing t
// if either fails; it returns the file parsed back and the text.
func marshalParse(t *testing.T, cf *File) (*File, []byte) {
	t.Helper()
	out, err := cf.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("out.yaml", out)
	if err != nil {
		t.Fatalf("a parsed file does not parse back: %v\n%s", err, out)
	}
	return back, out
}

// FuzzParse: whatever a cluster file holds, Parse answers without
// panicking, and a file it takes writes back (Marshal) as one it takes
// again with the same chain, shards, quorum, block limits and nodes;
// every node's settings refuse a key that is not its own.
func FuzzParse(f *testing.F) {
	f.Add([]byte("chain_id: 7\nshards: 2\nbrokers: [127.0.0.1:9092]\nblock: {max_wait: 5ms}\nnodes:\n  - {id: node-1, key: " + testKey + ", addr: 127.0.0.1:7401, api: 127.0.0.1:7481}\n"))
	f.Add([]byte("shards: 1\nquorum: 2\nbrokers: [a:1, b:2]\nstorage: {sync: false}\nleadership: {session_timeout: 3s}\nnodes:\n  - {id: a, key: " + testKey + ", addr: 1.2.3.4:5}\n  - {id: b, key: " + strings.Repeat("11", 32) + ", addr: 1.2.3.4:6}\n"))
	f.Add([]byte("shards: 4\nbrokerz: [a:1]\n"))
	f.Add([]byte("nodes: [{id: a}]\nblock: {max_txs: -1}\n"))
	other := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		cf, err := Parse("f.yaml", data)
		if err != nil {
			return
		}
		back, out := marshalParse(t, cf)
		if back.ChainID != cf.ChainID || back.Shards != cf.Shards || back.Quorum != cf.Quorum || back.Block != cf.Block || len(back.Nodes) != len(cf.Nodes) {
			t.Fatalf("round trip changed the file:\n%s", out)
		}
		for i, nd := range cf.Nodes {
			if back.Nodes[i].ID != nd.ID || !back.Keys()[i].Equal(cf.Keys()[i]) {
				t.Fatalf("node %d: %+v back as %+v", i, nd, back.Nodes[i])
			}
			if _, err := cf.Settings(NodeOptions{ID: nd.ID, Key: other}); err == nil && !other.Public().(ed25519.PublicKey).Equal(cf.Keys()[i]) {
				t.Fatalf("node %s took another node's key", nd.ID)
			}
		}
	})
}
