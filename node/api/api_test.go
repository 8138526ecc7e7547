package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rustorium/rustorium/internal/kafkatest"
	"github.com/rustorium/rustorium/node"
	"github.com/rustorium/rustorium/node/api"
	"github.com/rustorium/rustorium/node/p2p"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/storage"
	"github.com/rustorium/rustorium/node/tx"
)

const chain = 7

// testAPI is a real node (embedded broker, Pebble, QUIC) with its API
// served on a real socket.
type testAPI struct {
	t     testing.TB
	reg   *prometheus.Registry // the API's metrics
	ctx   context.Context
	n     *node.Node
	srv   *api.Server
	base  string // http://host:port
	alice ed25519.PrivateKey
	bob   ed25519.PrivateKey
}

func keyOf(b byte) ed25519.PrivateKey {
	var seed [32]byte
	seed[0], seed[1] = 0xa9, b
	return ed25519.NewKeyFromSeed(seed[:])
}

func startAPI(t testing.TB, opts ...func(*api.Config)) *testAPI {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	a := &testAPI{t: t, ctx: ctx, alice: keyOf(1), bob: keyOf(2)}
	feed := api.NewFeed()
	n, err := node.New(ctx, node.Config{
		ChainID: chain, Key: keyOf(0), Shards: 2, Brokers: kafkatest.Embedded(t), DataDir: t.TempDir(),
		OnBlock: feed.Publish, Storage: storage.Options{NoSync: true},
		Genesis: []node.GenesisAccount{{Key: a.alice.Public().(ed25519.PublicKey), Balance: 100}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	a.reg = prometheus.NewRegistry()
	cfg := api.Config{Backend: n, ChainID: chain, Feed: feed, ReceiptTimeout: 20 * time.Second, Registerer: a.reg}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := api.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	sctx, stop := context.WithCancel(context.Background())
	go func() { served <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		srv.Close()
		srv.Close() // twice is safe
	})
	a.n, a.srv, a.base = n, srv, "http://"+ln.Addr().String()
	return a
}

func put(i int) (*tx.Tx, []byte) {
	x := &tx.Tx{Kind: tx.KindPut, ChainID: chain, Nonce: uint64(i), Key: fmt.Appendf(nil, "api-%d", i), Value: fmt.Appendf(nil, "value-%d", i)}
	x.Sign(keyOf(9))
	return x, x.Encode()
}

func (a *testAPI) do(method, path, contentType string, body []byte) (int, []byte) {
	a.t.Helper()
	req, err := http.NewRequestWithContext(a.ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	return res.StatusCode, b
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

// submitREST posts raw with ?wait=committed and returns the two streamed
// events.
func (a *testAPI) submitREST(raw []byte) (api.Accepted, p2p.Committed) {
	a.t.Helper()
	req, err := http.NewRequestWithContext(a.ctx, http.MethodPost, a.base+"/v1/tx?wait=committed", bytes.NewReader(raw))
	if err != nil {
		a.t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/x-ndjson" {
		b, _ := io.ReadAll(res.Body)
		a.t.Fatalf("status %d %q: %s", res.StatusCode, res.Header.Get("Content-Type"), b)
	}
	sc := bufio.NewScanner(res.Body)
	var events []api.SubmitEvent
	for sc.Scan() {
		events = append(events, decode[api.SubmitEvent](a.t, sc.Bytes()))
	}
	if len(events) != 2 || events[0].Accepted == nil || events[1].Committed == nil {
		a.t.Fatalf("events %+v, want accepted then committed", events)
	}
	c, err := events[1].Committed.P2P()
	if err != nil {
		a.t.Fatal(err)
	}
	return *events[0].Accepted, c
}

// TestREST: the write path and every read over REST, against a real node;
// proofs verify against the roots the answers carry.
func TestREST(t *testing.T) {
	a := startAPI(t)
	x, raw := put(1)
	acc, com := a.submitREST(raw)
	id := tx.IDOf(raw)
	if acc.ID != id.String() || com.ID != id || com.Status != p2p.StatusOK || com.Height == 0 {
		t.Fatalf("accepted %+v, committed %+v", acc, com)
	}
	if err := storage.VerifyProofBytes(com.Root, state.PutKey(x.Key), x.Value, com.Proof); err != nil {
		t.Fatalf("receipt proof: %v", err)
	}
	// The stored receipt is the streamed one, without the proof (stores
	// keep none: a read gives a current one).
	code, b := a.do(http.MethodGet, "/v1/tx/"+id.String(), "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET tx: %d %s", code, b)
	}
	rc := decode[api.Receipt](t, b)
	if got, err := rc.P2P(); err != nil || got.Height != com.Height || got.Root != com.Root || got.Index != com.Index || got.Status != com.Status || len(got.Proof) != 0 {
		t.Fatalf("stored receipt %+v (%v), streamed %+v", got, err, com)
	}
	// The value reads back with a proof.
	code, b = a.do(http.MethodGet, "/v1/keys/"+hex.EncodeToString(x.Key), "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET key: %d %s", code, b)
	}
	jv := decode[api.Value](t, b)
	v, err := jv.P2P()
	if err != nil || !v.Found || !bytes.Equal(v.Value, x.Value) {
		t.Fatalf("value %+v %v", v, err)
	}
	if err := storage.VerifyProofBytes(v.Root, state.PutKey(x.Key), v.Value, v.Proof); err != nil {
		t.Fatalf("read proof: %v", err)
	}
	// The same through the raw state key.
	code, b = a.do(http.MethodGet, "/v1/state/"+hex.EncodeToString(state.PutKey(x.Key)), "", nil)
	if code != http.StatusOK || decode[api.Value](t, b).Value != jv.Value {
		t.Fatalf("GET state: %d %s", code, b)
	}
	// The block and the status name the same height.
	code, b = a.do(http.MethodGet, fmt.Sprintf("/v1/blocks/%d/%d", com.Shard, com.Height), "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET block: %d %s", code, b)
	}
	blk := decode[api.Block](t, b)
	if blk.Height != com.Height || blk.StateRoot != hex.EncodeToString(com.Root[:]) || blk.TxCount < 1 {
		t.Fatalf("block %+v for receipt %+v", blk, com)
	}
	code, b = a.do(http.MethodGet, fmt.Sprintf("/v1/blocks/%d?limit=4", com.Shard), "", nil)
	if latest := decode[[]api.Block](t, b); code != http.StatusOK || len(latest) == 0 || latest[0].Height < com.Height {
		t.Fatalf("GET latest blocks: %d %s", code, b)
	}
	code, b = a.do(http.MethodGet, "/v1/status", "", nil)
	st := decode[api.Status](t, b)
	if code != http.StatusOK || len(st.Shards) != 2 || st.Shards[com.Shard].Height < com.Height {
		t.Fatalf("status %d %+v", code, st)
	}
	// A JSON body without waiting answers 202 with the acceptance only.
	_, raw2 := put(2)
	body, _ := json.Marshal(map[string]string{"tx": hex.EncodeToString(raw2)})
	code, b = a.do(http.MethodPost, "/v1/tx", "application/json", body)
	if acc2 := decode[api.Accepted](t, b); code != http.StatusAccepted || acc2.ID != tx.IDOf(raw2).String() {
		t.Fatalf("POST json: %d %s", code, b)
	}
	a.do(http.MethodGet, "/v1/nothing", "", nil)
	for _, c := range []struct {
		route, status string
		want          float64
	}{{"POST /v1/tx", "200", 1}, {"POST /v1/tx", "202", 1}, {"GET /v1/blocks/{shard}/{height}", "200", 1}, {"unmatched", "404", 1}} {
		if got := requests(t, a.reg, c.route, c.status); got != c.want {
			t.Errorf("requests{route=%q, status=%s} = %v, want %v", c.route, c.status, got, c.want)
		}
	}
}

// requests is rustorium_api_requests_total{route, status}.
func requests(t *testing.T, reg *prometheus.Registry, route, status string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "rustorium_api_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] == route && labels["status"] == status {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestRESTRefusals: bad input gets a typed error with a fitting status,
// and nothing reaches the log.
func TestRESTRefusals(t *testing.T) {
	a := startAPI(t)
	_, raw := put(3)
	forged := bytes.Clone(raw)
	forged[len(forged)-1] ^= 1
	otherChain := &tx.Tx{Kind: tx.KindPut, ChainID: chain + 1, Key: []byte("k"), Value: []byte("v")}
	otherChain.Sign(keyOf(9))
	for _, c := range []struct {
		name, method, path, ct string
		body                   []byte
		status                 int
		code                   string
	}{
		{"forged signature", "POST", "/v1/tx", "", forged, 400, tx.CodeSignature.String()},
		{"garbage", "POST", "/v1/tx", "", []byte("nonsense"), 400, tx.CodeEncoding.String()},
		{"other chain", "POST", "/v1/tx?wait=committed", "", otherChain.Encode(), 400, tx.CodeChainID.String()},
		{"too large", "POST", "/v1/tx", "", make([]byte, 3*tx.MaxSize), 413, tx.CodeTooLarge.String()},
		{"bad json", "POST", "/v1/tx", "application/json", []byte("{"), 400, api.CodeBadRequest},
		{"bad hex", "POST", "/v1/tx", "application/json", []byte(`{"tx":"zz"}`), 400, api.CodeBadRequest},
		{"bad wait", "POST", "/v1/tx?wait=forever", "", raw, 400, api.CodeBadRequest},
		{"unknown tx", "GET", "/v1/tx/" + strings.Repeat("ab", 32), "", nil, 404, api.CodeNotFound},
		{"short tx id", "GET", "/v1/tx/abcd", "", nil, 400, api.CodeBadRequest},
		{"bad account", "GET", "/v1/accounts/1234", "", nil, 400, api.CodeBadRequest},
		{"bad shard", "GET", "/v1/blocks/7", "", nil, 400, api.CodeBadRequest},
		{"bad limit", "GET", "/v1/blocks/0?limit=0", "", nil, 400, api.CodeBadRequest},
		{"missing block", "GET", "/v1/blocks/0/999", "", nil, 404, api.CodeNotFound},
		{"bad height", "GET", "/v1/blocks/0/x", "", nil, 400, api.CodeBadRequest},
		{"short state key", "GET", "/v1/state/01", "", nil, 400, api.CodeBadRequest},
		{"no route", "GET", "/v2/nothing", "", nil, 404, api.CodeNotFound},
		{"wrong method", "DELETE", "/v1/status", "", nil, 405, api.CodeMethodNotAllowed},
		{"graphql too large", "POST", "/graphql", "application/json", make([]byte, 2<<20), 413, tx.CodeTooLarge.String()},
	} {
		code, b := a.do(c.method, c.path, c.ct, c.body)
		e := decode[api.Error](t, b)
		if code != c.status || e.Code != c.code || e.Error == "" {
			t.Errorf("%s: %d %+v, want %d %q", c.name, code, e, c.status, c.code)
		}
	}
	if _, ok, err := a.n.TxLocation(tx.IDOf(raw)); err != nil || ok {
		t.Fatal("a refused request's transaction was committed")
	}
}

// TestAccountAndTransfer: an account reads from the view with a proof of
// its balance, and a transfer shows in it and in the recent transactions.
func TestAccountAndTransfer(t *testing.T) {
	a := startAPI(t)
	alice := a.alice.Public().(ed25519.PublicKey)
	account := func() api.Account {
		code, b := a.do(http.MethodGet, "/v1/accounts/"+hex.EncodeToString(alice), "", nil)
		if code != http.StatusOK {
			t.Fatalf("GET account: %d %s", code, b)
		}
		return decode[api.Account](t, b)
	}
	before := account()
	if !before.Exists || before.Balance != 100 {
		t.Fatalf("genesis account %+v", before)
	}
	checkProof := func(ac api.Account) {
		root, _ := hex.DecodeString(ac.Root)
		proof, _ := hex.DecodeString(ac.Proof)
		var r [32]byte
		copy(r[:], root)
		val := state.Account{Balance: ac.Balance, Nonce: ac.Nonce}.Encode()
		if err := storage.VerifyProofBytes(r, state.AccountKey(alice), val, proof); err != nil {
			t.Fatalf("account proof: %v", err)
		}
	}
	checkProof(before)
	var to [32]byte
	copy(to[:], a.bob.Public().(ed25519.PublicKey))
	x := &tx.Tx{Kind: tx.KindTransfer, ChainID: chain, Nonce: 0, To: to, Amount: 30}
	x.Sign(a.alice)
	_, com := a.submitREST(x.Encode())
	if com.Status != p2p.StatusOK {
		t.Fatalf("transfer: %+v", com)
	}
	after := account()
	if after.Balance != 70 || len(after.Recent) == 0 || after.Recent[0] != tx.IDOf(x.Encode()).String() {
		t.Fatalf("after the transfer: %+v", after)
	}
	checkProof(after)
}

// TestWebSocket: submissions with streamed receipts, reads and the block
// feed over one WebSocket connection.
func TestWebSocket(t *testing.T) {
	a := startAPI(t)
	c, _, err := websocket.Dial(a.ctx, "ws"+strings.TrimPrefix(a.base, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	send := func(r api.WSRequest) {
		b, _ := json.Marshal(r)
		if err := c.Write(a.ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() api.WSMessage {
		_, b, err := c.Read(a.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return decode[api.WSMessage](t, b)
	}
	send(api.WSRequest{ID: 1, Op: "subscribe", Topic: "blocks"})
	if m := read(); m.ID != 1 || m.Type != "subscribed" {
		t.Fatalf("subscribe: %+v", m)
	}
	const n = 5
	ids := map[string]uint64{}
	for i := range n {
		x, raw := put(10 + i)
		_ = x
		ids[tx.IDOf(raw).String()] = uint64(100 + i)
		send(api.WSRequest{ID: uint64(100 + i), Op: "submit", Tx: hex.EncodeToString(raw)})
	}
	send(api.WSRequest{ID: 7, Op: "launch"})
	send(api.WSRequest{ID: 8, Op: "submit", Tx: "zz"})
	accepted, committed, inBlocks := map[uint64]bool{}, map[uint64]bool{}, map[string]bool{}
	var refused []uint64
	for len(committed) < n || len(inBlocks) < n || len(refused) < 2 {
		m := read()
		switch m.Type {
		case "accepted":
			accepted[m.ID] = true
		case "committed":
			if !accepted[m.ID] {
				t.Fatalf("committed before accepted: %+v", m)
			}
			if m.Committed.Status != "ok" || ids[m.Committed.ID] != m.ID {
				t.Fatalf("receipt %+v", m.Committed)
			}
			committed[m.ID] = true
		case "block":
			for _, id := range m.Block.Txs {
				if _, ok := ids[id]; ok {
					inBlocks[id] = true
				}
			}
		case "error":
			if m.ID != 7 && m.ID != 8 || m.Error.Code != api.CodeBadRequest {
				t.Fatalf("error %+v", m)
			}
			refused = append(refused, m.ID)
		default:
			t.Fatalf("unexpected %+v", m)
		}
	}
	x, _ := put(10)
	send(api.WSRequest{ID: 9, Op: "get", Key: hex.EncodeToString(state.PutKey(x.Key))})
	for {
		m := read()
		if m.Type == "block" {
			continue
		}
		if m.ID != 9 || m.Type != "value" || !m.Value.Found || m.Value.Value != hex.EncodeToString(x.Value) {
			t.Fatalf("get: %+v", m)
		}
		break
	}
}

// TestWebSocketOverload: a connection with MaxInflight requests under way
// gets the next one refused as overloaded, at once; the ones under way
// still commit.
func TestWebSocketOverload(t *testing.T) {
	a := startAPI(t, func(c *api.Config) { c.MaxInflight = 1 })
	c, _, err := websocket.Dial(a.ctx, "ws"+strings.TrimPrefix(a.base, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	a.n.Pause() // the first submission waits at the node's ingress
	for id := range uint64(2) {
		_, raw := put(30 + int(id))
		b, _ := json.Marshal(api.WSRequest{ID: id + 1, Op: "submit", Tx: hex.EncodeToString(raw)})
		if err := c.Write(a.ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	_, b, err := c.Read(a.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := decode[api.WSMessage](t, b); m.ID != 2 || m.Type != "error" || m.Error.Code != tx.CodeOverloaded.String() {
		t.Fatalf("second request: %+v, want refused as overloaded", m)
	}
	a.n.Resume()
	for _, want := range []string{"accepted", "committed"} {
		_, b, err := c.Read(a.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m := decode[api.WSMessage](t, b); m.ID != 1 || m.Type != want {
			t.Fatalf("first request: %+v, want %s", m, want)
		}
	}
}

// TestGraphQL: a mutation that waits for the commit, and every query.
func TestGraphQL(t *testing.T) {
	a := startAPI(t)
	gql := func(query string, vars map[string]any) map[string]any {
		t.Helper()
		body, _ := json.Marshal(api.GraphQLRequest{Query: query, Variables: vars})
		code, b := a.do(http.MethodPost, "/graphql", "application/json", body)
		var res struct {
			Data   map[string]any
			Errors []struct{ Message string }
		}
		if err := json.Unmarshal(b, &res); err != nil || code != http.StatusOK {
			t.Fatalf("%d %s (%v)", code, b, err)
		}
		if len(res.Errors) > 0 {
			t.Fatalf("errors: %+v", res.Errors)
		}
		return res.Data
	}
	x, raw := put(20)
	d := gql(`mutation($tx: String!) { submit(tx: $tx) { accepted { id shard } committed { height status root proof } } }`,
		map[string]any{"tx": hex.EncodeToString(raw)})
	sub := d["submit"].(map[string]any)
	committed := sub["committed"].(map[string]any)
	if sub["accepted"].(map[string]any)["id"] != tx.IDOf(raw).String() || committed["status"] != "ok" {
		t.Fatalf("submit: %+v", sub)
	}
	height := committed["height"].(string)
	shard := int(sub["accepted"].(map[string]any)["shard"].(float64))
	d = gql(`query($key: String!, $id: String!, $shard: Int!, $height: String) {
		value(key: $key) { found value root proof }
		transaction(id: $id) { height status }
		block(shard: $shard, height: $height) { height txCount stateRoot }
		latest: block(shard: $shard) { height }
		status { shards { shard height } cache { entries } ready checks { name ok error } }
	}`, map[string]any{"key": hex.EncodeToString(x.Key), "id": tx.IDOf(raw).String(), "shard": shard, "height": height})
	val := d["value"].(map[string]any)
	if val["found"] != true || val["value"] != hex.EncodeToString(x.Value) {
		t.Fatalf("value %+v", val)
	}
	var root [32]byte
	rb, _ := hex.DecodeString(val["root"].(string))
	copy(root[:], rb)
	proof, _ := hex.DecodeString(val["proof"].(string))
	if err := storage.VerifyProofBytes(root, state.PutKey(x.Key), x.Value, proof); err != nil {
		t.Fatalf("proof: %v", err)
	}
	if d["transaction"].(map[string]any)["height"] != height || d["block"].(map[string]any)["height"] != height {
		t.Fatalf("transaction %+v block %+v, want height %s", d["transaction"], d["block"], height)
	}
	if st := d["status"].(map[string]any); st["ready"] != true || len(st["checks"].([]any)) != 6 {
		t.Fatalf("status: %+v", st)
	}
	if d["block"].(map[string]any)["stateRoot"] != committed["root"] {
		t.Fatalf("block root %v, receipt root %v", d["block"], committed["root"])
	}
	// A refused submission is a GraphQL error naming the reason.
	body, _ := json.Marshal(api.GraphQLRequest{Query: `mutation { submit(tx: "00") { accepted { id } } }`})
	_, b := a.do(http.MethodPost, "/graphql", "application/json", body)
	if !strings.Contains(string(b), tx.CodeEncoding.String()) {
		t.Fatalf("refused submit: %s", b)
	}
	// Unknown transactions and blocks are null, not errors.
	d = gql(`{ transaction(id: "`+strings.Repeat("00", 32)+`") { height } block(shard: 0, height: "999") { height } }`, nil)
	if d["transaction"] != nil || d["block"] != nil {
		t.Fatalf("unknown: %+v", d)
	}
}

// FuzzREST: whatever body reaches POST /v1/tx or /graphql, the server
// answers with JSON — an acceptance, a GraphQL response or a typed refusal
// — and never panics.
func FuzzREST(f *testing.F) {
	_, raw := put(40)
	f.Add(raw, "")
	f.Add([]byte(`{"tx":"`+hex.EncodeToString(raw)+`"}`), "application/json")
	f.Add([]byte(`{"query":"{ status { shards { height } } }"}`), "graphql")
	f.Add([]byte(`{"query":"mutation { submit(tx: \"00\") { accepted { id } } }"}`), "graphql")
	f.Add([]byte(`{"query":"{ account(key: \"zz\") { balance } block(shard: 9) { height } }"}`), "graphql")
	f.Add([]byte{0xff, 0x00}, "")
	a := startAPI(f)
	f.Fuzz(func(t *testing.T, body []byte, kind string) {
		path, ct := "/v1/tx", kind
		if kind == "graphql" {
			path, ct = "/graphql", "application/json"
		}
		req := httptest.NewRequestWithContext(a.ctx, http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		a.srv.ServeHTTP(rec, req)
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("status %d, not JSON: %q", rec.Code, rec.Body.Bytes())
		}
		code, _ := v["code"].(string)
		msg, _ := v["error"].(string)
		switch {
		case path == "/graphql" && rec.Code == http.StatusOK:
		case rec.Code == http.StatusAccepted:
		case rec.Code >= 400 && code != "" && msg != "":
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
		}
	})
}
