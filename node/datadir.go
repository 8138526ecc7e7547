package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Errors New returns (wrapped) for a data directory it cannot use.
var (
	// ErrDataDirInUse: another process (or another Node of this one)
	// holds the data directory's lock; the error names its pid. Nothing
	// in the directory was opened.
	ErrDataDirInUse = errors.New("node: data directory in use")
	// ErrLayout: the data directory was written with another layout
	// (format, chain id, shard count or topic prefix) than the Config
	// asks for; the error names both values. Nothing else was opened.
	ErrLayout = errors.New("node: data directory layout mismatch")
	// ErrBrokerDown, on Err: the node's embedded broker stopped accepting
	// connections for good (kfake's accept loop ends when accept fails,
	// as on descriptor exhaustion); a node without its broker could only
	// refuse writes, so it fails instead, loudly.
	ErrBrokerDown = errors.New("node: embedded broker down")
	// ErrLogBehind is returned by New when a shard's log ends before the
	// offset the store committed up to (the embedded broker lost the tail
	// of its log, or the node was pointed at another log): transactions
	// appended there would get offsets the store already consumed and
	// could never commit, so the node refuses to start instead of
	// accepting them. The error names the shard, both offsets and the
	// alarm (log_behind).
	ErrLogBehind = errors.New("node: the log ends before the store's committed offset")
)

// Files of a data directory besides the store and the broker's log.
const (
	// LockFile holds the pid of the process that runs the directory's
	// node, locked (flock) while it runs.
	LockFile = "LOCK"
	// LayoutFile is the directory's Layout, JSON, written at its first
	// start.
	LayoutFile = "layout.json"
)

// LayoutFormat is the version of the data directory's format this node
// writes and reads.
const LayoutFormat = 1

// Layout is what a data directory's contents depend on: a node started
// on it with another layout would read its keys in the wrong shards.
type Layout struct {
	Format      int    `json:"format"`
	ChainID     uint32 `json:"chain_id"`
	Shards      int    `json:"shards"`
	TopicPrefix string `json:"topic_prefix"`
}

// checkLayout writes dir's layout file if it has none and otherwise
// refuses a layout other than want.
func checkLayout(dir string, want Layout) error {
	path := filepath.Join(dir, LayoutFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return writeLayout(path, want)
	}
	if err != nil {
		return fmt.Errorf("node: reading %s: %w", path, err)
	}
	var have Layout
	if err := json.Unmarshal(b, &have); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrLayout, path, err)
	}
	for _, f := range []struct {
		name, flag string
		have, want string
	}{
		{"format", "", strconv.Itoa(have.Format), strconv.Itoa(want.Format)},
		{"chain id", "--chain-id", strconv.FormatUint(uint64(have.ChainID), 10), strconv.FormatUint(uint64(want.ChainID), 10)},
		{"shards", "--shards", strconv.Itoa(have.Shards), strconv.Itoa(want.Shards)},
		{"topic prefix", "--topic-prefix", strconv.Quote(have.TopicPrefix), strconv.Quote(want.TopicPrefix)},
	} {
		if f.have == f.want {
			continue
		}
		hint := "use a new data directory"
		if f.flag != "" {
			hint = fmt.Sprintf("start with %s %s, or use a new data directory", f.flag, f.have)
		}
		return fmt.Errorf("%w: %s was written with %s %s, this node is configured with %s %s (%s)", ErrLayout, dir, f.name, f.have, f.name, f.want, hint)
	}
	return nil
}

func writeLayout(path string, l Layout) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("node: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("node: writing %s: %w", path, err)
	}
	return nil
}
