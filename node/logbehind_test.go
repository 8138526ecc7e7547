package node_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rustorium/rustorium/node"
)

// TestLogBehindRefused loses the tail of the embedded broker's log of a
// node that committed blocks (the failure report truncated
// broker/partitions/transactions-0-0/0.dat): restarted, the node must
// refuse to start with ErrLogBehind naming the shard and both offsets,
// and raise the log_behind alarm, instead of accepting transactions at
// offsets its store already consumed (which could never commit).
func TestLogBehindRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	n := startNode(t, ctx, nil, "", dir, newBlockLog())
	submitPuts(t, ctx, n, 40, "a")
	meta, err := n.ShardMeta(0)
	if err != nil || meta.NextOffset == 0 {
		t.Fatalf("shard 0 committed nothing: %+v %v", meta, err)
	}
	n.Close()

	var truncated []string
	err = filepath.WalkDir(filepath.Join(dir, "broker"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(path, "transactions-0-") || filepath.Ext(path) != ".dat" {
			return err
		}
		truncated = append(truncated, path)
		return os.Truncate(path, 0)
	})
	if err != nil || len(truncated) == 0 {
		t.Fatalf("no partition file of transactions-0 under %s: %v", filepath.Join(dir, "broker"), err)
	}

	lines, reg := newLineCounter(), prometheus.NewRegistry()
	var seed [32]byte
	seed[0] = 1
	n, err = node.New(ctx, node.Config{ChainID: chain, Key: ed25519.NewKeyFromSeed(seed[:]), Shards: 2, DataDir: dir, Logger: slog.New(lines), Registerer: reg})
	if err == nil {
		defer n.Close()
		t.Fatalf("the node started on a log that lost its tail (truncated %v)", truncated)
	}
	want := fmt.Sprintf("shard 0: transactions-0 ends at offset 0, but the store committed transactions up to offset %d", meta.NextOffset)
	if !errors.Is(err, node.ErrLogBehind) || !strings.Contains(err.Error(), want) {
		t.Fatalf("New: %v, want ErrLogBehind with %q", err, want)
	}
	if lines.matching("ALARM: the log ends before") == 0 || counter(t, reg, "rustorium_alarms_total") == 0 {
		t.Fatalf("no log_behind alarm: lines %v", lines.lines)
	}
}
