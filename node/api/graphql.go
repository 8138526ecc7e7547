package api

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	graphql "github.com/graph-gophers/graphql-go"

	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/tx"
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
	# Whether the node can take writes: every check passed (GET /readyz).
	ready: Boolean!
	checks: [Check!]!
}

type Check {
	name: String!
	ok: Boolean!
	error: String!
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
	gqlCheck struct {
		Name  string
		OK    bool
		Error string
	}
	gqlStatus struct {
		Shards []gqlShardStatus
		Cache  gqlCacheStatus
		Ready  bool
		Checks []gqlCheck
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

func (q *resolver) Status(ctx context.Context) (*gqlStatus, error) {
	st, ref := q.s.status(ctx)
	if ref != nil {
		return nil, ref
	}
	out := &gqlStatus{Cache: gqlCacheStatus{
		Hits: u64(st.Cache.Hits), Misses: u64(st.Cache.Misses), Entries: int32(st.Cache.Entries), Capacity: u64(st.Cache.Capacity),
	}, Ready: st.Ready, Checks: []gqlCheck{}}
	for _, c := range st.Checks {
		out.Checks = append(out.Checks, gqlCheck{Name: c.Name, OK: c.OK, Error: c.Error})
	}
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

// graphqlHandler serves the schema over HTTP, within the Config's Limits.
type graphqlHandler struct {
	schema  *graphql.Schema
	limits  Limits
	receipt time.Duration // the Config's ReceiptTimeout
	slots   chan struct{} // a slot per query (no mutation) under way
}

func newGraphQL(s *Server) (http.Handler, error) {
	l := s.cfg.Limits
	opts := []graphql.SchemaOpt{
		graphql.UseFieldResolvers(), graphql.MaxDepth(l.GraphQLMaxDepth), graphql.MaxSelections(l.GraphQLMaxSelections),
		graphql.MaxQueryLength(int(l.MaxBody)),
	}
	if !l.Introspection {
		opts = append(opts, graphql.RestrictIntrospection(func(context.Context) bool { return false }))
	}
	schema, err := graphql.ParseSchema(Schema, &resolver{s: s}, opts...)
	if err != nil {
		return nil, err
	}
	return &graphqlHandler{schema: schema, limits: l, receipt: s.cfg.ReceiptTimeout, slots: make(chan struct{}, l.GraphQLConcurrency)}, nil
}

// GraphQLRequest is the body of POST /graphql.
type GraphQLRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables,omitempty"`
}

func (h *graphqlHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req GraphQLRequest
	body, ref := readBody(w, r, h.limits.MaxBody, tx.CodeTooLarge.String())
	if ref != nil {
		writeRefusal(w, ref)
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeRefusal(w, refuse(http.StatusBadRequest, CodeBadRequest, "body: %v", err))
		return
	}
	sc := scanQuery(req.Query)
	switch {
	case sc.introspection && !h.limits.Introspection:
		writeRefusal(w, refuse(http.StatusBadRequest, CodeIntrospection, "introspection (__schema, __type) is disabled on this node"))
		return
	case sc.selections > h.limits.GraphQLMaxSelections:
		writeRefusal(w, refuse(http.StatusBadRequest, CodeTooComplex, "%d field selections, at most %d", sc.selections, h.limits.GraphQLMaxSelections))
		return
	}
	timeout := h.limits.GraphQLTimeout
	if sc.mutation(req.OperationName) {
		timeout = h.receipt + 5*time.Second
	} else {
		select {
		case h.slots <- struct{}{}:
			defer func() { <-h.slots }()
		default:
			writeRefusal(w, refuse(http.StatusServiceUnavailable, tx.CodeOverloaded.String(), "over %d GraphQL queries under way", cap(h.slots)))
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	res := h.schema.Exec(ctx, req.Query, req.OperationName, req.Variables)
	if ref := gqlRefusal(res, ctx.Err(), timeout); ref != nil {
		writeRefusal(w, ref)
		return
	}
	b, err := json.Marshal(res)
	switch {
	case err != nil:
		writeRefusal(w, refuse(http.StatusInternalServerError, tx.CodeInternal.String(), "answer: %v", err))
		return
	case len(b) > h.limits.GraphQLMaxResponse:
		writeRefusal(w, refuse(http.StatusBadRequest, CodeResponseTooLarge, "an answer of %d bytes, at most %d", len(b), h.limits.GraphQLMaxResponse))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(b, '\n'))
}

// gqlRefusal is the refusal of a GraphQL answer that hit a limit (the
// selections after fragments expanded, the depth, the timeout), nil for
// any other.
func gqlRefusal(res *graphql.Response, ctxErr error, timeout time.Duration) *refusal {
	if errors.Is(ctxErr, context.DeadlineExceeded) {
		return refuse(http.StatusGatewayTimeout, CodeTimeout, "the GraphQL request took over %v", timeout)
	}
	for _, e := range res.Errors {
		if errors.Is(e.Err, graphql.ErrTooManySelections) || strings.HasPrefix(e.Rule, "MaxDepth") {
			return refuse(http.StatusBadRequest, CodeTooComplex, "%s", e.Message)
		}
	}
	return nil
}

// scanned is what a GraphQL document shows before it is parsed.
type scanned struct {
	selections    int     // field selections, aliases and fragment definitions counted, spreads not expanded
	introspection bool    // a selection of __schema or __type (or any __ field but __typename)
	ops           []gqlOp // the operations, in order
}

// gqlOp is an operation of a document: its type and name ("" if none).
type gqlOp struct{ kind, name string }

// mutation reports whether the operation that runs (the one named
// opName, or the document's only one) is a mutation.
func (sc scanned) mutation(opName string) bool {
	for _, op := range sc.ops {
		if opName == "" && len(sc.ops) == 1 || opName != "" && op.name == opName {
			return op.kind == "mutation"
		}
	}
	return false
}

// scanQuery reads q's tokens: cheap and bounded by its length, it refuses
// the costly documents before graphql-go validates them (its overlap
// check is quadratic in a selection set's fields).
func scanQuery(q string) scanned {
	var out scanned
	toks := gqlTokens(q)
	braces, parens := 0, 0
	pending := "" // at the top level: the keyword of a definition whose body has not begun
	for i, t := range toks {
		switch t {
		case "{":
			if parens == 0 {
				if braces == 0 {
					switch pending {
					case "":
						out.ops = append(out.ops, gqlOp{kind: "query"}) // the shorthand
					}
					pending = ""
				}
				braces++
			}
			continue
		case "}":
			if parens == 0 && braces > 0 {
				braces--
			}
			continue
		case "(":
			parens++
			continue
		case ")":
			if parens > 0 {
				parens--
			}
			continue
		}
		if !isGQLName(t) || parens > 0 {
			continue
		}
		if braces == 0 {
			switch {
			case pending == "" && (t == "query" || t == "mutation" || t == "subscription" || t == "fragment"):
				pending = t
				if t != "fragment" {
					out.ops = append(out.ops, gqlOp{kind: t})
				}
			case pending != "" && pending != "fragment" && i > 0 && toks[i-1] == pending:
				out.ops[len(out.ops)-1].name = t
			}
			continue
		}
		prev := ""
		if i > 0 {
			prev = toks[i-1]
		}
		switch {
		case prev == "..." || prev == "@" || prev == "$":
			continue
		case prev == "on" && i > 1 && toks[i-2] == "...":
			continue
		case i+1 < len(toks) && toks[i+1] == ":":
			continue // an alias: its field follows
		}
		out.selections++
		if strings.HasPrefix(t, "__") && t != "__typename" {
			out.introspection = true
		}
	}
	return out
}

func isGQLName(t string) bool {
	c := t[0]
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// gqlTokens splits a GraphQL document into names, punctuators and
// literals (strings and numbers as one opaque token each), skipping
// whitespace, commas and comments.
func gqlTokens(q string) []string {
	var toks []string
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == 0xef || c == 0xbb || c == 0xbf:
			i++
		case c == '#':
			for i < len(q) && q[i] != '\n' && q[i] != '\r' {
				i++
			}
		case strings.HasPrefix(q[i:], `"""`):
			end := strings.Index(q[i+3:], `"""`)
			if end < 0 {
				return append(toks, `""`)
			}
			toks, i = append(toks, `""`), i+3+end+3
		case c == '"':
			j := i + 1
			for j < len(q) && q[j] != '"' && q[j] != '\n' {
				if q[j] == '\\' {
					j++
				}
				j++
			}
			toks, i = append(toks, `""`), j+1
		case strings.HasPrefix(q[i:], "..."):
			toks, i = append(toks, "..."), i+3
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(q) && (q[j] == '_' || q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z' || q[j] >= '0' && q[j] <= '9') {
				j++
			}
			toks, i = append(toks, q[i:j]), j
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(q) && (q[j] >= '0' && q[j] <= '9' || q[j] == '.' || q[j] == 'e' || q[j] == 'E' || q[j] == '+' || q[j] == '-') {
				j++
			}
			toks, i = append(toks, "0"), j
		default:
			toks, i = append(toks, q[i:i+1]), i+1
		}
	}
	return toks
}
