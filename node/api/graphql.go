package api

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"

	graphql "github.com/graph-gophers/graphql-go"

	"github.com/rustorium/rustorium/node/state"
)

// Schema is the GraphQL API's schema, served at POST /graphql (a JSON body
// {"query", "operationName", "variables"}). Bytes
// are hex; 64-bit numbers are decimal strings (GraphQL's Int has 32 bits).
const Schema = `
schema {
	query: Query
	mutation: Mutation
}

type Query {
	# Every shard's committed position and the account view's counters.
	status: Status!
	# An account from the account view (key: 32-byte public key, hex).
	account(key: String!): Account!
	# A put key's committed value with its proof (key: hex).
	value(key: String!): Value!
	# A committed block; without height, the shard's latest.
	block(shard: Int!, height: String): Block
	# A committed transaction's receipt (id: hex), null if not committed here.
	transaction(id: String!): Receipt
}

type Mutation {
	# Submits a transaction (its canonical encoding, hex). With wait
	# COMMITTED (the default) it answers once the transaction committed.
	submit(tx: String!, wait: Wait = COMMITTED): Submission!
}

enum Wait {
	ACCEPTED
	COMMITTED
}

type Status {
	shards: [ShardStatus!]!
	cache: CacheStatus!
}

type ShardStatus {
	shard: Int!
	height: String!
	blockHash: String!
	root: String!
}

type CacheStatus {
	hits: String!
	misses: String!
	entries: Int!
	capacity: String!
}

type Account {
	key: String!
	exists: Boolean!
	balance: String!
	nonce: String!
	height: String!
	root: String!
	proof: String!
	recent: [String!]!
}

type Value {
	key: String!
	found: Boolean!
	value: String!
	root: String!
	proof: String!
}

type Block {
	shard: Int!
	height: String!
	hash: String!
	parent: String!
	firstOffset: String!
	nextOffset: String!
	txCount: Int!
	txRoot: String!
	stateRoot: String!
	timeUnixNano: String!
}

type Receipt {
	id: String!
	shard: Int!
	height: String!
	index: Int!
	root: String!
	status: String!
	superseded: Boolean!
	reason: String!
	proof: String!
}

type Accepted {
	id: String!
	shard: Int!
	offset: String!
}

type Submission {
	accepted: Accepted!
	committed: Receipt
}
`

// The GraphQL forms, resolved field by field (graphql.UseFieldResolvers).
type (
	gqlShardStatus struct {
		Shard                   int32
		Height, BlockHash, Root string
	}
	gqlCacheStatus struct {
		Hits, Misses string
		Entries      int32
		Capacity     string
	}
	gqlStatus struct {
		Shards []gqlShardStatus
		Cache  gqlCacheStatus
	}
	gqlAccount struct {
		Key                                 string
		Exists                              bool
		Balance, Nonce, Height, Root, Proof string
		Recent                              []string
	}
	gqlValue struct {
		Key                string
		Found              bool
		Value, Root, Proof string
	}
	gqlBlock struct {
		Shard                                         int32
		Height, Hash, Parent, FirstOffset, NextOffset string
		TxCount                                       int32
		TxRoot, StateRoot, TimeUnixNano               string
	}
	gqlReceipt struct {
		ID         string
		Shard      int32
		Height     string
		Index      int32
		Root       string
		Status     string
		Superseded bool
		Reason     string
		Proof      string
	}
	gqlAccepted struct {
		ID     string
		Shard  int32
		Offset string
	}
	gqlSubmission struct {
		Accepted  gqlAccepted
		Committed *gqlReceipt
	}
)

func u64(v uint64) string { return strconv.FormatUint(v, 10) }
func i64(v int64) string  { return strconv.FormatInt(v, 10) }

func gqlBlockOf(b Block) *gqlBlock {
	return &gqlBlock{
		Shard: int32(b.Shard), Height: u64(b.Height), Hash: b.Hash, Parent: b.Parent,
		FirstOffset: i64(b.FirstOffset), NextOffset: i64(b.NextOffset), TxCount: int32(b.TxCount),
		TxRoot: b.TxRoot, StateRoot: b.StateRoot, TimeUnixNano: i64(b.Time),
	}
}

func gqlReceiptOf(r Receipt) *gqlReceipt {
	return &gqlReceipt{
		ID: r.ID, Shard: int32(r.Shard), Height: u64(r.Height), Index: int32(r.Index), Root: r.Root,
		Status: r.Status, Superseded: r.Superseded, Reason: r.Reason, Proof: r.Proof,
	}
}

// resolver is the GraphQL root resolver.
type resolver struct{ s *Server }

func (q *resolver) Status() (*gqlStatus, error) {
	st, ref := q.s.status()
	if ref != nil {
		return nil, ref
	}
	out := &gqlStatus{Cache: gqlCacheStatus{
		Hits: u64(st.Cache.Hits), Misses: u64(st.Cache.Misses), Entries: int32(st.Cache.Entries), Capacity: u64(st.Cache.Capacity),
	}}
	for _, sh := range st.Shards {
		out.Shards = append(out.Shards, gqlShardStatus{Shard: int32(sh.Shard), Height: u64(sh.Height), BlockHash: sh.BlockHash, Root: sh.Root})
	}
	return out, nil
}

func (q *resolver) Account(ctx context.Context, args struct{ Key string }) (*gqlAccount, error) {
	a, ref := q.s.account(ctx, args.Key)
	if ref != nil {
		return nil, ref
	}
	return &gqlAccount{
		Key: a.Key, Exists: a.Exists, Balance: u64(a.Balance), Nonce: u64(a.Nonce), Height: u64(a.Height),
		Root: a.Root, Proof: a.Proof, Recent: append([]string{}, a.Recent...),
	}, nil
}

func (q *resolver) Value(ctx context.Context, args struct{ Key string }) (*gqlValue, error) {
	key, err := hex.DecodeString(args.Key)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, CodeBadRequest, "key: %v", err)
	}
	v, ref := q.s.get(ctx, state.PutKey(key))
	if ref != nil {
		return nil, ref
	}
	jv := ValueOf(v)
	return &gqlValue{Key: args.Key, Found: jv.Found, Value: jv.Value, Root: jv.Root, Proof: jv.Proof}, nil
}

func (q *resolver) Block(args struct {
	Shard  int32
	Height *string
}) (*gqlBlock, error) {
	shard := strconv.Itoa(int(args.Shard))
	if args.Height == nil {
		if _, err := parseShard(shard, q.s.cfg.Backend.Shards()); err != nil {
			return nil, refuse(http.StatusBadRequest, CodeBadRequest, "%v", err)
		}
		latest := q.s.cfg.Backend.Views().LatestBlocks(uint32(args.Shard), 1)
		if len(latest) == 0 {
			return nil, nil
		}
		return gqlBlockOf(BlockOf(latest[0], nil)), nil
	}
	b, ref := q.s.block(shard, *args.Height)
	if ref != nil {
		if ref.status == http.StatusNotFound {
			return nil, nil
		}
		return nil, ref
	}
	return gqlBlockOf(b), nil
}

func (q *resolver) Transaction(args struct{ ID string }) (*gqlReceipt, error) {
	r, ref := q.s.txReceipt(args.ID)
	if ref != nil {
		if ref.status == http.StatusNotFound {
			return nil, nil
		}
		return nil, ref
	}
	return gqlReceiptOf(r), nil
}

func (q *resolver) Submit(ctx context.Context, args struct {
	Tx   string
	Wait string
}) (*gqlSubmission, error) {
	raw, err := hex.DecodeString(args.Tx)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, CodeBadRequest, "tx: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, q.s.cfg.ReceiptTimeout)
	defer cancel()
	acc, ch, ref := q.s.submit(ctx, raw)
	if ref != nil {
		return nil, ref
	}
	out := &gqlSubmission{Accepted: gqlAccepted{ID: acc.ID.String(), Shard: int32(acc.Shard), Offset: i64(acc.Offset)}}
	if args.Wait == "ACCEPTED" {
		return out, nil
	}
	c, ref := q.s.receipt(ctx, ch)
	if ref != nil {
		return nil, ref
	}
	out.Committed = gqlReceiptOf(ReceiptOf(c))
	return out, nil
}

// graphqlHandler serves the schema over HTTP.
type graphqlHandler struct{ schema *graphql.Schema }

func newGraphQL(s *Server) (http.Handler, error) {
	schema, err := graphql.ParseSchema(Schema, &resolver{s: s}, graphql.UseFieldResolvers(), graphql.MaxDepth(8))
	if err != nil {
		return nil, err
	}
	return &graphqlHandler{schema: schema}, nil
}

// GraphQLRequest is the body of POST /graphql.
type GraphQLRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
}

func (h *graphqlHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req GraphQLRequest
	body, ref := readBody(w, r, 1<<20, CodeBadRequest)
	if ref != nil {
		writeRefusal(w, ref)
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeRefusal(w, refuse(http.StatusBadRequest, CodeBadRequest, "body: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, h.schema.Exec(r.Context(), req.Query, req.OperationName, req.Variables))
}
