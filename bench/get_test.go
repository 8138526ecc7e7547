package bench

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"

	"github.com/rustorium/rustorium/loadgen"
	"github.com/rustorium/rustorium/node/api"
	"github.com/rustorium/rustorium/node/state"
	"github.com/rustorium/rustorium/reports"
)

// TestReadVerifyCountsProofs: a read whose proof does not verify is a
// checker proof failure (failing the verdict), and errorKind names it.
func TestReadVerifyCountsProofs(t *testing.T) {
	chk := newChecker()
	verify := readVerify(chk)
	err := verify([32]byte{1}, state.PutKey([]byte("key-0000000001")), []byte("v"), []byte{0xff, 0x00})
	if err == nil {
		t.Fatal("a garbage proof verified")
	}
	if chk.proofsChecked.Load() != 1 || chk.proofsFailed.Load() != 1 {
		t.Fatalf("proofs %d checked / %d failed", chk.proofsChecked.Load(), chk.proofsFailed.Load())
	}
	v := chk.verdict(nil)
	if v.ProofsFailed != 1 || v.Passed() {
		t.Fatalf("verdict %+v", v)
	}
	for _, c := range []struct {
		err  error
		want string
	}{
		{&loadgen.APIError{Code: "overloaded", Msg: "m"}, "accepted: rejected (overloaded)"},
		{&loadgen.APIError{Code: api.CodeTimeout, Msg: "m"}, "accepted: timeout"},
		{fmt.Errorf("wrapped: %w", &loadgen.APIError{Code: loadgen.CodeConnectionLost}), "accepted: connection lost"},
	} {
		if k := errorKind(reports.StageAccepted, c.err); k != c.want || !errors.Is(c.err, loadgen.ErrAPI) {
			t.Errorf("%v: kind %q, want %q (is ErrAPI: %t)", c.err, k, c.want, errors.Is(c.err, loadgen.ErrAPI))
		}
	}
	if k := errorKind(reports.StageRead, fmt.Errorf("%w: %w", loadgen.ErrProof, err)); k != "read: proof failed" {
		t.Fatalf("error kind %q", k)
	}
}

// TestReadKeys: gets read the first transfer workload's accounts (index mod
// their number) when there are some, else the put key space.
func TestReadKeys(t *testing.T) {
	acc := loadgen.AccountKeys(1, 3)
	keys := getKeys(&prepInput{keys: &loadgen.Sequential{N: 5}, accounts: acc, n: 5})
	for i, k := range keys {
		want := state.AccountKey(acc[i%3].Public().(ed25519.PublicKey))
		if string(k) != string(want) {
			t.Fatalf("read %d: %x, want %x", i, k, want)
		}
	}
	keys = getKeys(&prepInput{keys: &loadgen.Sequential{N: 5}, traceKeys: []string{"traced"}, n: 3})
	if string(keys[0]) != string(state.PutKey([]byte("traced"))) || string(keys[2]) != string(state.PutKey(loadgen.KeyName(1))) {
		t.Fatalf("put keys %q", keys)
	}
}
