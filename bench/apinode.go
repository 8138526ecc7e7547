package bench

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/rustorium/rustorium/node/api"
	"github.com/rustorium/rustorium/node/tx"
)

// apiNode is a NodeView of a node the harness reads over its HTTP API
// (rustorium node --api): its status for the tips, its stored receipts for
// the index, its account view for balances.
type apiNode struct {
	name, base string // base: http://host:port
	client     *http.Client
}

// apiNodeTimeout bounds one read of a node's API.
const apiNodeTimeout = 10 * time.Second

func newAPINode(name, base string) apiNode {
	return apiNode{name: name, base: base, client: &http.Client{Timeout: apiNodeTimeout}}
}

func (v apiNode) Name() string { return v.name }

// errAPINotFound is a 404 answer.
var errAPINotFound = errors.New("not found")

// get decodes the JSON answer to GET path into out.
func (v apiNode) get(path string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), apiNodeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return json.Unmarshal(body, out)
	case http.StatusNotFound:
		return errAPINotFound
	default:
		return fmt.Errorf("%s: GET %s: %s: %s", v.name, path, resp.Status, body)
	}
}

// Tip implements NodeView from GET /v1/status.
func (v apiNode) Tip(shard uint32) (Tip, error) {
	var st api.Status
	if err := v.get("/v1/status", &st); err != nil {
		return Tip{}, err
	}
	for _, s := range st.Shards {
		if s.Shard != shard {
			continue
		}
		t := Tip{Height: s.Height, NextOffset: s.NextOffset}
		if err := decodeHash(t.Block[:], s.BlockHash); err != nil {
			return t, fmt.Errorf("%s: status: block hash: %w", v.name, err)
		}
		if err := decodeHash(t.Root[:], s.Root); err != nil {
			return t, fmt.Errorf("%s: status: root: %w", v.name, err)
		}
		return t, nil
	}
	return Tip{}, fmt.Errorf("%s: status has no shard %d", v.name, shard)
}

func decodeHash(dst []byte, s string) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		return fmt.Errorf("%q is not %d bytes in hex", s, len(dst))
	}
	copy(dst, b)
	return nil
}

// TxShard implements NodeView from GET /v1/tx/{id}.
func (v apiNode) TxShard(id tx.ID) (uint32, bool, error) {
	var rc api.Receipt
	switch err := v.get("/v1/tx/"+hex.EncodeToString(id[:]), &rc); {
	case errors.Is(err, errAPINotFound):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	return rc.Shard, true, nil
}

// Balance implements NodeView from GET /v1/accounts/{key}.
func (v apiNode) Balance(key ed25519.PublicKey) (uint64, bool, error) {
	var a api.Account
	if err := v.get("/v1/accounts/"+hex.EncodeToString(key), &a); err != nil {
		return 0, false, err
	}
	return a.Balance, a.Exists, nil
}

// Halted implements NodeView from the readiness checks of GET /v1/status:
// the shard's check failed because the node halted it.
func (v apiNode) Halted(shard uint32) bool {
	var st api.Status
	if v.get("/v1/status", &st) != nil {
		return false
	}
	name := fmt.Sprintf("shard %d", shard)
	for _, c := range st.Checks {
		if c.Name == name && !c.OK && strings.Contains(c.Error, "halted") {
			return true
		}
	}
	return false
}
