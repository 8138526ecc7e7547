package bench

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/rustorium/rustorium/internal/retry"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/api"
	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/tx"
)

// followBlocks subscribes to the block feed of the node whose HTTP API is
// at base (GET /v1/ws, topic blocks) and calls on for every block it
// commits, until ctx ends; it reconnects with backoff when the connection
// ends (the node was killed, or dropped a lagging subscriber). Blocks
// committed while it is not subscribed are not seen: a checker that counts
// commits from blocks must look missing ones up in the nodes' indexes.
func followBlocks(ctx context.Context, base string, on func(node.BlockEvent)) {
	url := "ws" + strings.TrimPrefix(base, "http") + "/v1/ws"
	b := retry.Backoff{Min: 20 * time.Millisecond, Max: 500 * time.Millisecond}
	for ctx.Err() == nil {
		if subscribed := followOnce(ctx, url, on); subscribed {
			b.Reset()
		}
		if b.Wait(ctx) != nil {
			return
		}
	}
}

// followOnce follows one connection to its end; it reports whether the
// subscription was taken.
func followOnce(ctx context.Context, url string, on func(node.BlockEvent)) (subscribed bool) {
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return false
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 24)
	req, _ := json.Marshal(map[string]any{"id": 1, "op": "subscribe", "topic": "blocks"})
	if err := c.Write(ctx, websocket.MessageText, req); err != nil {
		return false
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return subscribed
		}
		var m api.WSMessage
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch {
		case m.Type == "subscribed":
			subscribed = true
		case m.Type == "block" && m.Block != nil:
			if ev, err := blockEvent(*m.Block); err == nil {
				on(ev)
			}
		case m.Type == "error":
			return subscribed // lagged: subscribe again
		}
	}
}

// blockEvent rebuilds a committed block's header and ids from the API's
// JSON, so that its hash is the node's.
func blockEvent(b api.Block) (node.BlockEvent, error) {
	h := consensus.Header{Shard: b.Shard, Height: b.Height, FirstOffset: b.FirstOffset, NextOffset: b.NextOffset, TxCount: b.TxCount, Time: b.Time}
	for _, f := range []struct {
		dst []byte
		hex string
	}{{h.Parent[:], b.Parent}, {h.TxRoot[:], b.TxRoot}, {h.StateRoot[:], b.StateRoot}} {
		if err := decodeHash(f.dst, f.hex); err != nil {
			return node.BlockEvent{}, err
		}
	}
	ev := node.BlockEvent{Header: h}
	for _, s := range b.Txs {
		var id tx.ID
		if n, err := hex.Decode(id[:], []byte(s)); err != nil || n != len(id) {
			return node.BlockEvent{}, fmt.Errorf("tx id %q", s)
		}
		ev.IDs = append(ev.IDs, id)
	}
	if hash := h.Hash(); hex.EncodeToString(hash[:]) != b.Hash {
		return ev, fmt.Errorf("block %d/%d: rebuilt hash %x, the node says %s", b.Shard, b.Height, hash, b.Hash)
	}
	return ev, nil
}
