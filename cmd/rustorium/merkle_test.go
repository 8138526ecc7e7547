package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	iden3 "github.com/iden3/go-merkletree-sql/v2"
	"github.com/iden3/go-merkletree-sql/v2/db/memory"

	"github.com/rustorium/rustorium/node/merkle"
)

// runMerkle runs `merkle args...` in process with stdin.
func runMerkle(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newMerkleCmd()
	var out bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func seededRand(t *testing.T) *rand.Rand {
	seed := rand.Uint64()
	if s := os.Getenv("MERKLE_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d (rerun with MERKLE_SEED=%d)", seed, seed)
		}
	})
	return rand.New(rand.NewPCG(seed, 3))
}

func randField(r *rand.Rand) *big.Int {
	b := new(big.Int).SetUint64(r.Uint64())
	for i := 0; i < 3; i++ {
		b.Lsh(b, 64).Or(b, new(big.Int).SetUint64(r.Uint64()))
	}
	return b.Mod(b, fr.Modulus())
}

// TestMerkleRootOracle compares `merkle root` (with and without --batch)
// with go-merkletree-sql fed the same lines one at a time.
func TestMerkleRootOracle(t *testing.T) {
	r := seededRand(t)
	for _, n := range []int{1, 2, 5, 60, 700} {
		var in strings.Builder
		ctx := context.Background()
		mt, err := iden3.NewMerkleTree(ctx, memory.NewMemoryStorage(), 64)
		if err != nil {
			t.Fatal(err)
		}
		batch := 1 + r.IntN(max(1, n/3))
		var wantBatched []string
		var keys []*big.Int
		for i := 0; i < n; i++ {
			k := randField(r)
			if r.IntN(3) == 0 {
				k = big.NewInt(int64(r.IntN(10))) // small keys
			}
			if len(keys) > 0 && r.IntN(4) == 0 {
				k = keys[r.IntN(len(keys))] // repeated key: an update
			}
			keys = append(keys, k)
			v := randField(r)
			if r.IntN(8) == 0 {
				v = big.NewInt(0)
			}
			fmt.Fprintf(&in, "%s %s\n", k, v)
			if r.IntN(10) == 0 {
				in.WriteString("\n  \n") // blank lines are ignored
			}
			if err := mt.Add(ctx, k, v); errors.Is(err, iden3.ErrEntryIndexAlreadyExists) {
				_, err = mt.Update(ctx, k, v)
				if err != nil {
					t.Fatal(err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if (i+1)%batch == 0 || i == n-1 {
				wantBatched = append(wantBatched, mt.Root().BigInt().String())
			}
		}
		out, err := runMerkle(t, in.String(), "root")
		if err != nil {
			t.Fatal(err)
		}
		if want := mt.Root().BigInt().String() + "\n"; out != want {
			t.Fatalf("n=%d: root %q, want %q", n, out, want)
		}
		out, err = runMerkle(t, in.String(), "root", "--batch", strconv.Itoa(batch))
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.Join(wantBatched, "\n") + "\n"; out != want {
			t.Fatalf("n=%d batch=%d: roots\n%s\nwant\n%s", n, batch, out, want)
		}
	}
}

func TestMerkleRootInputs(t *testing.T) {
	for _, args := range [][]string{{"root"}, {"root", "--batch", "3"}} {
		if out, err := runMerkle(t, "", args...); err != nil || out != "0\n" {
			t.Fatalf("%v on empty input: %q %v", args, out, err)
		}
		if out, err := runMerkle(t, "\n \n", args...); err != nil || out != "0\n" {
			t.Fatalf("%v on blank input: %q %v", args, out, err)
		}
	}
	bad := map[string]string{
		"1 2\n3\n":                          "line 2",
		"1 2\n\n1 2 3\n":                    "line 3",
		"x 2\n":                             "line 1: key",
		"1 -2\n":                            "line 1: value",
		"1 " + fr.Modulus().String() + "\n": "line 1: value",
		"1 0x10\n":                          "line 1: value",
	}
	for in, want := range bad {
		out, err := runMerkle(t, in, "root")
		if err == nil || !strings.Contains(err.Error(), want) || out != "" {
			t.Errorf("input %q: out %q err %v, want error containing %q", in, out, err, want)
		}
	}
	if _, err := runMerkle(t, "1 1\n", "root", "--batch", "-1"); err == nil {
		t.Error("negative batch accepted")
	}
}

func TestMerkleProveVerify(t *testing.T) {
	r := seededRand(t)
	var in strings.Builder
	ctx := context.Background()
	mt, _ := iden3.NewMerkleTree(ctx, memory.NewMemoryStorage(), 64)
	var keys []*big.Int
	for i := 0; i < 50; i++ {
		k, v := randField(r), randField(r)
		keys = append(keys, k)
		fmt.Fprintf(&in, "%s %s\n", k, v)
		if err := mt.Add(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []*big.Int{keys[3], keys[49], randField(r), big.NewInt(0)} {
		out, err := runMerkle(t, in.String(), "prove", "--key", k.String())
		if err != nil {
			t.Fatal(err)
		}
		var doc proofDocument
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Root != mt.Root().BigInt().String() {
			t.Fatalf("root %s, want %s", doc.Root, mt.Root().BigInt())
		}
		// the embedded proof is go-merkletree-sql's JSON and verifies there
		var lp iden3.Proof
		if err := json.Unmarshal(doc.Proof, &lp); err != nil {
			t.Fatal(err)
		}
		v, _ := new(big.Int).SetString(doc.Value, 10)
		if !iden3.VerifyProof(mt.Root(), &lp, k, v) {
			t.Fatalf("library rejects the proof for %s", k)
		}
		// and ours accepts it
		got, err := runMerkle(t, out, "verify")
		if err != nil || !strings.HasPrefix(got, "valid:") {
			t.Fatalf("verify: %q %v", got, err)
		}
		// tampering fails with a reason and a non-zero exit
		tampered := doc
		tampered.Value = "12345"
		tb, _ := json.Marshal(tampered)
		_, err = runMerkle(t, string(tb), "verify")
		var ee *exitError
		if !errors.As(err, &ee) || ee.code == 0 {
			t.Fatalf("tampered value accepted: %v", err)
		}
	}
	// the --file form, and garbage
	f := t.TempDir() + "/p.json"
	out, _ := runMerkle(t, in.String(), "prove", "--key", keys[0].String())
	os.WriteFile(f, []byte(out), 0o600)
	if got, err := runMerkle(t, "", "verify", "--file", f); err != nil || !strings.Contains(got, "holds value") {
		t.Fatalf("verify --file: %q %v", got, err)
	}
	for _, bad := range []string{"", "{}", "[]", `{"root":"1","key":"1","value":"0","proof":{"existence":false,"siblings":[]},"x":1}`,
		`{"root":"0","key":"-1","value":"0","proof":{"existence":false,"siblings":[]}}`} {
		if _, err := runMerkle(t, bad, "verify"); err == nil {
			t.Errorf("verify accepted %q", bad)
		}
	}
	// empty tree: non-membership of anything
	if got, err := runMerkle(t, `{"root":"0","key":"5","value":"0","proof":{"existence":false,"siblings":[]}}`, "verify"); err != nil || !strings.Contains(got, "absent") {
		t.Fatalf("empty-tree non-membership: %q %v", got, err)
	}
}

func FuzzVerifyDocument(f *testing.F) {
	f.Add([]byte(`{"root":"0","key":"5","value":"0","proof":{"existence":false,"siblings":[]}}`))
	f.Add([]byte(`{"root":"1","key":"5","value":"7","proof":{"existence":true,"siblings":["0","3"]}}`))
	f.Add([]byte(`{"root":"1","key":"5","value":"0","proof":{"existence":false,"siblings":["1"],"node_aux":{"key":"3","value":"4"}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = verifyDocument(b) // must not panic
	})
}

// readKVsReference is readKVs as it was before its allocation-free
// parsing: strings.Fields and merkle.ParseElement per line. FuzzReadKVs holds
// readKVs to it.
func readKVsReference(r io.Reader) ([]merkle.KV, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxKVLine)
	var kvs []merkle.KV
	line := 0
	for sc.Scan() {
		line++
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"<key> <value>\", got %d fields", line, len(f))
		}
		k, err := merkle.ParseElement(f[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: key: %w", line, err)
		}
		v, err := merkle.ParseElement(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: value: %w", line, err)
		}
		kvs = append(kvs, merkle.KV{Key: k, Value: v})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: longer than %d bytes", line+1, maxKVLine)
		}
		return nil, fmt.Errorf("reading input: %w", err)
	}
	return kvs, nil
}

// FuzzReadKVs checks readKVs (its own field splitting, the fast number
// parser) against readKVsReference: the same pairs, or the same error.
func FuzzReadKVs(f *testing.F) {
	f.Add("1 2\n3 4\n")
	f.Add("\n\n 5   6 \r\n")
	f.Add("1\n")
	f.Add("1\u00a02\n")    // a Unicode space separates fields
	f.Add("1\u00a0 2 3\n") // and counts as one
	f.Add("\u20031 2\n")
	f.Add("1\t\v\f2\n")
	f.Add("1 2\x85\n")
	f.Add("1 é\n")
	f.Add(strings.Repeat("1", 5000) + " 2\n")
	f.Add("1 " + fr.Modulus().String() + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		kvs, err := readKVs(strings.NewReader(s))
		want, werr := readKVsReference(strings.NewReader(s))
		if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
			t.Fatalf("%q: error %v, reference %v", s, err, werr)
		}
		if len(kvs) != len(want) {
			t.Fatalf("%q: %d pairs, reference %d", s, len(kvs), len(want))
		}
		for i := range kvs {
			if kvs[i] != want[i] {
				t.Fatalf("%q: pair %d differs", s, i)
			}
		}
	})
}

// BenchmarkMerkleRootCLI runs `merkle root --batch 1000` in process on 30k
// seeded writes (~80% new keys), parsing included: the in-process part of
// scripts/merkle-whole.sh, for profiles.
func BenchmarkMerkleRootCLI(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 30))
	var in strings.Builder
	var keys []*big.Int
	for range 30000 {
		var k *big.Int
		if len(keys) > 0 && r.IntN(5) == 0 {
			k = keys[r.IntN(len(keys))]
		} else {
			k = randField(r)
			keys = append(keys, k)
		}
		fmt.Fprintf(&in, "%s %s\n", k, randField(r))
	}
	input := in.String()
	b.SetBytes(int64(len(input)))
	for b.Loop() {
		cmd := newMerkleCmd()
		cmd.SetIn(strings.NewReader(input))
		cmd.SetOut(io.Discard)
		cmd.SetArgs([]string{"root", "--batch", "1000"})
		if err := cmd.Execute(); err != nil {
			b.Fatal(err)
		}
	}
}
