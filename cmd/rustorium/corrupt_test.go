package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/storage"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNodeRefusesCorruptStore starts `rustorium node` (serveNode) on a
// data directory whose store has corrupted tables: it must fail start-up
// with storage.ErrCorrupt, never log "node running" first, and never
// crash (Pebble's default on a corruption ends the process, with a stack
// trace, after the node said it runs).
func TestNodeRefusesCorruptStore(t *testing.T) {
	dir := t.TempDir()
	db, err := storage.Open(filepath.Join(dir, "state"), storage.Options{MemTableBytes: 64 << 10, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for h := uint64(1); h <= 300; h++ {
		c := &storage.BlockCommit{Shard: 0, Height: h, Writes: []storage.Write{{Key: fmt.Appendf(nil, "k%d", h), Value: fmt.Appendf(nil, "value-%0100d", h)}}}
		if _, err := db.CommitBlock(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "state", "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("the store has no tables to corrupt")
	}
	for _, s := range ssts {
		f, err := os.OpenFile(s, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteAt([]byte("garbage-garbage-garbage"), 0)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out syncBuffer
	cfg := node.Config{Shards: 2, DataDir: dir, Logger: slog.New(slog.NewTextHandler(&out, nil))}
	err = serveNode(ctx, cfg, serveOptions{})
	if !errors.Is(err, storage.ErrCorrupt) {
		t.Fatalf("serveNode on a corrupted store: %v, want ErrCorrupt\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "node running") {
		t.Fatalf("the node said it runs on a corrupted store:\n%s", out.String())
	}
}
