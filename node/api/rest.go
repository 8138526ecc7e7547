package api

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/rustorium/rustorium/node/ordering"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/node/tx"
)

// The REST API (all answers JSON; errors are an Error with a 4xx or 5xx
// status):
//
//	POST /v1/tx                   submit a transaction: the body is its canonical
//	                              encoding (application/octet-stream) or
//	                              {"tx": "<hex>"}. Answers 202 with an Accepted
//	                              once the log holds it; with ?wait=committed,
//	                              200 and newline-delimited SubmitEvents: the
//	                              accepted line, then the committed (or error) line.
//	GET  /v1/tx/{id}              a committed transaction's Receipt, without a proof
//	                              (read its key for a current one)
//	GET  /v1/accounts/{key}       an Account (32-byte public key, hex)
//	GET  /v1/keys/{key}           a put key's Value (the key in hex)
//	GET  /v1/state/{key}          any state key's Value (prefix byte included, hex)
//	GET  /v1/blocks/{shard}       the shard's latest Blocks, newest first (?limit=, ≤ 64)
//	GET  /v1/blocks/{shard}/{height}  one committed Block
//	GET  /v1/status               Status (readiness included)
//	GET  /healthz                 200 {"ok": true} while the process serves
//	GET  /readyz                  Readiness: 200 when the node can take writes,
//	                              else 503 naming the failed checks
//	GET  /v1/ws                   the WebSocket API (see ws.go)
//	POST /graphql                 the GraphQL API (see graphql.go)
func (s *Server) routes() {
	s.mux.HandleFunc("POST /v1/tx", s.postTx)
	s.mux.HandleFunc("GET /v1/tx/{id}", s.getTx)
	s.mux.HandleFunc("GET /v1/accounts/{key}", s.getAccount)
	s.mux.HandleFunc("GET /v1/keys/{key}", s.getKey)
	s.mux.HandleFunc("GET /v1/state/{key}", s.getState)
	s.mux.HandleFunc("GET /v1/blocks/{shard}", s.getBlocks)
	s.mux.HandleFunc("GET /v1/blocks/{shard}/{height}", s.getBlock)
	s.mux.HandleFunc("GET /v1/status", s.getStatus)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	s.mux.HandleFunc("GET /readyz", s.getReady)
	s.mux.HandleFunc(wsPattern, s.serveWS)
}

const wsPattern = "GET /v1/ws"

// maxBlocks bounds a latest-blocks answer (the view keeps this many).
const maxBlocks = 64

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeRefusal(w http.ResponseWriter, r *refusal) { writeJSON(w, r.status, r.body) }

// readTx reads a submission's body: the raw encoding, or {"tx": "<hex>"}.
func readTx(w http.ResponseWriter, r *http.Request) ([]byte, *refusal) {
	body, ref := readBody(w, r, 2*tx.MaxSize+64, tx.CodeTooLarge.String())
	if ref != nil {
		return nil, ref
	}
	ct := r.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/json") {
		return body, nil
	}
	var req struct {
		Tx string `json:"tx"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, refuse(http.StatusBadRequest, CodeBadRequest, "body: %v", err)
	}
	raw, err := hex.DecodeString(req.Tx)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, CodeBadRequest, "tx: %v", err)
	}
	return raw, nil
}

// readBody reads a request body of at most limit bytes; a longer one is
// refused with 413 and tooLarge as its code.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, tooLarge string) ([]byte, *refusal) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, refuse(http.StatusRequestEntityTooLarge, tooLarge, "body over %d bytes", limit)
	case err != nil:
		return nil, refuse(http.StatusBadRequest, CodeBadRequest, "body: %v", err)
	}
	return body, nil
}

func (s *Server) postTx(w http.ResponseWriter, r *http.Request) {
	wait := r.URL.Query().Get("wait")
	if wait != "" && wait != "accepted" && wait != "committed" {
		writeRefusal(w, refuse(http.StatusBadRequest, CodeBadRequest, "wait=%q: accepted or committed", wait))
		return
	}
	raw, ref := readTx(w, r)
	if ref != nil {
		writeRefusal(w, ref)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReceiptTimeout)
	defer cancel()
	acc, ch, ref := s.submit(ctx, raw)
	if ref != nil {
		writeRefusal(w, ref)
		return
	}
	a := AcceptedOf(acc)
	if wait != "committed" {
		writeJSON(w, http.StatusAccepted, a)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	if enc.Encode(SubmitEvent{Accepted: &a}) != nil {
		return
	}
	http.NewResponseController(w).Flush()
	c, ref := s.receipt(ctx, ch)
	if ref != nil {
		_ = enc.Encode(SubmitEvent{Error: &ref.body})
		return
	}
	rc := ReceiptOf(c)
	_ = enc.Encode(SubmitEvent{Committed: &rc})
}

func (s *Server) getTx(w http.ResponseWriter, r *http.Request) {
	rc, ref := s.txReceipt(r.PathValue("id"))
	if ref != nil {
		writeRefusal(w, ref)
		return
	}
	writeJSON(w, http.StatusOK, rc)
}

// txReceipt is a committed transaction's stored receipt.
func (s *Server) txReceipt(idHex string) (Receipt, *refusal) {
	id, err := parseID(idHex)
	if err != nil {
		return Receipt{}, refuse(http.StatusBadRequest, CodeBadRequest, "transaction id: %v", err)
	}
	c, ok, err := s.cfg.Backend.Receipt(id)
	switch {
	case err != nil:
		return Receipt{}, refuse(http.StatusServiceUnavailable, tx.CodeInternal.String(), "%v", err)
	case !ok:
		return Receipt{}, refuse(http.StatusNotFound, CodeNotFound, "transaction %s is not committed here", idHex)
	}
	return ReceiptOf(c), nil
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) {
	a, ref := s.account(r.Context(), r.PathValue("key"))
	if ref != nil {
		writeRefusal(w, ref)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// account reads an account from the account view (filled on a miss).
func (s *Server) account(ctx context.Context, keyHex string) (Account, *refusal) {
	pub, err := hex.DecodeString(keyHex)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return Account{}, refuse(http.StatusBadRequest, CodeBadRequest, "account key %q: want %d bytes in hex", keyHex, ed25519.PublicKeySize)
	}
	shard := ordering.ShardOf(pub, s.cfg.Backend.Shards())
	v, err := s.cfg.Backend.Views().Account(ctx, shard, pub)
	if err != nil {
		return Account{}, refuse(http.StatusServiceUnavailable, tx.CodeInternal.String(), "%v", err)
	}
	a := Account{
		Key: hexOf(pub), Exists: v.Exists, Balance: v.Balance, Nonce: v.Nonce, Height: v.Height,
		Root: hexOf(v.Root[:]), Proof: hexOf(v.Proof),
	}
	for _, id := range s.cfg.Backend.Views().Recent(pub) {
		a.Recent = append(a.Recent, id.String())
	}
	return a, nil
}

func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	key, err := hex.DecodeString(r.PathValue("key"))
	if err != nil {
		writeRefusal(w, refuse(http.StatusBadRequest, CodeBadRequest, "key: %v", err))
		return
	}
	s.writeValue(w, r, state.PutKey(key))
}

func (s *Server) getState(w http.ResponseWriter, r *http.Request) {
	key, err := hex.DecodeString(r.PathValue("key"))
	if err != nil {
		writeRefusal(w, refuse(http.StatusBadRequest, CodeBadRequest, "state key: %v", err))
		return
	}
	s.writeValue(w, r, key)
}

func (s *Server) writeValue(w http.ResponseWriter, r *http.Request, stateKey []byte) {
	v, ref := s.get(r.Context(), stateKey)
	if ref != nil {
		writeRefusal(w, ref)
		return
	}
	writeJSON(w, http.StatusOK, ValueOf(v))
}

func (s *Server) getBlocks(w http.ResponseWriter, r *http.Request) {
	shard, err := parseShard(r.PathValue("shard"), s.cfg.Backend.Shards())
	if err != nil {
		writeRefusal(w, refuse(http.StatusBadRequest, CodeBadRequest, "%v", err))
		return
	}
	limit := 16
	if l := r.URL.Query().Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > maxBlocks {
			writeRefusal(w, refuse(http.StatusBadRequest, CodeBadRequest, "limit=%q: 1 to %d", l, maxBlocks))
			return
		}
	}
	out := []Block{}
	for _, h := range s.cfg.Backend.Views().LatestBlocks(shard, limit) {
		out = append(out, BlockOf(h, nil))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getBlock(w http.ResponseWriter, r *http.Request) {
	b, ref := s.block(r.PathValue("shard"), r.PathValue("height"))
	if ref != nil {
		writeRefusal(w, ref)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// block reads a committed header.
func (s *Server) block(shardStr, heightStr string) (Block, *refusal) {
	shard, err := parseShard(shardStr, s.cfg.Backend.Shards())
	if err != nil {
		return Block{}, refuse(http.StatusBadRequest, CodeBadRequest, "%v", err)
	}
	height, err := strconv.ParseUint(heightStr, 10, 64)
	if err != nil {
		return Block{}, refuse(http.StatusBadRequest, CodeBadRequest, "height %q: %v", heightStr, err)
	}
	h, ok, err := s.cfg.Backend.Block(shard, height)
	switch {
	case err != nil:
		return Block{}, refuse(http.StatusServiceUnavailable, tx.CodeInternal.String(), "%v", err)
	case !ok:
		return Block{}, refuse(http.StatusNotFound, CodeNotFound, "no block %d committed in shard %d", height, shard)
	}
	return BlockOf(h, nil), nil
}

func (s *Server) getReady(w http.ResponseWriter, r *http.Request) {
	rd := s.readiness(r.Context())
	status := http.StatusOK
	if !rd.Ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, rd)
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	st, ref := s.status(r.Context())
	if ref != nil {
		writeRefusal(w, ref)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
