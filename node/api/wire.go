package api

import (
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/rustorium/rustorium/node/consensus"
	"github.com/rustorium/rustorium/node/health"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/tx"
)

// The JSON forms of the node's messages, shared by REST and WebSocket
// (GraphQL has its own types with the same field names). Bytes are lower
// case hex; 64-bit integers are JSON numbers, which clients that read
// numbers as doubles (JavaScript) get exactly only below 2^53 — heights
// and offsets stay there, balances may not (GraphQL gives them as strings).

// Accepted says the log holds a transaction: p2p.Accepted as JSON.
type Accepted struct {
	ID     string `json:"id"`
	Shard  uint32 `json:"shard"`
	Offset int64  `json:"offset"`
}

// Receipt is a commit receipt: p2p.Committed as JSON.
type Receipt struct {
	ID     string `json:"id"`
	Shard  uint32 `json:"shard"`
	Height uint64 `json:"height"`
	Index  uint32 `json:"index"`
	Root   string `json:"root"`
	// Status is "ok" or "failed" (then Reason says why).
	Status     string `json:"status"`
	Superseded bool   `json:"superseded,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// Proof is the merkle.Proof binary encoding of the written key, empty
	// when nothing was written.
	Proof string `json:"proof,omitempty"`
}

// Value is a state key's committed value and its proof: p2p.Value as JSON.
type Value struct {
	Found bool   `json:"found"`
	Root  string `json:"root"`
	Value string `json:"value,omitempty"`
	Proof string `json:"proof"`
}

// Account is an account from the node's account view.
type Account struct {
	Key     string   `json:"key"`
	Exists  bool     `json:"exists"`
	Balance uint64   `json:"balance"`
	Nonce   uint64   `json:"nonce"`
	Height  uint64   `json:"height"`
	Root    string   `json:"root"`
	Proof   string   `json:"proof"`
	Recent  []string `json:"recent,omitempty"` // ids of its latest transactions, newest first
}

// Block is a committed block's header, with its transactions' ids when
// known (blocks pushed to WebSocket subscribers).
type Block struct {
	Shard       uint32   `json:"shard"`
	Height      uint64   `json:"height"`
	Hash        string   `json:"hash"`
	Parent      string   `json:"parent"`
	FirstOffset int64    `json:"first_offset"`
	NextOffset  int64    `json:"next_offset"`
	TxCount     uint32   `json:"tx_count"`
	TxRoot      string   `json:"tx_root"`
	StateRoot   string   `json:"state_root"`
	Time        int64    `json:"time_unix_nano"`
	Txs         []string `json:"txs,omitempty"`
}

// ShardStatus is a shard's committed position on this node.
type ShardStatus struct {
	Shard     uint32 `json:"shard"`
	Height    uint64 `json:"height"`
	BlockHash string `json:"block_hash"`
	Root      string `json:"root"`
	// NextOffset is the offset of the shard's transactions topic the
	// node resumes consuming from: every record below it is in a block
	// the node committed.
	NextOffset int64 `json:"next_offset"`
}

// Status is the node's committed position on every shard, its account
// view's counters and its readiness.
type Status struct {
	Shards []ShardStatus `json:"shards"`
	Cache  CacheStatus   `json:"cache"`
	// Ready and Checks are the node's readiness, as GET /readyz answers
	// it.
	Ready  bool           `json:"ready"`
	Checks []health.Check `json:"checks"`
}

// Readiness is GET /readyz's answer: 200 with Ready true, or 503 with
// Code CodeNotReady and Error naming the failed checks.
type Readiness struct {
	Code   string         `json:"code,omitempty"`
	Error  string         `json:"error,omitempty"`
	Ready  bool           `json:"ready"`
	Checks []health.Check `json:"checks"`
}

// CacheStatus is the account view's counters.
type CacheStatus struct {
	Hits     uint64 `json:"hits"`
	Misses   uint64 `json:"misses"`
	Entries  int    `json:"entries"`
	Capacity uint64 `json:"capacity"`
}

// Error is a refused request. Code is the tx.Code's name for a refused
// transaction ("bad signature", "too large", "overloaded", …), or one of
// the Code constants below.
type Error struct {
	Code  string `json:"code"`
	Error string `json:"error"`
}

// SubmitEvent is one line of a submission's answer: exactly one field is
// set. A REST submission that waits for the commit streams an accepted
// line and then a committed (or error) line, as newline-delimited JSON.
type SubmitEvent struct {
	Accepted  *Accepted `json:"accepted,omitempty"`
	Committed *Receipt  `json:"committed,omitempty"`
	Error     *Error    `json:"error,omitempty"`
}

// Codes of refusals that are not a tx.Code. A body over its limit is
// "too large" (tx.CodeTooLarge) and a request over a concurrency bound
// "overloaded" (tx.CodeOverloaded), as a refused transaction's.
const (
	CodeBadRequest = "bad request"
	CodeNotFound   = "not found"
	CodeTimeout    = "timeout"
	CodeLagged     = "lagged"
	// CodeMethodNotAllowed: a route's path with a method it does not
	// serve (405, with an Allow header). A path no route has is
	// CodeNotFound (404).
	CodeMethodNotAllowed = "method not allowed"
	// CodeNotReady: GET /readyz while a readiness check fails (503).
	CodeNotReady = "not ready"
	// CodeTooManyConns: a connection over Limits.MaxConns or
	// MaxConnsPerIP (503, then closed).
	CodeTooManyConns = "too many connections"
	// CodeIntrospection: a GraphQL query naming __schema or __type while
	// Limits.Introspection is off (400).
	CodeIntrospection = "introspection disabled"
	// CodeTooComplex: a GraphQL query over Limits.GraphQLMaxSelections or
	// GraphQLMaxDepth (400).
	CodeTooComplex = "too complex"
	// CodeResponseTooLarge: a GraphQL answer over
	// Limits.GraphQLMaxResponse (400).
	CodeResponseTooLarge = "response too large"
)

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// AcceptedOf is a's JSON form.
func AcceptedOf(a p2p.Accepted) Accepted {
	return Accepted{ID: a.ID.String(), Shard: a.Shard, Offset: a.Offset}
}

// P2P is the p2p.Accepted a stands for.
func (a *Accepted) P2P() (p2p.Accepted, error) {
	id, err := parseID(a.ID)
	if err != nil {
		return p2p.Accepted{}, err
	}
	return p2p.Accepted{ID: id, Shard: a.Shard, Offset: a.Offset}, nil
}

// ReceiptOf is c's JSON form.
func ReceiptOf(c p2p.Committed) Receipt {
	status := "ok"
	if c.Status != p2p.StatusOK {
		status = "failed"
	}
	return Receipt{
		ID: c.ID.String(), Shard: c.Shard, Height: c.Height, Index: c.Index, Root: hexOf(c.Root[:]),
		Status: status, Superseded: c.Superseded, Reason: c.Reason, Proof: hexOf(c.Proof),
	}
}

// P2P is the p2p.Committed r stands for.
func (r *Receipt) P2P() (p2p.Committed, error) {
	id, err := parseID(r.ID)
	if err != nil {
		return p2p.Committed{}, err
	}
	root, err := parse32(r.Root)
	if err != nil {
		return p2p.Committed{}, fmt.Errorf("root: %w", err)
	}
	proof, err := hex.DecodeString(r.Proof)
	if err != nil {
		return p2p.Committed{}, fmt.Errorf("proof: %w", err)
	}
	c := p2p.Committed{ID: id, Shard: r.Shard, Height: r.Height, Index: r.Index, Root: root, Superseded: r.Superseded, Reason: r.Reason, Proof: proof}
	switch r.Status {
	case "ok":
	case "failed":
		c.Status = p2p.StatusFailed
	default:
		return p2p.Committed{}, fmt.Errorf("status %q", r.Status)
	}
	return c, nil
}

// ValueOf is v's JSON form.
func ValueOf(v p2p.Value) Value {
	return Value{Found: v.Found, Root: hexOf(v.Root[:]), Value: hexOf(v.Value), Proof: hexOf(v.Proof)}
}

// P2P is the p2p.Value v stands for.
func (v *Value) P2P() (p2p.Value, error) {
	root, err := parse32(v.Root)
	if err != nil {
		return p2p.Value{}, fmt.Errorf("root: %w", err)
	}
	value, err := hex.DecodeString(v.Value)
	if err != nil {
		return p2p.Value{}, fmt.Errorf("value: %w", err)
	}
	proof, err := hex.DecodeString(v.Proof)
	if err != nil {
		return p2p.Value{}, fmt.Errorf("proof: %w", err)
	}
	return p2p.Value{Found: v.Found, Root: root, Value: value, Proof: proof}, nil
}

// BlockOf is h's JSON form, with the block's transaction ids if given.
func BlockOf(h consensus.Header, ids []tx.ID) Block {
	hash := h.Hash()
	b := Block{
		Shard: h.Shard, Height: h.Height, Hash: hexOf(hash[:]), Parent: hexOf(h.Parent[:]),
		FirstOffset: h.FirstOffset, NextOffset: h.NextOffset, TxCount: h.TxCount,
		TxRoot: hexOf(h.TxRoot[:]), StateRoot: hexOf(h.StateRoot[:]), Time: h.Time,
	}
	for _, id := range ids {
		b.Txs = append(b.Txs, id.String())
	}
	return b
}

func parseID(s string) (tx.ID, error) {
	b, err := parse32(s)
	return tx.ID(b), err
}

func parse32(s string) ([32]byte, error) {
	var out [32]byte
	if len(s) != 64 {
		return out, fmt.Errorf("%d hex digits, want 64", len(s))
	}
	_, err := hex.Decode(out[:], []byte(s))
	return out, err
}

// parseShard parses a shard number below shards.
func parseShard(s string, shards int) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n >= uint64(shards) {
		return 0, fmt.Errorf("shard %q: want 0 to %d", s, shards-1)
	}
	return uint32(n), nil
}
