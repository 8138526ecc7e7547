package node_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/storage"
)

// TestDataDirLayout: a directory written with 4 shards refuses a start
// with 2, naming both, before its store or broker log is opened; the same
// layout starts again.
func TestDataDirLayout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := node.Config{ChainID: 3, Shards: 4, DataDir: dir, Brokers: kafkatest.Embedded(t), Storage: storage.Options{NoSync: true}}
	n, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	other := cfg
	other.Shards = 2
	other.Brokers = nil // an embedded broker would open DATA/broker first
	_, err = node.New(ctx, other)
	if !errors.Is(err, node.ErrLayout) || !strings.Contains(err.Error(), "shards 4") || !strings.Contains(err.Error(), "shards 2") {
		t.Fatalf("restart with 2 shards: %v, want ErrLayout naming 4 and 2", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "broker")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused start opened the broker's log: %v", err)
	}
	other = cfg
	other.ChainID = 4
	if _, err := node.New(ctx, other); !errors.Is(err, node.ErrLayout) || !strings.Contains(err.Error(), "chain id 3") {
		t.Fatalf("restart with chain id 4: %v", err)
	}
	other = cfg
	other.TopicPrefix = "other-"
	if _, err := node.New(ctx, other); !errors.Is(err, node.ErrLayout) || !strings.Contains(err.Error(), `topic prefix ""`) {
		t.Fatalf("restart with another topic prefix: %v", err)
	}
	n, err = node.New(ctx, cfg)
	if err != nil {
		t.Fatalf("restart with the same layout: %v", err)
	}
	n.Close()
}

// TestDataDirLock: a second node on a directory in use is refused with
// the holder's pid, and the first goes on serving.
func TestDataDirLock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := node.Config{ChainID: chain, Shards: 1, DataDir: dir, Brokers: kafkatest.Embedded(t), Storage: storage.Options{NoSync: true}}
	n, err := node.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	second := cfg
	second.Brokers = nil
	_, err = node.New(ctx, second)
	if want := fmt.Sprintf("in use: %s (pid %d)", dir, os.Getpid()); !errors.Is(err, node.ErrDataDirInUse) || !strings.Contains(err.Error(), want) {
		t.Fatalf("second node: %v, want ErrDataDirInUse %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "broker")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused node opened the broker's log: %v", err)
	}
	submitPuts(t, ctx, n, 3, "lock") // the first node still commits
}
